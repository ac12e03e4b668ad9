"""The monthly incentive run: a worked example to the fen, determinism, statement count, lock, disputes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from appraisal import ledger, runs
from appraisal.models import (
    Attendance,
    Dispute,
    IncentiveRun,
    LedgerEvent,
    ScorecardWeights,
    StatementLine,
    TrainingSession,
)
from campaigns.bounty_models import Bounty
from campaigns.models import Assignment, Target
from config import clock
from config.database import db
from customers.models import Snapshot
from org.models import Staff
from tasks.models import Task
from workflow.errors import GuardRefused

D = Decimal


def month_before(month: str) -> str:
    return ledger.previous_month(month)


@pytest.fixture
def month() -> str:
    return month_before(ledger.month_of(clock.today()))


def _day(month: str, day: int) -> dt.date:
    return dt.date(int(month[:4]), int(month[5:]), day)


_n = [0]


def add_event(session, staff, measure, month, quantity=0, amount="0", campaign=None, customer=None, day=10):  # noqa: ANN001, ANN201, PLR0913
    _n[0] += 1
    session.add(
        LedgerEvent(
            event_id=f"EV{_n[0]:06d}",
            occurred_on=_day(month, day),
            month=month,
            staff_id=staff.id,
            campaign_id=campaign.id if campaign else None,
            customer_id=customer.id if customer else None,
            measure=measure,
            quantity=quantity,
            amount=D(amount),
        )
    )


@pytest.fixture
def example(session, union, factories, month):  # noqa: ANN001, ANN201
    """Two campaigns covering every rule kind and modifier (see docs/rules.md for the same figures)."""
    u = union
    first, last = ledger.month_bounds(month)
    base = month_before(month)
    end = clock.today() + dt.timedelta(days=30)
    camp_a = factories.campaign(
        session,
        u.director,
        [u.b1],
        code="DEP-A",
        start_date=first,
        end_date=end,
        state="active",
        rules=[
            {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"},
            {"id": "dep", "kind": "percentage", "measure": "new_deposits", "rate": "0.0015", "cap": "1200"},
            {
                "id": "bonus",
                "kind": "attainment_bonus",
                "measure": "accounts_opened",
                "thresholds": [{"at": "1.0", "amount": "500"}, {"at": "1.2", "amount": "800"}],
            },
            {"id": "late", "kind": "penalty", "measure": "tasks_overdue", "rate": "20", "floor": "30"},
        ],
        targets=[Target(measure="accounts_opened", branch_id=u.b1.id, value=D(10), split="by_headcount")],
    )
    camp_b = factories.campaign(
        session,
        u.director,
        [u.b1, u.b2],
        code="PAY-B",
        start_date=first,
        end_date=end,
        state="active",
        budget=D(1000),
        rules=[
            {"id": "pay", "kind": "piece_rate", "measure": "payroll_accounts", "rate": "100"},
            {
                "id": "vol",
                "kind": "tiered",
                "mode": "marginal",
                "measure": "payroll_volume",
                "brackets": [{"from": 0, "to": 100000, "rate": "0.001"}, {"from": 100000, "rate": "0.002"}],
            },
            {
                "id": "accel",
                "kind": "tiered",
                "mode": "whole",
                "measure": "digital_activations",
                "brackets": [{"from": 0, "to": 10, "rate": "2"}, {"from": 10, "rate": "3"}],
            },
            {"id": "miss", "kind": "penalty", "measure": "payroll_accounts", "below": "0.5", "amount": "50"},
            {"id": "pool", "kind": "pool", "amount": "300"},
        ],
        targets=[Target(measure="payroll_accounts", staff_id=u.m3.id, value=D(4))],
    )
    c1 = factories.customer(session, u.b1, u.m2)
    c2 = factories.customer(session, u.b1, u.m1)
    session.add_all(
        [
            Assignment(
                campaign_id=camp_a.id,
                customer_id=c1.id,
                branch_id=u.b1.id,
                staff_id=u.m2.id,
                shares={str(u.m2.id): "0.6", str(u.m1.id): "0.4"},
            ),
            Assignment(campaign_id=camp_a.id, customer_id=c2.id, branch_id=u.b1.id, staff_id=u.m1.id),
            Snapshot(
                customer_id=c1.id, as_of=_day(base, 28), deposit_demand=D(400000), deposit_time=D(600000)
            ),
            Snapshot(
                customer_id=c1.id,
                as_of=_day(month, 28),
                deposit_demand=D(1),
                deposit_time=D(1),
                avg_daily_deposit=D("3080500.00"),
            ),
            Snapshot(
                customer_id=c2.id, as_of=_day(base, 28), deposit_demand=D(150000), deposit_time=D(50000)
            ),
            Snapshot(
                customer_id=c2.id, as_of=_day(month, 10), deposit_demand=D(100000), deposit_time=D(50000)
            ),
            Snapshot(
                customer_id=c2.id, as_of=_day(month, 20), deposit_demand=D(120000), deposit_time=D(50000)
            ),
        ]
    )
    for i in range(2):
        session.add(
            Task(
                kind="contact",
                title="call",
                campaign_id=camp_a.id,
                branch_id=u.b1.id,
                staff_id=u.m1.id,
                due_on=_day(month, 5 + i),
                state="open",
            )
        )
    add_event(session, u.m1, "accounts_opened", month, 4, campaign=camp_a)
    add_event(session, u.m1, "accounts_opened", month, 2, customer=c2)  # no campaign: assigned in A
    add_event(session, u.m2, "accounts_opened", month, 4, campaign=camp_a)
    add_event(session, u.m1, "payroll_accounts", month, 5, campaign=camp_b)
    add_event(session, u.m1, "payroll_volume", month, 0, "150000", campaign=camp_b)
    add_event(session, u.m3, "payroll_accounts", month, 1, campaign=camp_b)
    add_event(session, u.m3, "digital_activations", month, 12, campaign=camp_b)
    add_event(session, u.m3, "accounts_opened", base, 9, campaign=camp_a, day=20)  # another month: ignored
    s1 = TrainingSession(title="员工夜校", held_on=_day(month, 3))
    s2 = TrainingSession(title="员工夜校", held_on=_day(month, 10))
    session.add_all(
        [s1, s2, ScorecardWeights(weights={"results": 0, "process": 0, "service": 0, "training": 100})]
    )
    session.flush()
    session.add_all(
        [
            Attendance(session_id=s1.id, staff_id=u.m1.id, present=True),
            Attendance(session_id=s2.id, staff_id=u.m1.id, present=False),
            Attendance(session_id=s1.id, staff_id=u.m2.id, present=True),
            Attendance(session_id=s2.id, staff_id=u.m2.id, present=True),
        ]
    )
    bounty = Bounty(
        campaign_id=camp_a.id,
        branch_id=u.b1.id,
        title="县医院代发",
        customer_id=c1.id,
        amount=D(888),
        deadline=end,
        state="won",
        winner_id=u.m2.id,
        posted_by=u.director.id,
    )
    session.add(bounty)
    session.commit()
    return u, camp_a, camp_b, bounty


def lines_by(session, run):  # noqa: ANN001, ANN201
    rows = session.execute(
        select(Staff.staff_no, StatementLine.rule_id, StatementLine.amount)
        .join(Staff, Staff.id == StatementLine.staff_id)
        .where(StatementLine.run_id == run.id)
    ).all()
    return {(no, rule if not rule.startswith("bounty-") else "bounty"): amount for no, rule, amount in rows}


EXPECTED = {
    ("M0101", "acc"): D("120.00"),
    ("M0101", "dep"): D("1188.30"),  # (3 080 500 − 1 000 000) × 40 % + (160 000 − 200 000) = 792 200 × 0.15 %
    ("M0101", "bonus"): D("800.00"),  # 6 / (10 / 2 managers) = 120 %
    ("M0101", "late"): D("-30.00"),  # 2 overdue × −20 = −40, floor 30
    ("M0101", "pay"): D("440.14"),  # 500 scaled by 1000 / 1136
    ("M0101", "vol"): D("176.06"),  # 200 scaled (+1 fen, largest remainder)
    ("M0101", "miss"): D("0.00"),  # no target: no penalty
    ("M0101", "pool"): D("52.82"),  # 300 × 50 / 250 = 60 scaled (+1 fen)
    ("M0102", "acc"): D("80.00"),
    ("M0102", "dep"): D("1200.00"),  # 1 248 300 × 0.15 % = 1 872.45, capped at 1 200
    ("M0102", "bonus"): D("0.00"),  # 80 %
    ("M0102", "bounty"): D("888.00"),
    ("M0102", "pool"): D("105.63"),
    ("M0201", "pay"): D("88.03"),  # 100 scaled (+1 fen)
    ("M0201", "accel"): D("31.69"),  # 12 × 3 = 36 scaled
    ("M0201", "miss"): D("-50.00"),  # 1 / 4 = 25 % < 50 %: never scaled
    ("M0201", "pool"): D("105.63"),
}


def test_worked_example_to_the_fen(session, example, month) -> None:  # noqa: ANN001
    u, camp_a, camp_b, bounty = example
    run = runs.compute_run(session, month, actor_id=u.checker.id)
    session.commit()
    assert run.state == "computed"
    assert lines_by(session, run) == EXPECTED
    assert run.total == sum(EXPECTED.values())
    assert run.rule_versions == {"DEP-A": 1, "PAY-B": 1}
    # budget: the positive lines of PAY-B sum exactly to its budget
    b_positive = session.scalar(
        select(func.sum(StatementLine.amount)).where(
            StatementLine.run_id == run.id, StatementLine.campaign_id == camp_b.id, StatementLine.amount > 0
        )
    )
    assert D(str(b_positive)).quantize(D("0.01")) == D("1000.00")
    dep = session.scalar(
        select(StatementLine).where(
            StatementLine.run_id == run.id, StatementLine.staff_id == u.m2.id, StatementLine.rule_id == "dep"
        )
    )
    assert "1248300.00 × 0.15% = 1872.45, capped at 1200.00" in dep.explanation
    mine = runs.statement(session, run, u.m2.id)
    what_if = runs.what_if(session, mine)
    by_rule = {line.rule_id: what_if.get(line.id) for line in mine}
    assert by_rule["dep"] == D("0.00")  # capped: 10 000 more adds nothing
    assert by_rule["acc"] == D("20.00")  # one more account: 20
    assert by_rule["bonus"] == D("500.00")  # 5 of 5 reaches 100 %
    # per-branch totals
    assert run.totals["branches"]["B02"] == "175.35"


def test_rerun_is_identical_and_replaces_lines(session, example, month) -> None:  # noqa: ANN001
    u = example[0]
    first = runs.compute_run(session, month, actor_id=u.checker.id)
    session.commit()
    hash1, lines1 = first.result_hash, lines_by(session, first)
    again = runs.compute_run(session, month, actor_id=u.checker.id)
    session.commit()
    assert again.id == first.id and again.computations == 2
    assert again.result_hash == hash1 and lines_by(session, again) == lines1
    assert session.scalar(select(func.count()).select_from(StatementLine)) == len(EXPECTED)


def test_approve_lock_and_nothing_changes_after(session, example, month) -> None:  # noqa: ANN001
    u, camp_a, _b, bounty = example
    run = runs.compute_run(session, month, actor_id=u.director.id)
    session.commit()
    with pytest.raises(GuardRefused, match="four eyes"):
        runs.approve_run(session, run, u.director)
    session.rollback()
    with pytest.raises(GuardRefused, match="only a director"):
        runs.approve_run(session, run, u.checker)
    session.rollback()
    with pytest.raises(runs.RunError, match="must be approved"):
        runs.lock_run(session, run, u.checker.id, imports_done=True)
    runs.approve_run(session, run, u.director_b1)
    session.commit()
    with pytest.raises(runs.RunError, match="approved"):
        runs.compute_run(session, month)
    session.rollback()
    with pytest.raises(GuardRefused, match="imports"):
        runs.lock_run(session, run, u.checker.id, imports_done=False)
    session.rollback()
    with pytest.raises(GuardRefused, match="second person"):  # the approver cannot also release it
        runs.lock_run(session, run, u.director_b1.id, imports_done=True)
    session.rollback()
    runs.lock_run(session, run, u.checker.id, imports_done=True)
    session.commit()
    assert run.state == "locked"
    assert session.get(Bounty, bounty.id).state == "paid"
    with pytest.raises(runs.RunError, match="locked"):
        runs.compute_run(session, month)
    session.rollback()
    row = {
        "event_id": "LATE1",
        "occurred_on": _day(month, 15),
        "staff_no": "M0101",
        "customer_no": None,
        "campaign_code": "DEP-A",
        "measure": "accounts_opened",
        "quantity": 1,
        "amount": None,
    }
    result = ledger.import_events(session, [(2, row, [])])
    assert result.added == 0 and "locked" in result.errors[0].reason


def test_dispute_becomes_adjustment_in_next_month(session, example, month) -> None:  # noqa: ANN001
    u = example[0]
    run = runs.compute_run(session, month, actor_id=u.checker.id)
    session.commit()
    line = session.scalar(
        select(StatementLine).where(
            StatementLine.run_id == run.id, StatementLine.staff_id == u.m2.id, StatementLine.rule_id == "acc"
        )
    )
    with pytest.raises(runs.RunError, match="own statement"):
        runs.raise_dispute(session, line, u.m1, "not mine")
    with pytest.raises(runs.RunError, match="text: this text seems to contain a bank card number"):
        runs.raise_dispute(session, line, u.m2, "the account opened on card 4111 1111 1111 1111 is missing")
    dispute = runs.raise_dispute(session, line, u.m2, "one account of 10-28 is missing", "missing_result")
    session.commit()
    with pytest.raises(runs.RunError, match="adjustment"):
        runs.answer_dispute(session, dispute, u.checker.id, True, "ok", D(0))
    runs.answer_dispute(session, dispute, u.checker.id, True, "verified in core banking", D("20.00"))
    session.commit()
    runs.approve_run(session, run, u.director_b1)
    runs.lock_run(session, run, u.checker.id, imports_done=True)
    session.commit()
    this_month = ledger.month_of(clock.today())
    nxt = runs.compute_run(session, this_month, actor_id=u.checker.id)
    session.commit()
    adj = session.scalars(
        select(StatementLine).where(StatementLine.run_id == nxt.id, StatementLine.kind == "adjustment")
    ).all()
    assert [(a.staff_id, a.amount) for a in adj] == [(u.m2.id, D("20.00"))]
    session.refresh(dispute)
    assert dispute.applied_run_id == nxt.id
    # the locked month's statement is unchanged
    assert lines_by(session, run) == EXPECTED


def test_recompute_keeps_disputes_on_the_same_line(session, example, month) -> None:  # noqa: ANN001
    """A dispute raised on a computed run follows its line (same staff, campaign, rule) through a
    recompute; a recompute that would drop a disputed line is refused and changes nothing."""
    u, camp_a = example[0], example[1]
    run = runs.compute_run(session, month, actor_id=u.checker.id)
    session.commit()

    def acc_line() -> StatementLine:
        return session.scalar(
            select(StatementLine).where(
                StatementLine.run_id == run.id,
                StatementLine.staff_id == u.m2.id,
                StatementLine.rule_id == "acc",
            )
        )

    first = acc_line()
    dispute = runs.raise_dispute(session, first, u.m2, "one account of the 28th is missing", "missing_result")
    session.commit()
    old_id = first.id
    runs.compute_run(session, month, actor_id=u.checker.id)
    session.commit()
    session.expire_all()
    moved = acc_line()
    assert moved.id != old_id and session.get(Dispute, dispute.id).line_id == moved.id
    assert session.get(StatementLine, old_id) is None
    assert lines_by(session, run) == EXPECTED

    # the rule is withdrawn for the month: the disputed line would go, so the recompute is refused
    rules = [r for r in camp_a.rules if r["id"] != "acc"]
    runs.add_rule_version(
        session, camp_a, rules, ledger.month_bounds(month)[0], u.director.id, "acc withdrawn"
    )
    session.commit()
    with pytest.raises(
        runs.RunError, match=rf"no longer has the lines disputed by #{dispute.id} \(M\w+ acc\)"
    ):
        runs.compute_run(session, month, actor_id=u.checker.id)
    session.rollback()
    session.expire_all()
    assert session.get(Dispute, dispute.id).line_id == moved.id
    assert lines_by(session, run) == EXPECTED


def test_bad_months(session, union) -> None:  # noqa: ANN001
    with pytest.raises(ledger.MonthError, match="YYYY-MM"):
        runs.compute_run(session, "2026-13")
    future = ledger.month_of(clock.today() + dt.timedelta(days=40))
    with pytest.raises(ledger.MonthError, match="future"):
        runs.compute_run(session, future)
    with pytest.raises(runs.RunError, match="no branch"):
        runs.compute_run(session, ledger.month_of(clock.today()), "ZZZ")
    assert session.scalar(select(func.count()).select_from(IncentiveRun)) == 0


def _count_statements(fn):  # noqa: ANN001, ANN202
    count = [0]

    def before(*_a, **_k) -> None:  # noqa: ANN002, ANN003
        count[0] += 1

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return count[0]


def test_statement_count_does_not_grow_with_staff(session, example, month, factories) -> None:  # noqa: ANN001
    u, camp_a, camp_b, _ = example
    runs.compute_run(session, month)  # the first computation also creates the run row
    session.commit()
    small = _count_statements(lambda: (runs.compute_run(session, month), session.commit()))
    for i in range(40):
        s = factories.staff(session, u.b1 if i % 2 else u.b2, ("manager",), staff_no=f"X{i:04d}")
        add_event(session, s, "payroll_accounts", month, 1 + i % 3, campaign=camp_b)
        add_event(session, s, "accounts_opened", month, 1, campaign=camp_a if i % 2 else None)
    session.commit()
    large = _count_statements(lambda: (runs.compute_run(session, month), session.commit()))
    assert large == small <= 50


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(8))))
def test_event_order_does_not_matter(session, union, factories, month, order) -> None:  # noqa: ANN001
    """Each example gets a fresh branch; the lines (by position of staff) must equal the first example's."""
    first, last = ledger.month_bounds(month)
    branch = factories.branch(session, f"H{_n[0]:05d}", parent=union.root)
    managers = [factories.staff(session, branch, ("manager",)) for _ in range(3)]
    camp = factories.campaign(
        session,
        union.director,
        [branch],
        start_date=first,
        end_date=clock.today() + dt.timedelta(days=9),
        state="active",
        budget=D("77.77"),
        rules=[
            {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "13.33"},
            {"id": "vol", "kind": "percentage", "measure": "payroll_volume", "rate": "0.0013"},
        ],
        targets=[Target(measure="accounts_opened", branch_id=branch.id, value=D(7), split="by_headcount")],
    )
    events = [
        (managers[i % 3], "accounts_opened" if i % 2 else "payroll_volume", i + 1, f"{1000 * (i + 1)}.{i}1")
        for i in range(8)
    ]
    for index in order:
        staff, measure, qty, amount = events[index]
        add_event(session, staff, measure, month, qty, amount, campaign=camp)
    session.commit()
    run = runs.compute_run(session, month, branch.code)
    session.commit()
    position = {m.id: i for i, m in enumerate(managers)}
    got = sorted(
        (position[line.staff_id], line.rule_id, line.amount)
        for line in session.scalars(select(StatementLine).where(StatementLine.run_id == run.id))
    )
    assert sum(a for _, _, a in got) == D("77.77")  # positive lines scaled exactly to the budget
    again = runs.compute_run(session, month, branch.code)
    session.commit()
    assert again.result_hash == run.result_hash
    if not hasattr(test_event_order_does_not_matter, "first"):
        test_event_order_does_not_matter.first = got  # type: ignore[attr-defined]
    assert got == test_event_order_does_not_matter.first  # type: ignore[attr-defined]


