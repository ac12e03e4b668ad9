"""Organisation: branches, staff, roles and scopes — the one place that answers "may this person see/do this"."""


def on_models_imported(metadata: object) -> None:
    """Called by ``config.database.import_models`` once every model is declared: put each column's
    personal-information class on it (``org/privacy.py``, RELIABILITY PII-01)."""
    from org import privacy

    privacy.apply(metadata)
