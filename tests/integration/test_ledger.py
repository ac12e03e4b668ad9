"""The ledger is append-only in the database itself; corrections are reversal events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from appraisal import ledger
from appraisal.models import IncentiveRun, LedgerEvent
from config import clock
from customers.fileformats import RowError


def _event(session, staff, event_id="E1", **kw):  # noqa: ANN001, ANN202
    today = clock.today()
    ev = LedgerEvent(
        event_id=event_id,
        occurred_on=kw.pop("occurred_on", today),
        month=kw.pop("month", ledger.month_of(today)),
        staff_id=staff.id,
        measure=kw.pop("measure", "accounts_opened"),
        quantity=kw.pop("quantity", 1),
        amount=kw.pop("amount", Decimal("0.00")),
        **kw,
    )
    session.add(ev)
    session.commit()
    return ev


def test_database_refuses_update_and_delete(session, union) -> None:  # noqa: ANN001
    ev = _event(session, union.m1)
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(update(LedgerEvent).where(LedgerEvent.id == ev.id).values(quantity=5))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(delete(LedgerEvent).where(LedgerEvent.id == ev.id))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE ledger_event SET amount = 1"))
    session.rollback()
    # through the ORM as well
    ev = session.get(LedgerEvent, ev.id)
    ev.quantity = 9
    with pytest.raises(DBAPIError, match="append-only"):
        session.commit()
    session.rollback()
    assert session.scalar(select(LedgerEvent.quantity).where(LedgerEvent.id == ev.id)) == 1
    assert session.scalar(select(func.count()).select_from(LedgerEvent)) == 1


def test_reversal_is_a_new_event_in_the_open_month(session, union) -> None:  # noqa: ANN001
    ev = _event(session, union.m1, amount=Decimal("100.50"), measure="payroll_volume")
    rev = ledger.reverse(session, ev, "deposit left within the window", actor_id=union.checker.id)
    session.commit()
    assert rev.reverses_id == ev.id and rev.quantity == -1 and rev.amount == Decimal("-100.50")
    assert rev.month == ledger.month_of(clock.today())
    assert ledger.reverse(session, ev, "again") is rev  # idempotent
    with pytest.raises(ledger.LedgerError, match="itself a reversal"):
        ledger.reverse(session, rev, "no")
    with pytest.raises(ledger.LedgerError, match="reason"):
        ledger.reverse(session, ev, "  ")
    total = session.scalar(select(func.sum(LedgerEvent.amount)).where(LedgerEvent.staff_id == union.m1.id))
    assert Decimal(total).quantize(Decimal("0.01")) == Decimal("0.00")


def test_no_posting_into_a_locked_month(session, union) -> None:  # noqa: ANN001
    month = ledger.month_of(clock.today())
    session.add(IncentiveRun(month=month, scope_key="union", state="locked"))
    session.commit()
    ev = _event(session, union.m1)
    with pytest.raises(ledger.LedgerError, match="locked"):
        ledger.reverse(session, ev, "late correction")


def test_verified_claim_enters_once(session, union) -> None:  # noqa: ANN001
    claim = SimpleNamespace(
        id=77,
        staff_id=union.m2.id,
        customer_id=None,
        campaign_id=None,
        measure="accounts_opened",
        quantity=Decimal("2"),
        amount=Decimal("0"),
        state="verified",
        verified_at=clock.now(),
        verifier_id=union.checker.id,
    )
    ev = ledger.record_verified_claim(session, claim)
    session.commit()
    assert ev.event_id == "claim-77" and ev.quantity == 2 and ev.source == "claim"
    assert ledger.record_verified_claim(session, claim).id == ev.id
    rev = ledger.reverse_claim(session, claim, "closed within 30 days")
    assert rev is not None and rev.quantity == -2
    claim.state = "submitted"
    claim.id = 78
    with pytest.raises(ledger.LedgerError, match="not verified"):
        ledger.record_verified_claim(session, claim)


def _rows(*rows: dict) -> list:  # noqa: ANN002
    return [(i + 2, r, []) for i, r in enumerate(rows)]


def test_import_events_idempotent_and_reports_each_bad_row(session, union, factories) -> None:  # noqa: ANN001
    today = clock.today()
    cust = factories.customer(session, union.b1, union.m1, customer_no="C9000001")
    camp = factories.campaign(
        session, union.director, [union.b1], code="DEP-1", start_date=today - dt.timedelta(days=40)
    )
    session.commit()
    good = {
        "event_id": "X1",
        "occurred_on": today,
        "staff_no": "M0101",
        "customer_no": "C9000001",
        "campaign_code": "DEP-1",
        "measure": "accounts_opened",
        "quantity": 1,
        "amount": None,
    }
    result = ledger.import_events(session, _rows(good))
    session.commit()
    assert (result.added, result.errors) == (1, [])
    again = ledger.import_events(session, _rows(good))
    assert (again.added, again.unchanged, again.errors) == (0, 1, [])
    bad = [
        dict(good, event_id="X2"),
        dict(good, event_id="X2"),  # duplicate in the file
        dict(good, event_id="X3", staff_no="NOPE"),
        dict(good, event_id="X4", campaign_code="NOPE"),
        dict(good, event_id="X5", customer_no="NOPE"),
        dict(good, event_id="X6", quantity=-1),
        dict(good, event_id="X7", occurred_on=today + dt.timedelta(days=40)),
        dict(good, event_id="X8", measure="bogus"),
        dict(good, quantity=3),  # X1 with other values
    ]
    result = ledger.import_events(session, _rows(*bad), strict=True)
    session.rollback()
    reasons = {(e.row, e.column): e.reason for e in result.errors}
    assert "duplicate event_id" in reasons[(3, "event_id")]
    assert "no staff member" in reasons[(4, "staff_no")]
    assert "no campaign" in reasons[(5, "campaign_code")]
    assert "no customer" in reasons[(6, "customer_no")]
    assert "negative" in reasons[(7, "quantity")]
    assert "future" in reasons[(8, "occurred_on")]
    assert "unknown measure" in reasons[(9, "measure")]
    assert "other values" in reasons[(10, "event_id")]
    assert result.added == 0  # strict: nothing stored
    assert session.scalar(select(func.count()).select_from(LedgerEvent)) == 1
    loose = ledger.import_events(session, _rows(*bad))
    session.commit()
    assert loose.added == 1  # only the first X2
    assert isinstance(loose.errors[0], RowError)
    assert cust.id and camp.id
