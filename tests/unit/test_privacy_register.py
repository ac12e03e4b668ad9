"""PII-01: every column of the customer and pay tables carries its information class; none is C3.

A new column on one of these tables fails this test until it is classified in org/privacy.py."""

from __future__ import annotations

from config.database import Base, import_models
from org import privacy


def _tables():
    import_models()
    return {name: Base.metadata.tables[name] for name in privacy.REGISTER}


def test_every_column_is_classified():
    untagged = [
        f"{name}.{c.name}" for name, table in _tables().items() for c in table.columns if "pfi" not in c.info
    ]
    assert untagged == [], f"classify these columns in org/privacy.py: {untagged}"


def test_the_register_names_only_real_columns_and_never_c3():
    tables = _tables()
    stale = [
        f"{name}.{col}"
        for name, cols in privacy.REGISTER.items()
        for col in cols
        if col not in tables[name].columns
    ]
    assert stale == []
    classes = {cat for cols in privacy.REGISTER.values() for cat, _ in cols.values()}
    assert classes <= {privacy.C1, privacy.C2} and privacy.C3 not in classes
    levels = {level for cols in privacy.REGISTER.values() for _, level in cols.values()}
    assert levels <= {1, 2, 3, 4}


def test_identity_and_contact_data_are_personal():
    _tables()
    personal = set(privacy.personal_columns(Base.metadata, "customer"))
    assert {"name", "id_number", "phone", "address", "birth_date"} <= personal
    assert Base.metadata.tables["customer"].columns["id_number"].info == {"pfi": "C2", "level": 4}
    assert "amount" in privacy.personal_columns(Base.metadata, "statement_line")  # a person's pay
    assert "content" in privacy.personal_columns(Base.metadata, "follow_up")
