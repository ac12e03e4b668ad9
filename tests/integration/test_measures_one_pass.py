"""The ledger read of :func:`appraisal.measures.gather` against the plain definition.

The plain definition is one query per part over the events, as §6 states it: events naming a
campaign of the month inside its period; events with no campaign, for each campaign in which the
customer is assigned to that staff member (day inside that campaign's period); staff-level
measures of events with no campaign. ``gather`` reads the month's totals (``ledger_total``) for
campaigns covering the whole month and for events with no campaign, and the events only for
campaigns starting or ending inside the month (and the no-campaign events with a customer, only
when there are some); the figures must be the same to the fen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import and_, event, func, select, type_coerce

from appraisal import ledger, measures, runs
from appraisal.models import LedgerEvent
from campaigns.models import Assignment, Campaign
from config import clock
from config.database import Money

D = Decimal


@contextmanager
def ledger_reads(session) -> Iterator[list[str]]:  # noqa: ANN001
    """The SQL statements naming ``ledger_event`` that run inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN002, ANN202
        if "ledger_event" in statement:
            seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _reference(session, month: str, ids: list[int], branch_id: int | None):  # noqa: ANN001, ANN202
    """The three queries of the plain definition, summed in Python."""
    from org.models import Staff

    def scope(col):  # noqa: ANN001, ANN202
        return col.in_(select(Staff.id).where(Staff.branch_id == branch_id)) if branch_id else True

    per: dict[tuple[int, int], dict[str, Decimal]] = {}
    staff: dict[int, dict[str, Decimal]] = {}
    rows = session.execute(
        select(
            LedgerEvent.staff_id,
            LedgerEvent.campaign_id,
            LedgerEvent.measure,
            func.sum(LedgerEvent.quantity),
            type_coerce(func.sum(LedgerEvent.amount), Money),
        )
        .join(Campaign, Campaign.id == LedgerEvent.campaign_id)
        .where(
            LedgerEvent.month == month,
            LedgerEvent.campaign_id.in_(ids),
            LedgerEvent.occurred_on >= Campaign.start_date,
            LedgerEvent.occurred_on <= Campaign.end_date,
            scope(LedgerEvent.staff_id),
        )
        .group_by(LedgerEvent.staff_id, LedgerEvent.campaign_id, LedgerEvent.measure)
    ).all()
    rows += session.execute(
        select(
            LedgerEvent.staff_id,
            Assignment.campaign_id,
            LedgerEvent.measure,
            func.sum(LedgerEvent.quantity),
            type_coerce(func.sum(LedgerEvent.amount), Money),
        )
        .join(
            Assignment,
            and_(
                Assignment.customer_id == LedgerEvent.customer_id, Assignment.staff_id == LedgerEvent.staff_id
            ),
        )
        .join(Campaign, Campaign.id == Assignment.campaign_id)
        .where(
            LedgerEvent.month == month,
            LedgerEvent.campaign_id.is_(None),
            Assignment.campaign_id.in_(ids),
            LedgerEvent.occurred_on >= Campaign.start_date,
            LedgerEvent.occurred_on <= Campaign.end_date,
            scope(LedgerEvent.staff_id),
        )
        .group_by(LedgerEvent.staff_id, Assignment.campaign_id, LedgerEvent.measure)
    ).all()
    for sid, cid, measure, qty, amount in rows:
        value = D(amount or 0) if measures._is_sum(measure) else D(int(qty or 0))
        bucket = per.setdefault((sid, cid), {})
        bucket[measure] = bucket.get(measure, D(0)) + value
    for sid, measure, qty in session.execute(
        select(LedgerEvent.staff_id, LedgerEvent.measure, func.sum(LedgerEvent.quantity))
        .where(
            LedgerEvent.month == month,
            LedgerEvent.campaign_id.is_(None),
            LedgerEvent.measure.in_(measures.STAFF_MEASURES),
            scope(LedgerEvent.staff_id),
        )
        .group_by(LedgerEvent.staff_id, LedgerEvent.measure)
    ):
        bucket = staff.setdefault(sid, {})
        bucket[measure] = bucket.get(measure, D(0)) + D(int(qty or 0))
    return per, staff


_n = [0]


