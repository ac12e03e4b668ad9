"""ledger_total (migration 0004): the database keeps the month's totals on every insert into the
ledger, whoever inserts — import (library and CLI), verified claims, reversals, a raw multi-row
INSERT, two sessions at once — and ``check_totals`` / ``campaignflow ledger check-totals`` / the
nightly job find a total that was changed behind the trigger's back; ``--rebuild`` repairs it.

The expected totals are summed here in Python from the events themselves (not by the SQL
under test).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import threading
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from appraisal import ledger
from appraisal.jobs import SCHEDULE, check_ledger_totals
from appraisal.models import LedgerEvent, LedgerTotal
from config import clock
from config.celery import beat_schedule
from config.database import db, make_engine
from org.models import AuditLog
from tasks.models import Notification

D = Decimal
_seq = itertools.count(1)


def expected(session) -> dict:  # noqa: ANN001
    """(month, staff, campaign, measure) -> (events, quantity, amount, customer_events), in Python."""
    session.commit()
    out: dict = {}
    for ev in session.execute(
        select(
            LedgerEvent.month,
            LedgerEvent.staff_id,
            LedgerEvent.campaign_id,
            LedgerEvent.measure,
            LedgerEvent.quantity,
            LedgerEvent.amount,
            LedgerEvent.customer_id,
        )
    ):
        key = (ev.month, ev.staff_id, ev.campaign_id, ev.measure)
        n, q, a, c = out.get(key, (0, 0, D("0.00"), 0))
        out[key] = (n + 1, q + ev.quantity, a + D(ev.amount), c + (ev.customer_id is not None))
    return out


def stored(session) -> dict:  # noqa: ANN001
    session.commit()  # a fresh snapshot: other sessions (CLI, jobs, threads) wrote
    return {
        (t.month, t.staff_id, t.campaign_id, t.measure): (
            t.events,
            t.quantity,
            D(t.amount).quantize(D("0.01")),
            t.customer_events,
        )
        for t in session.scalars(select(LedgerTotal))
    }


def assert_consistent(session) -> None:  # noqa: ANN001
    want = expected(session)
    assert stored(session) == want
    assert ledger.check_totals(session) == []
    for t in session.scalars(select(LedgerTotal)):
        assert t.campaign_key == (t.campaign_id or 0)


@pytest.fixture
def month() -> str:
    return ledger.previous_month(ledger.month_of(clock.today()))


@pytest.fixture
def setup(session, union, factories, month):  # noqa: ANN001, ANN201
    first, _ = ledger.month_bounds(month)
    camp = factories.campaign(
        session,
        union.director,
        [union.b1, union.b2],
        code="TOT-1",
        start_date=first,
        end_date=clock.today() + dt.timedelta(days=30),
        state="active",
    )
    cust = factories.customer(session, union.b1, union.m1, customer_no="C7000001")
    session.commit()
    return SimpleNamespace(campaign=camp, customer=cust)


def write_events(path, rows):  # noqa: ANN001, ANN201
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "event_id",
                "occurred_on",
                "staff_no",
                "customer_no",
                "campaign_code",
                "measure",
                "quantity",
                "amount",
            ]
        )
        w.writerows(rows)
    return path


def _row(event_id: str, day: dt.date, staff_no: str, measure: str, quantity=None, amount=None, **kw):  # noqa: ANN001, ANN003, ANN202
    return {
        "event_id": event_id,
        "occurred_on": day,
        "staff_no": staff_no,
        "customer_no": kw.get("customer_no"),
        "campaign_code": kw.get("campaign_code"),
        "measure": measure,
        "quantity": quantity,
        "amount": amount,
    }


def test_totals_follow_imports_claims_and_reversals(session, union, setup, month) -> None:  # noqa: ANN001
    day = dt.date.fromisoformat(f"{month}-12")
    rows = [
        _row("T1", day, "M0101", "accounts_opened", 2, campaign_code="TOT-1", customer_no="C7000001"),
        _row("T2", day, "M0101", "accounts_opened", 3, campaign_code="TOT-1"),
        _row("T3", day, "M0101", "payroll_volume", None, D("1234.56"), campaign_code="TOT-1"),
        _row("T4", day, "M0101", "payroll_volume", None, D("0.07"), campaign_code="TOT-1"),
        _row("T5", day, "M0102", "accounts_opened", 1, customer_no="C7000001"),  # no campaign
        _row("T6", day, "M0102", "accounts_opened", 4),  # no campaign, no customer
        _row("T7", day, "M0201", "complaints", 1),
    ]
    result = ledger.import_events(session, [(i + 2, r, []) for i, r in enumerate(rows)])
    session.commit()
    assert (result.added, result.errors) == (7, [])
    totals = stored(session)
    assert totals[(month, union.m1.id, setup.campaign.id, "accounts_opened")] == (2, 5, D("0.00"), 1)
    assert totals[(month, union.m1.id, setup.campaign.id, "payroll_volume")] == (2, 0, D("1234.63"), 0)
    assert totals[(month, union.m2.id, None, "accounts_opened")] == (2, 5, D("0.00"), 1)
    assert_consistent(session)

    # re-importing the same file adds nothing, to the events or the totals
    again = ledger.import_events(session, [(i + 2, r, []) for i, r in enumerate(rows)])
    session.commit()
    assert (again.added, again.unchanged) == (0, 7)
    assert stored(session) == totals

    # a verified claim (this month) and its reversal; a reversal of an imported event
    claim = SimpleNamespace(
        id=501,
        staff_id=union.m2.id,
        customer_id=setup.customer.id,
        campaign_id=setup.campaign.id,
        measure="payroll_volume",
        quantity=D("0"),
        amount=D("880.10"),
        state="verified",
        verified_at=clock.now(),
        verifier_id=union.checker.id,
    )
    ledger.record_verified_claim(session, claim)
    session.commit()
    this_month = ledger.month_of(clock.today())
    key = (this_month, union.m2.id, setup.campaign.id, "payroll_volume")
    assert stored(session)[key] == (1, 0, D("880.10"), 1)
    ledger.reverse_claim(session, claim, "deposit left within 30 days")
    t3 = session.scalar(select(LedgerEvent).where(LedgerEvent.event_id == "T3"))
    ledger.reverse(session, t3, "wrong account", actor_id=union.checker.id)
    session.commit()
    totals = stored(session)
    assert totals[key] == (2, 0, D("0.00"), 2)  # the reversal counts as an event, its amount negative
    assert totals[(this_month, union.m1.id, setup.campaign.id, "payroll_volume")] == (1, 0, D("-1234.56"), 0)
    assert_consistent(session)


def test_the_import_command_keeps_the_totals(runner, session, union, setup, month, tmp_path) -> None:  # noqa: ANN001
    day = f"{month}-03"
    f = write_events(
        tmp_path / "ev.csv",
        [
            ["C1", day, "M0101", "C7000001", "TOT-1", "accounts_opened", "1", ""],
            ["C2", day, "M0101", "", "TOT-1", "accounts_opened", "2", ""],
            ["C3", day, "M0102", "", "", "payroll_volume", "", "99.99"],
            ["C4", day, "M0102", "", "", "payroll_volume", "", "0.01"],
            ["C5", day, "NOPE", "", "", "payroll_volume", "", "5.00"],  # rejected: no total either
        ],
    )
    r = runner.invoke(args=["import", "events", str(f)])
    assert r.exit_code == 1 and "4 added" in r.output, r.output
    totals = stored(session)
    assert totals == {
        (month, union.m1.id, setup.campaign.id, "accounts_opened"): (2, 3, D("0.00"), 1),
        (month, union.m2.id, None, "payroll_volume"): (2, 0, D("100.00"), 0),
    }
    assert_consistent(session)
    r = runner.invoke(args=["ledger", "check-totals", "--month", month])
    assert r.exit_code == 0 and f"match the events (month {month})" in r.output


def test_a_raw_multi_row_insert_is_counted(session, union, setup, month) -> None:  # noqa: ANN001
    day = f"{month}-20"
    session.execute(
        text(
            "INSERT INTO ledger_event (event_id, occurred_on, month, staff_id, customer_id, campaign_id, "
            "measure, quantity, amount, source, created_at) VALUES "
            "('R1', :day, :month, :m1, NULL, :camp, 'accounts_opened', 1, 0, 'import', CURRENT_TIMESTAMP), "
            "('R2', :day, :month, :m1, :cust, :camp, 'accounts_opened', 2, 0, 'import', CURRENT_TIMESTAMP), "
            "('R3', :day, :month, :m1, NULL, NULL, 'complaints', 1, 0, 'import', CURRENT_TIMESTAMP), "
            "('R4', :day, :month, :m1, :cust, NULL, 'complaints', 1, 0, 'import', CURRENT_TIMESTAMP), "
            "('R5', :day, :month, :m2, NULL, NULL, 'payroll_volume', 0, 10.10, 'import', CURRENT_TIMESTAMP), "
            "('R6', :day, :month, :m2, NULL, NULL, 'payroll_volume', 0, 20.20, 'import', CURRENT_TIMESTAMP)"
        ),
        {
            "day": day,
            "month": month,
            "m1": union.m1.id,
            "m2": union.m2.id,
            "camp": setup.campaign.id,
            "cust": setup.customer.id,
        },
    )
    session.commit()
    assert stored(session) == {
        (month, union.m1.id, setup.campaign.id, "accounts_opened"): (2, 3, D("0.00"), 1),
        (month, union.m1.id, None, "complaints"): (2, 2, D("0.00"), 1),
        (month, union.m2.id, None, "payroll_volume"): (2, 0, D("30.30"), 0),
    }
    assert_consistent(session)
    # a rolled-back insert leaves no total behind
    session.execute(
        text(
            "INSERT INTO ledger_event (event_id, occurred_on, month, staff_id, measure, quantity, amount, "
            "source, created_at) VALUES ('R7', :day, :month, :m1, 'complaints', 5, 0, 'import', CURRENT_TIMESTAMP)"
        ),
        {"day": day, "month": month, "m1": union.m1.id},
    )
    session.rollback()
    assert stored(session)[(month, union.m1.id, None, "complaints")] == (2, 2, D("0.00"), 1)


def _tamper(session, statement: str, **params) -> None:  # noqa: ANN001, ANN003
    session.execute(text(statement), params)
    session.commit()


def test_check_totals_finds_tampering_and_rebuild_repairs(runner, session, union, setup, month) -> None:  # noqa: ANN001
    day = dt.date.fromisoformat(f"{month}-08")
    rows = [
        _row("K1", day, "M0101", "accounts_opened", 2, campaign_code="TOT-1"),
        _row("K2", day, "M0102", "payroll_volume", None, D("50.00")),
        _row("K3", day, "M0201", "complaints", 1),
    ]
    ledger.import_events(session, [(i + 2, r, []) for i, r in enumerate(rows)])
    session.commit()
    r = runner.invoke(args=["ledger", "check-totals"])
    assert r.exit_code == 0 and "match the events (every month)" in r.output, r.output

    # a changed amount, a removed row and a row with no events behind it
    _tamper(
        session,
        "UPDATE ledger_total SET amount = amount + 0.01 WHERE staff_id = :s AND campaign_key = 0",
        s=union.m2.id,
    )
    _tamper(session, "DELETE FROM ledger_total WHERE staff_id = :s", s=union.m3.id)
    _tamper(
        session,
        "INSERT INTO ledger_total (month, staff_id, campaign_key, measure, campaign_id, events, quantity, "
        "amount, customer_events) VALUES ('2020-01', :s, 0, 'complaints', NULL, 1, 1, 0, 0)",
        s=union.m1.id,
    )
    differences = ledger.check_totals(session)
    assert [(d.month, d.staff_id, d.campaign_id, d.measure) for d in differences] == [
        ("2020-01", union.m1.id, None, "complaints"),
        (month, union.m2.id, None, "payroll_volume"),
        (month, union.m3.id, None, "complaints"),
    ]
    assert differences[0].expected is None and differences[0].stored == (1, 1, D("0.00"), 0)
    assert differences[1].expected == (1, 0, D("50.00"), 0) and differences[1].stored == (1, 0, D("50.01"), 0)
    assert differences[2].expected == (1, 1, D("0.00"), 0) and differences[2].stored is None
    assert [d.staff_id for d in ledger.check_totals(session, month)] == [union.m2.id, union.m3.id]
    assert ledger.check_totals(session, "2019-12") == []

    r = runner.invoke(args=["ledger", "check-totals", "--month", month])
    assert r.exit_code == 1
    assert "ledger_total has events=1 quantity=0 amount=50.01" in r.output
    assert "2 row(s) in " + month in r.output

    # the nightly job tells every admin, once for the same differences
    assert "appraisal.ledger_totals_check" in {e["task"] for e in SCHEDULE.values()}
    assert beat_schedule()["appraisal-ledger-totals-check"]["task"] == "appraisal.ledger_totals_check"
    assert check_ledger_totals() is False
    assert check_ledger_totals() is False
    session.rollback()  # end the test session's read snapshot
    told = session.scalars(select(Notification).where(Notification.kind == "ledger")).all()
    assert [n.staff_id for n in told] == [union.admin.id]
    assert month in told[0].text and "2020-01" in told[0].text

    r = runner.invoke(args=["ledger", "check-totals", "--rebuild", "--by", "A0001"])
    assert r.exit_code == 0, r.output
    assert (
        f"rebuilt the totals of {month}" in r.output and "rebuilt the totals of 2020-01: 0 row(s)" in r.output
    )
    assert_consistent(session)
    audits = session.scalars(select(AuditLog).where(AuditLog.action == "ledger_totals_rebuild")).all()
    assert sorted(a.object_id for a in audits) == ["2020-01", month]
    assert all(a.actor_id == union.admin.id for a in audits)
    assert check_ledger_totals() is True


def test_check_totals_refuses_a_bad_month(runner, session, union) -> None:  # noqa: ANN001
    for bad in ("2026-13", "next", "2999-01"):
        r = runner.invoke(args=["ledger", "check-totals", "--month", bad])
        assert r.exit_code == 2 and "--month" in r.output, r.output
    r = runner.invoke(args=["ledger", "check-totals", "--rebuild", "--by", "NOPE"])
    assert r.exit_code == 2 and "no staff member 'NOPE'" in r.output
    assert session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_concurrent_inserts_leave_correct_totals(database_url, session, union, setup, month) -> None:  # noqa: ANN001
    """Two sessions insert events on the same keys at once, in opposite key orders, many times.

    On PostgreSQL both statement triggers upsert the same rows: the second waits for the first
    (rows locked in key order: no deadlock) and adds to its committed totals. SQLite serialises.
    """
    engine = make_engine(database_url, pool_size=4, max_overflow=0)
    staff = [union.m1.id, union.m2.id, union.m3.id]
    measures = ["accounts_opened", "payroll_volume", "complaints"]
    keys = [(s, c, m) for s in staff for c in (setup.campaign.id, None) for m in measures]
    day = f"{month}-15"
    rounds = 20
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def worker(name: str, order: list) -> None:  # noqa: ANN001
        s = db.factory(bind=engine)
        try:
            for i in range(rounds):
                barrier.wait()
                values = [
                    {
                        "event_id": f"{name}-{i}-{k}",
                        "occurred_on": dt.date.fromisoformat(day),
                        "month": month,
                        "staff_id": sid,
                        "campaign_id": cid,
                        "measure": measure,
                        "quantity": 1,
                        "amount": D("1.25"),
                    }
                    for k, (sid, cid, measure) in enumerate(order)
                ]
                s.execute(LedgerEvent.__table__.insert(), values)
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            s.rollback()
            barrier.abort()
        finally:
            s.close()

    threads = [
        threading.Thread(target=worker, args=("a", keys)),
        threading.Thread(target=worker, args=("b", list(reversed(keys)))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert errors == []
    totals = stored(session)
    assert len(totals) == len(keys)
    assert set(totals.values()) == {(2 * rounds, 2 * rounds, D("1.25") * 2 * rounds, 0)}
    assert_consistent(session)


_measures = st.sampled_from(["accounts_opened", "payroll_volume", "complaints", "training_missed"])
_event = st.tuples(
    st.integers(0, 2),  # staff
    st.booleans(),  # campaign
    st.booleans(),  # customer
    _measures,
    st.integers(-5, 50),
    st.decimals(min_value=-1000, max_value=100000, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1]),  # month: last or this
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(_event, min_size=1, max_size=25), multi_row=st.booleans())
def test_totals_equal_the_events_for_random_event_sets(
    session, union, setup, month, batch, multi_row
) -> None:  # noqa: ANN001
    staff = [union.m1.id, union.m2.id, union.m3.id]
    months = [month, ledger.month_of(clock.today())]
    values = []
    for sid, with_campaign, with_customer, measure, quantity, amount, m in batch:
        values.append(
            {
                "event_id": f"H{next(_seq):07d}",
                "occurred_on": ledger.month_bounds(months[m])[0],
                "month": months[m],
                "staff_id": staff[sid],
                "campaign_id": setup.campaign.id if with_campaign else None,
                "customer_id": setup.customer.id if with_customer else None,
                "measure": measure,
                "quantity": quantity,
                "amount": amount,
            }
        )
    if multi_row:
        session.execute(LedgerEvent.__table__.insert().values(values))
    else:
        session.execute(LedgerEvent.__table__.insert(), values)
    session.commit()
    assert_consistent(session)