def test_rule_version_amendment_is_named_by_the_run(session, example, month) -> None:  # noqa: ANN001
    u, camp_a, _b, _bounty = example
    first, last = ledger.month_bounds(month)
    rules = [dict(r) for r in camp_a.rules]
    rules[0] = {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "25"}
    runs.add_rule_version(session, camp_a, rules, last, actor_id=u.director.id, note="rate up")
    session.commit()
    run = runs.compute_run(session, month)
    session.commit()
    assert run.rule_versions == {"DEP-A": 2, "PAY-B": 1}
    assert lines_by(session, run)[("M0101", "acc")] == D("150.00")
    with pytest.raises(runs.RunError, match="rules"):
        runs.add_rule_version(session, camp_a, [{"id": "x", "kind": "piece_rate"}], last)


def test_same_hash_on_every_database(session, example, month) -> None:  # noqa: ANN001
    """The canonical lines hash to the same SHA-256 on SQLite and PostgreSQL (CI runs both)."""
    run = runs.compute_run(session, month)
    session.commit()
    canon = sorted((k, str(v)) for k, v in lines_by(session, run).items())
    assert canon == sorted((k, str(v)) for k, v in EXPECTED.items())
    # measured on SQLite and on PostgreSQL: the same statements to the fen and to the letter
    assert run.result_hash == "5499d77bf15a44ad699425be5c4727ed3b5b78c148bd493eb4ee6fc8de06e919"
    again = runs.decide(session, runs.gather(session, month, None), run.id)
    assert again.result_hash == run.result_hash


def test_union_and_branch_runs_of_one_month_exclude_each_other(session, example, month) -> None:  # noqa: ANN001
    runs.compute_run(session, month, "B02")
    session.commit()
    with pytest.raises(runs.RunError, match="either for the whole union or branch by branch"):
        runs.compute_run(session, month)
    session.rollback()
    runs.compute_run(session, month, "B01")  # another branch is fine
    session.commit()
    b2 = runs.get_run(session, month, "B02")
    assert {
        line.staff_id for line in session.scalars(select(StatementLine).where(StatementLine.run_id == b2.id))
    } == {example[0].m3.id}


def test_lock_settles_campaigns_whose_last_month_it_pays(session, example, month) -> None:  # noqa: ANN001
    u, camp_a, camp_b, _ = example
    first, last = ledger.month_bounds(month)
    camp_b.end_date = last
    camp_b.state = "closed"
    session.commit()
    run = runs.compute_run(session, month, actor_id=u.checker.id)
    runs.approve_run(session, run, u.director)
    runs.lock_run(session, run, u.checker.id, imports_done=True)
    session.commit()
    session.refresh(camp_b)
    session.refresh(camp_a)
    assert (camp_b.state, camp_a.state) == ("settled", "active")