def _event(session, staff, measure, month, day, quantity=0, amount="0", campaign=None, customer=None):  # noqa: ANN001, ANN202, PLR0913
    _n[0] += 1
    session.add(
        LedgerEvent(
            event_id=f"OP{_n[0]:06d}",
            occurred_on=dt.date(int(month[:4]), int(month[5:]), day),
            month=month,
            staff_id=staff.id,
            campaign_id=campaign.id if campaign else None,
            customer_id=customer.id if customer else None,
            measure=measure,
            quantity=quantity,
            amount=D(amount),
        )
    )


@pytest.mark.parametrize("scoped", [False, True])
def test_one_pass_gives_the_per_part_figures(session, union, factories, scoped) -> None:  # noqa: ANN001
    u = union
    month = ledger.previous_month(ledger.month_of(clock.today()))
    first, last = ledger.month_bounds(month)
    end = clock.today() + dt.timedelta(days=30)
    whole = factories.campaign(
        session, u.director, [u.b1, u.b2], code="W", start_date=first, end_date=end, state="active"
    )
    # starts on the 11th and ends on the 20th: events outside count for nothing
    part = factories.campaign(
        session,
        u.director,
        [u.b1],
        code="P",
        start_date=first + dt.timedelta(days=10),
        end_date=first + dt.timedelta(days=19),
        state="closed",
    )
    cancelled = factories.campaign(
        session, u.director, [u.b1], code="X", start_date=first, end_date=end, state="cancelled"
    )
    # began the month before, ends on the 10th (cuts the month); began before, ends on the last day
    early = factories.campaign(
        session,
        u.director,
        [u.b2],
        code="E",
        start_date=first - dt.timedelta(days=20),
        end_date=first + dt.timedelta(days=9),
        state="settled",
    )
    exact = factories.campaign(
        session,
        u.director,
        [u.b1, u.b2],
        code="M",
        start_date=first - dt.timedelta(days=3),
        end_date=last,
        state="paused",
    )
    c1 = factories.customer(session, u.b1, u.m1)
    c2 = factories.customer(session, u.b1, u.m2)
    c3 = factories.customer(session, u.b2, u.m3)
    session.add_all(
        [
            Assignment(campaign_id=whole.id, customer_id=c1.id, branch_id=u.b1.id, staff_id=u.m1.id),
            Assignment(campaign_id=part.id, customer_id=c1.id, branch_id=u.b1.id, staff_id=u.m1.id),
            Assignment(campaign_id=cancelled.id, customer_id=c1.id, branch_id=u.b1.id, staff_id=u.m1.id),
            Assignment(campaign_id=part.id, customer_id=c2.id, branch_id=u.b1.id, staff_id=u.m2.id),
            Assignment(campaign_id=whole.id, customer_id=c3.id, branch_id=u.b2.id, staff_id=u.m3.id),
            Assignment(campaign_id=early.id, customer_id=c3.id, branch_id=u.b2.id, staff_id=u.m3.id),
            Assignment(campaign_id=exact.id, customer_id=c2.id, branch_id=u.b1.id, staff_id=u.m2.id),
        ]
    )
    for day in (1, 10, 11, 15, 20, 21, last.day):
        for staff in (u.m1, u.m2, u.m3):
            _event(session, staff, "accounts_opened", month, day, 1 + day % 3, campaign=whole)
            _event(session, staff, "accounts_opened", month, day, 2, campaign=part)
            _event(session, staff, "payroll_volume", month, day, 0, f"{day}1.37", campaign=part)
            _event(session, staff, "accounts_opened", month, day, 5, campaign=cancelled)
            _event(session, staff, "payroll_volume", month, day, 0, "10.01", customer=c1)
            _event(session, staff, "accounts_opened", month, day, 1, customer=c1)
            _event(session, staff, "accounts_opened", month, day, 1, customer=c2)
            _event(session, staff, "payroll_volume", month, day, 0, "0.07", customer=c3)
            _event(session, staff, "accounts_opened", month, day, 3)  # no campaign, no customer
            _event(session, staff, "complaints", month, day, 1)
            _event(session, staff, "training_missed", month, day, 2, customer=c1)
            _event(session, staff, "complaints", month, day, 1, campaign=whole)  # counts in W only
            _event(session, staff, "accounts_opened", month, day, 1 + day % 2, campaign=early)
            _event(session, staff, "payroll_volume", month, day, 0, f"0.{day:02d}", campaign=early)
            _event(session, staff, "payroll_volume", month, day, 0, f"{day}.05", campaign=exact)
            _event(session, staff, "digital_activations", month, day, 3, campaign=exact)
        # a reversal (negative) posted into the month for an event of the month before
        _event(session, u.m1, "payroll_volume", month, day, 0, "-7.77", campaign=exact)
        _event(session, u.m3, "accounts_opened", month, day, -1, campaign=early)
        _event(session, u.m1, "accounts_opened", ledger.previous_month(month), 5, 7, campaign=whole)
    session.commit()

    branch_id = u.b1.id if scoped else None
    data = measures.gather(session, month, branch_id)
    ids = [c.id for c in data.campaigns]
    assert sorted(ids) == sorted([whole.id, part.id, early.id, exact.id])
    per, staff = _reference(session, month, ids, branch_id)
    ledger_measures = {
        key: {
            m: v
            for m, v in values.items()
            if m
            in ("accounts_opened", "payroll_volume", "complaints", "training_missed", "digital_activations")
        }
        for key, values in data.measures.items()
    }
    assert {k: v for k, v in ledger_measures.items() if v} == per
    assert {k: v for k, v in data.staff_measures.items()} == staff
    assert per  # the example exercises every part
    assert any(cid == part.id for _sid, cid in per)
    assert any(cid == early.id for _sid, cid in per) and any(cid == exact.id for _sid, cid in per)
    assert staff
    # the totals read nothing the events would not: every figure of the month is the reference's
    if scoped:
        assert {sid for sid, _cid in per} <= {u.m1.id, u.m2.id}


def test_one_read_of_the_events_when_every_event_names_its_campaign(session, union, factories) -> None:  # noqa: ANN001
    u = union
    month = ledger.previous_month(ledger.month_of(clock.today()))
    first, _last = ledger.month_bounds(month)
    camp = factories.campaign(
        session, u.director, [u.b1], code="W", start_date=first, end_date=clock.today(), state="active"
    )
    for day in (1, 15):
        _event(session, u.m1, "accounts_opened", month, day, 2, campaign=camp)
        _event(session, u.m2, "payroll_volume", month, day, 0, "12.34", campaign=camp)
        _event(session, u.m1, "complaints", month, day, 1)  # no campaign, no customer: staff-level only
    session.commit()
    with ledger_reads(session) as seen:
        data = measures.gather(session, month)
    assert seen == []  # every figure from ledger_total
    assert data.measures[(u.m1.id, camp.id)]["accounts_opened"] == 4
    assert data.measures[(u.m2.id, camp.id)]["payroll_volume"] == D("24.68")
    assert data.staff_measures[u.m1.id]["complaints"] == 2
    # the whole run (read, decide, write) does not read the events either
    with ledger_reads(session) as seen:
        run = runs.compute_run(session, month)
    assert seen == []
    assert run.state == "computed" and run.line_count > 0


def test_events_are_read_only_for_campaigns_cutting_the_month(session, union, factories) -> None:  # noqa: ANN001
    u = union
    month = ledger.previous_month(ledger.month_of(clock.today()))
    first, last = ledger.month_bounds(month)
    whole = factories.campaign(
        session, u.director, [u.b1], code="W", start_date=first, end_date=clock.today(), state="active"
    )
    cut = factories.campaign(
        session,
        u.director,
        [u.b1],
        code="C",
        start_date=first + dt.timedelta(days=14),
        end_date=last,
        state="active",
    )
    for day in (1, 14, 15, last.day):
        _event(session, u.m1, "accounts_opened", month, day, 2, campaign=whole)
        _event(session, u.m1, "accounts_opened", month, day, 3, campaign=cut)
        _event(session, u.m2, "payroll_volume", month, day, 0, "100.01", campaign=cut)
    session.commit()
    with ledger_reads(session) as seen:
        data = measures.gather(session, month)
    assert len(seen) == 1 and "ledger_total" in seen[0]  # one statement: the totals UNION ALL the events
    assert data.measures[(u.m1.id, whole.id)]["accounts_opened"] == 8
    assert data.measures[(u.m1.id, cut.id)]["accounts_opened"] == 6  # the 15th and the last day
    assert data.measures[(u.m2.id, cut.id)]["payroll_volume"] == D("200.02")
