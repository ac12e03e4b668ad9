"""The monthly incentive run (月度绩效核算): aggregate in the database, decide in Python, write set-based.

:func:`compute_run` reads the month's aggregates (:func:`appraisal.measures.gather`, a fixed
number of GROUP BY queries), evaluates every campaign's rules over them with
:mod:`appraisal.rules` (steps 3–5 of PRODUCT.md §6), adds bounty and adjustment lines, and
writes all lines with ONE insert statement. Everything it writes — the lines, the totals and the
flip to ``computed`` — is in the caller's single transaction, so a crash leaves nothing partial:
the run is either as before or complete. A recompute replaces the lines of a run not yet
approved. The number of SQL statements does not depend on the number of staff.

Other entry points: :func:`begin_run` (commit a ``computing`` run before a long job),
:func:`approve_run`, :func:`close_checklist`, :func:`lock_run`, :func:`raise_dispute`,
:func:`answer_dispute`, :func:`add_rule_version`, :func:`statement`.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from appraisal.ledger import MonthError, locked_scopes, month_bounds, month_of, parse_month
from appraisal.machine import dispute_workflow, run_workflow
from appraisal.measures import STAFF_MEASURES, MonthData, gather
from appraisal.models import (
    DISPUTE_CATEGORIES,
    Dispute,
    DisputeState,
    IncentiveRun,
    RuleVersion,
    RunState,
    StatementLine,
)
from appraisal.money import allocate_largest_remainder, as_decimal, sum_fen
from appraisal.rules import (
    MEASURES,
    BudgetScaling,
    Line,
    MeasureUnit,
    Rule,
    RuleErrors,
    RuleInputs,
    RuleKind,
    evaluate,
    evaluate_group,
    parse_rules,
    scaled_line,
)
from appraisal.scorecard import current_weights, score_month
from config import clock
from org.models import Branch, Staff

Progress = Callable[[int, int, str], None]
#: What "one more result" means in the what-if for measures that are sums of money.
WHAT_IF_SUM_STEP = Decimal(10000)
PHASES = 4
NO_CAMPAIGN = "~"  # campaign key of lines that belong to no campaign (sorts last)


class RunError(ValueError):
    """A run request that cannot be done (the message says why); nothing was changed."""


@dataclass(frozen=True)
class Computed:
    """The lines of a run before they are written (rows for ``statement_line``) and its totals."""

    rows: list[Row]
    total: Decimal
    totals: dict[str, Any]
    rule_versions: dict[str, int]
    staff_count: int
    result_hash: str
    dispute_ids: list[int]
    bounty_ids: list[int]


# ---------------------------------------------------------------------------------------------
# Starting and computing


def _scope(session: Session, scope: str | int | None) -> tuple[int | None, str]:
    """(branch id or None, scope key) from a branch code, id, or None/'union'."""
    if scope in (None, "", "union"):
        return None, "union"
    stmt = select(Branch.id, Branch.code)
    stmt = stmt.where(Branch.id == scope) if isinstance(scope, int) else stmt.where(Branch.code == str(scope))
    row = session.execute(stmt).first()
    if row is None:
        raise RunError(
            f"no branch {scope!r}: give a branch code (e.g. B01) or leave the scope empty for the union"
        )
    return row[0], row[1]


def find_run(session: Session, month: str, scope: str | int | None = None) -> IncentiveRun | None:
    _, key = _scope(session, scope)
    return session.scalar(
        select(IncentiveRun).where(IncentiveRun.month == month, IncentiveRun.scope_key == key)
    )


def _check_open(session: Session, month: str, branch_id: int | None, key: str) -> IncentiveRun | None:
    run = session.scalar(
        select(IncentiveRun).where(IncentiveRun.month == month, IncentiveRun.scope_key == key)
    )
    if run is not None and run.state in (RunState.approved, RunState.locked):
        raise RunError(
            f"the {key} run of {month} is {run.state}: it cannot be recomputed "
            "(corrections become adjustment lines in a later run)"
        )
    if run is None:
        # a month is run either for the whole union or branch by branch, never both (no double pay)
        others = session.scalars(
            select(IncentiveRun.scope_key).where(IncentiveRun.month == month, IncentiveRun.scope_key != key)
        ).all()
        clash = [o for o in others if key == "union" or o == "union"]
        if clash:
            raise RunError(
                f"month {month} already has a run for {', '.join(sorted(clash))}: a month is run either for the "
                "whole union or branch by branch, not both"
            )
    scopes = locked_scopes(session, [month])
    closed = scopes.get(month, set())
    if None in closed or (branch_id is not None and branch_id in closed):
        raise RunError(f"month {month} is already approved or locked for this scope: nothing of it changes")
    if branch_id is None and closed:
        raise RunError(f"month {month} has approved or locked branch runs: a union run would change them")
    return run


def begin_run(
    session: Session, month: str, scope: str | int | None = None, actor_id: int | None = None
) -> IncentiveRun:
    """Make the run of ``month`` visible as ``computing`` (commit it before a long job). Flushes."""
    month = parse_month(month)
    branch_id, key = _scope(session, scope)
    run = _check_open(session, month, branch_id, key)
    if run is None:
        run = IncentiveRun(
            month=month,
            scope_branch_id=branch_id,
            scope_key=key,
            state=RunState.computing,
            created_by=actor_id,
        )
        session.add(run)
        session.flush()
    elif run.state == RunState.computed:
        run_workflow.fire(session, run, "recompute", actor_id=actor_id)
    return run


@dataclass(frozen=True)
class Prepared:
    """The outcome of the read phase of a run: what :func:`write_run` stores."""

    month: str
    branch_id: int | None
    key: str
    run_id: int | None
    computed: Computed


def prepare_run(
    session: Session,
    month: str,
    scope_branch_id: str | int | None = None,
    progress: Progress | None = None,
    *,
    delay: float = 0.0,
) -> Prepared:
    """The read phase of a run: check the month and scope, aggregate, decide. Writes nothing."""
    report = progress or (lambda done, total, message: None)
    month = parse_month(month)
    branch_id, key = _scope(session, scope_branch_id)
    existing = _check_open(session, month, branch_id, key)
    report(0, PHASES, "reading measures")
    data = gather(session, month, branch_id)
    _pause(delay)
    report(1, PHASES, "applying rules")
    computed = decide(session, data, existing.id if existing else None)
    _pause(delay)
    report(2, PHASES, "writing statements")
    _pause(delay)
    return Prepared(month, branch_id, key, existing.id if existing else None, computed)


def write_run(session: Session, prepared: Prepared, actor_id: int | None = None) -> IncentiveRun:
    """The write phase: the run, all its lines (one statement) and the flip to computed, in this transaction."""
    month, branch_id, key, computed = prepared.month, prepared.branch_id, prepared.key, prepared.computed
    run = begin_run(session, month, key if branch_id is not None else None, actor_id)
    if prepared.run_id not in (None, run.id):  # pragma: no cover - the unique (month, scope) forbids it
        raise RunError(f"the run of {month} changed while it was computed; run it again")
    rows = computed.rows
    # the previous computation's lines: the new ones are written first, disputes move to them, then these go
    previous = session.scalar(select(func.max(StatementLine.id)).where(StatementLine.run_id == run.id))
    insert_lines(session, run.id, rows)
    if previous is not None:
        _move_disputes(session, run, previous)
        session.execute(
            delete(StatementLine).where(StatementLine.run_id == run.id, StatementLine.id <= previous)
        )
    if computed.dispute_ids:
        session.execute(
            update(Dispute).where(Dispute.id.in_(computed.dispute_ids)).values(applied_run_id=run.id)
        )
    session.execute(
        update(Dispute)
        .where(Dispute.applied_run_id == run.id, Dispute.id.not_in(computed.dispute_ids or [0]))
        .values(applied_run_id=None)
    )
    run.total = computed.total
    run.totals = computed.totals
    run.rule_versions = computed.rule_versions
    run.line_count = len(rows)
    run.staff_count = computed.staff_count
    run.result_hash = computed.result_hash
    run.computations = (run.computations or 0) + 1
    run_workflow.fire(session, run, "finish", actor_id=actor_id, payload={"lines": len(rows)})
    return run


def _move_disputes(session: Session, run: IncentiveRun, previous: int) -> None:
    """Disputes raised on a line of the previous computation now refer to the same line of the new one.

    A line is the same when it has the same staff member, campaign and rule. A disputed line the
    recompute no longer gives is refused with a RunError naming the disputes (nothing changes).
    """
    old, new = aliased(StatementLine), aliased(StatementLine)
    same_line = and_(
        new.run_id == run.id,
        new.id > previous,
        new.staff_id == old.staff_id,
        new.campaign_id.is_not_distinct_from(old.campaign_id),
        new.rule_id == old.rule_id,
    )
    disputed = session.execute(
        select(Dispute.id, old.rule_id, Staff.staff_no, select(new.id).where(same_line).scalar_subquery())
        .join(old, old.id == Dispute.line_id)
        .join(Staff, Staff.id == old.staff_id)
        .where(old.run_id == run.id, old.id <= previous)
        .order_by(Dispute.id)
    ).all()
    gone = [f"#{d} ({no} {rule})" for d, rule, no, line_id in disputed if line_id is None]
    if gone:
        raise RunError(
            f"the recomputed {run.scope_key} run of {run.month} no longer has the lines disputed by "
            f"{', '.join(gone)}: answer those disputes in the dispute list, then run it again"
        )
    if disputed:
        table = Dispute.__table__
        session.execute(
            update(table).where(table.c.id == bindparam("dispute")).values(line_id=bindparam("line")),
            [{"dispute": d, "line": line_id} for d, _rule, _no, line_id in disputed],
        )


def compute_run(
    session: Session,
    month: str,
    scope_branch_id: str | int | None = None,
    progress: Progress | None = None,
    actor_id: int | None = None,
    *,
    delay: float = 0.0,
) -> IncentiveRun:
    """Compute (or recompute) the run of ``month`` for the union or one branch, in the caller's transaction.

    Reads first, then writes the run, its lines in one statement, and flips it to ``computed``.
    Raises :class:`RunError` or :class:`~appraisal.ledger.MonthError` on bad input, with nothing
    changed. ``progress`` must not write to the database here on SQLite (a reporter committing
    in its own transaction would make ours unable to write): the job uses :func:`prepare_run`
    and :func:`write_run` in two transactions instead. ``delay`` (seconds, tests only) slows
    each phase so a worker can be killed mid-run.
    """
    prepared = prepare_run(session, month, scope_branch_id, progress, delay=delay)
    return write_run(session, prepared, actor_id)


def _pause(delay: float) -> None:
    if delay > 0:
        time.sleep(delay)


def run_delay() -> float:
    """Test-only slowdown of each phase (``CAMPAIGNFLOW_RUN_DELAY`` seconds), for the worker-kill test."""
    import os

    try:
        return max(float(os.environ.get("CAMPAIGNFLOW_RUN_DELAY", "0")), 0.0)
    except ValueError:
        return 0.0


# ---------------------------------------------------------------------------------------------
# Deciding (Python over the aggregates)


def _budgets_left(session: Session, data: MonthData) -> dict[str, Decimal | None]:
    """Each campaign's budget minus its positive lines already in approved or locked runs of other months."""
    ids = [c.id for c in data.campaigns if c.budget is not None]
    paid: dict[int, Decimal] = {}
    if ids:
        for cid, amount in session.execute(
            select(StatementLine.campaign_id, func.sum(StatementLine.amount))
            .join(IncentiveRun, IncentiveRun.id == StatementLine.run_id)
            .where(
                StatementLine.campaign_id.in_(ids),
                StatementLine.amount > 0,
                StatementLine.kind != "adjustment",
                or_(
                    # other months: what approved or locked runs paid
                    and_(
                        IncentiveRun.month != data.month,
                        IncentiveRun.state.in_([RunState.approved, RunState.locked]),
                    ),
                    # this month, other branches' runs (a month run branch by branch shares one budget)
                    and_(
                        IncentiveRun.month == data.month,
                        IncentiveRun.scope_branch_id.is_not(None),
                        IncentiveRun.scope_branch_id != (data.scope_branch_id or 0),
                        IncentiveRun.state != RunState.computing,
                    ),
                ),
            )
            .group_by(StatementLine.campaign_id)
        ):
            paid[cid] = Decimal(str(amount or 0)).quantize(Decimal("0.01"))
    return {
        c.code: (c.budget - paid.get(c.id, Decimal(0))) if c.budget is not None else None
        for c in data.campaigns
    }


def _what_if(rule: Rule, value: Decimal, target: Decimal | None, amount: Decimal) -> Decimal | None:
    if rule.kind in (RuleKind.BOUNTY, RuleKind.POOL) or rule.measure is None:
        return None
    measure = MEASURES.get(rule.measure)
    step = WHAT_IF_SUM_STEP if measure is not None and measure.unit is MeasureUnit.SUM else Decimal(1)
    return evaluate(rule, RuleInputs(value=value + step, target=target)).amount - amount


_json_text = json.encoder.encode_basestring  # type: ignore[attr-defined]  # json.dumps of a str, ensure_ascii=False


class _Tail:
    """What one evaluated line writes after its staff member and campaign, ready for COPY, SQLite and the hash.

    Every staff member with the same evaluated line (same rule, inputs and amount) shares one
    ``_Tail``: its columns are formatted once, not once per staff member.
    """

    __slots__ = ("line", "version", "dispute_id", "amount", "values", "copy", "canon")

    def __init__(self, line: Line, version: int | None, dispute_id: int | None = None) -> None:
        self.line, self.version, self.dispute_id = line, version, dispute_id
        self.amount = line.amount
        value = _fig(line.value)
        #: in _TAIL_COLUMNS order, as the database stores them
        self.values: tuple[Any, ...] = (
            line.rule_id,
            version,
            line.kind.value if isinstance(line.kind, RuleKind) else line.kind,
            line.measure,
            value,
            _fig(line.target),
            line.computed,
            line.amount,
            line.limited_by,
            line.budget_scaled_from,
            None,  # what_if: computed when a statement is shown (runs.what_if)
            line.formula,
            line.explanation,
            line.explanation_zh,
            dispute_id,
        )
        self.copy = "\t".join(map(_copy_field, self.values))
        canon = [line.rule_id, self.values[2], line.measure, None if value is None else f"{value:f}"]
        canon += [f"{line.amount:.2f}", line.explanation]
        # what json.dumps(…, ensure_ascii=False) writes for each item (all are text or None)
        self.canon = ", ".join("null" if v is None else _json_text(v) for v in canon)

    def sqlite_values(self) -> tuple[Any, ...]:
        return tuple(f"{v:f}" if v.__class__ is Decimal else v for v in self.values)


class _Evaluations:
    """``evaluate`` of one rule, remembered by input: the same (value, target) gives the same line.

    :func:`appraisal.rules.evaluate` is a pure function of the rule and its inputs and a
    :class:`~appraisal.rules.Line` is immutable, so staff members with the same result and target
    (most counts: a few hundred distinct values among thousands of staff) share one evaluated
    line, and its formatted columns (:class:`_Tail`). Inputs are keyed by their exact text, so 2
    and 2.00 are evaluated separately and every line is exactly what ``evaluate`` gives for its
    own inputs.
    """

    __slots__ = ("_rule", "_version", "seen")

    def __init__(self, rule: Rule, version: int | None = None) -> None:
        self._rule = rule
        self._version = version
        #: (value text, target text) -> the evaluated line's tail
        self.seen: dict[tuple[str, str | None], _Tail] = {}

    def tail(self, value: Decimal, target: Decimal | None) -> _Tail:
        key = (str(value), None if target is None else str(target))
        tail = self.seen.get(key)
        if tail is None:
            line = evaluate(self._rule, RuleInputs(value=value, target=target))
            tail = self.seen[key] = _Tail(line, self._version)
        return tail


#: One line of a run before it is written: (staff_no, campaign code, rule_id, staff_id, branch_id,
#: campaign_id, tail). Sorting these tuples orders a run's lines by staff_no, campaign and rule.
Row = tuple[str, str, str, int, int, "int | None", _Tail]


def decide(session: Session, data: MonthData, run_id: int | None) -> Computed:
    """Evaluate every rule over the aggregates (:func:`_decide`), the cyclic garbage collector paused.

    Deciding allocates a few hundred thousand small objects and frees none of them until it
    returns, and none form cycles, so the collector's full passes over them would find nothing.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _decide(session, data, run_id)
    finally:
        if paused:
            gc.enable()


def _decide(session: Session, data: MonthData, run_id: int | None) -> Computed:
    """Evaluate every rule over the aggregates; a few reads (budgets, disputes, bounties), no writes.

    The lines are what :func:`appraisal.rules.compute_statement` gives for the evaluated lines
    (steps 3–5 of PRODUCT.md §6), computed without one object per line: each rule is evaluated
    once per distinct input (:class:`_Evaluations`), each staff member's line refers to that
    shared result, and only lines scaled to a campaign's budget get their own.
    ``tests/unit/test_rules_fastpaths.py`` checks the two against each other.
    """
    staff = data.staff
    scores = None
    rule_versions: dict[str, int] = {}
    campaign_ids: dict[str, int | None] = {NO_CAMPAIGN: None}
    #: (campaign, measure) -> staff_id -> (target, its text): rules on one measure share targets
    targets_of: dict[tuple[int, str], dict[int, tuple[Decimal | None, str | None]]] = {}
    by_code: dict[str, list[Row]] = {}  # every line of each campaign (budgets scale a campaign's lines)
    participants_of = data.participants_of(data.campaigns)
    for c in data.campaigns:
        campaign_ids[c.code] = c.id
        rule_versions[c.code] = c.rule_version
        try:
            rules = parse_rules(c.rules, path=f"campaign {c.code} rules")
        except RuleErrors as exc:
            raise RunError(str(exc)) from None
        participants = participants_of[c.id]
        out = by_code.setdefault(c.code, [])
        code, cid = c.code, c.id
        # what the rules' loops read of each participant, looked up once per campaign
        members = [
            (sid, staff[sid].staff_no, staff[sid].branch_id, data.measures.get((sid, cid), _NO_MEASURES))
            for sid in participants
        ]
        for rule in rules:
            if rule.kind is RuleKind.BOUNTY:
                continue  # bounties are paid from posted bounties (below)
            if rule.kind is RuleKind.POOL:
                if scores is None:
                    scores = score_month(data, current_weights(session))
                inputs = {
                    staff[sid].staff_no: RuleInputs(value=scores[sid].score if sid in scores else Decimal(0))
                    for sid in participants
                }
                by_no = {staff[sid].staff_no: sid for sid in participants}
                for staff_no, line in evaluate_group(rule, inputs).items():
                    sid = by_no[staff_no]
                    out.append(
                        (staff_no, code, rule.id, sid, staff[sid].branch_id, cid, _Tail(line, c.rule_version))
                    )
                continue
            # with no result, only a fixed penalty below a threshold can give a line (step 3)
            pays_at_zero = rule.kind is RuleKind.PENALTY and rule.below is not None
            measure = rule.measure or ""
            targets = targets_of.get((c.id, measure))
            if targets is None:  # rules on one measure share targets
                targets = targets_of[(c.id, measure)] = {
                    sid: (t, None if t is None else str(t))
                    for sid, t in data.targets_for(c, measure, participants).items()
                }
            rule_lines = _Evaluations(rule, c.rule_version)
            seen = rule_lines.seen  # looked up inline: this loop runs once per line
            rule_id = rule.id
            own_measure = measure in STAFF_MEASURES
            for sid, staff_no, branch_id, values in members:
                value = data.value(sid, cid, measure) if own_measure else values.get(measure, _ZERO)
                if value == 0 and not pays_at_zero:
                    continue  # nothing to say: no result and no deduction
                known = targets[sid]
                tail = seen.get((str(value), known[1]))
                if tail is None:
                    tail = rule_lines.tail(value, known[0])
                if tail.amount == 0 and value == 0:
                    continue
                out.append((staff_no, code, rule_id, sid, branch_id, cid, tail))
    # -- bounties won and not yet paid ------------------------------------------------------------
    bounty_ids = _bounty_lines(session, data, by_code, campaign_ids)
    scaled = _scale_to_budgets(by_code, _budgets_left(session, data))
    rows: list[Row] = [row for lines in by_code.values() for row in lines]
    del by_code
    codes = {cid: code for code, cid in campaign_ids.items() if cid is not None}
    dispute_ids = _adjustment_lines(session, data, run_id, rows, codes)
    rows.sort()
    by_branch, by_campaign, result_hash = _summarise(rows, {sid: s.branch_code for sid, s in staff.items()})
    total = sum(by_branch.values(), Decimal("0.00"))
    totals = {
        "branches": {k: str(v) for k, v in sorted(by_branch.items())},
        "campaigns": {k: str(v) for k, v in sorted(by_campaign.items())},
        "scaled": {
            k: {"budget_left": str(s.budget_left), "positive_sum": str(s.positive_sum)}
            for k, s in scaled.items()
        },
    }
    return Computed(
        rows=rows,
        total=total,
        totals=totals,
        rule_versions=rule_versions,
        staff_count=len({row[3] for row in rows}),
        result_hash=result_hash,
        dispute_ids=dispute_ids,
        bounty_ids=bounty_ids,
    )


def _summarise(
    rows: list[Row], branch_of: dict[int, str]
) -> tuple[dict[str, Decimal], dict[str, Decimal], str]:
    """Totals by branch and by campaign, and the result hash, in one pass over the sorted lines.

    The hash is SHA-256 over the JSON of every line's canonical values (staff_no, campaign,
    rule, kind, measure, input, amount, explanation): the same inputs give the same hash, in any
    database. The JSON text is written piece by piece (each shared tail's part once) and is the
    very text ``json.dumps(lines, ensure_ascii=False)`` gives.
    """
    # every amount is already a whole number of fen: plain Decimal sums are exact
    by_branch: dict[str, Decimal] = {}
    by_campaign: dict[str, Decimal] = {}
    digest = hashlib.sha256(b"[")
    heads: dict[tuple[str, str], str] = {}
    sep = ""
    for staff_no, code, _rule, sid, _bid, _cid, tail in rows:
        amount = tail.amount
        branch = branch_of[sid]
        by_branch[branch] = by_branch.get(branch, _ZERO_FEN) + amount
        by_campaign[code] = by_campaign.get(code, _ZERO_FEN) + amount
        head = heads.get((staff_no, code))
        if head is None:
            head = heads[(staff_no, code)] = f"[{_json_text(staff_no)}, {_json_text(code)}, "
        digest.update(f"{sep}{head}{tail.canon}]".encode())
        sep = ", "
    digest.update(b"]")
    return by_branch, by_campaign, digest.hexdigest()


_ZERO = Decimal(0)
_ZERO_FEN = Decimal("0.00")
_NO_MEASURES: dict[str, Decimal] = {}


def _scale_to_budgets(
    by_code: dict[str, list[Row]], budgets_left: dict[str, Decimal | None]
) -> dict[str, BudgetScaling]:
    """Step 4 of §6 on each campaign's lines, in place: what :func:`appraisal.rules.compute_statement` does.

    A campaign whose positive lines sum to more than its budget left has them scaled as
    :func:`appraisal.money.scale_to_budget` does (ties: lower staff_no, then rule id); each scaled line
    gets its own explanation (:func:`appraisal.rules.scaled_line`), shared by lines with the same
    evaluated line and the same scaled amount.
    """
    scaled: dict[str, BudgetScaling] = {}
    for code in sorted(by_code):
        budget = budgets_left.get(code)
        if budget is None:
            continue
        budget = max(as_decimal(budget, f"budget left of {code}"), Decimal("0.00"))
        lines = by_code[code]
        positive_sum = sum_fen(row[6].amount for row in lines if row[6].amount > 0)
        if positive_sum <= budget:
            continue
        scaled[code] = BudgetScaling(code, budget, positive_sum)
        # what scale_to_budget does once the positive lines exceed the budget (their amounts are
        # whole fen by construction): the budget split over them by largest remainder
        new_amounts = allocate_largest_remainder(
            budget, [((row[0], row[2]), row[6].amount) for row in lines if row[6].amount > 0]
        )
        made: dict[tuple[_Tail, Decimal], _Tail] = {}  # keyed by the tail itself (identity)
        for i, row in enumerate(lines):
            tail = row[6]
            old = tail.amount
            if old <= 0:
                continue
            new = new_amounts[(row[0], row[2])]
            key = (tail, new)
            new_tail = made.get(key)
            if new_tail is None:
                new_tail = made[key] = _Tail(
                    scaled_line(tail.line, old, new, budget, positive_sum), tail.version, tail.dispute_id
                )
            lines[i] = (*row[:6], new_tail)
    return scaled


def _fig(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_FIG)


_FIG = Decimal("0.0001")


def _bounty_lines(
    session: Session, data: MonthData, by_code: dict[str, list[Row]], campaign_ids: dict[str, int | None]
) -> list[int]:
    """A line for each bounty won and not yet paid, under its campaign (or none, when not a campaign of the month)."""
    try:
        from campaigns.bounty_models import Bounty  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - before the bounty issue
        return []
    codes = {c.id: c.code for c in data.campaigns}
    ids: list[int] = []
    for bounty_id, campaign_id, winner_id, amount, title in session.execute(
        select(Bounty.id, Bounty.campaign_id, Bounty.winner_id, Bounty.amount, Bounty.title)
        .where(Bounty.state == "won", Bounty.paid_in.is_(None), Bounty.winner_id.in_(list(data.staff) or [0]))
        .order_by(Bounty.id)
    ):
        code = codes.get(campaign_id, NO_CAMPAIGN)
        campaign_ids.setdefault(code, campaign_id if code != NO_CAMPAIGN else None)
        rule = Rule(id=f"bounty-{bounty_id}", kind=RuleKind.BOUNTY, amount=Decimal(amount))
        winner = data.staff[winner_id]
        for no, line in evaluate_group(rule, {winner.staff_no: RuleInputs(share=Decimal(1))}).items():
            line = _with_title(line, title)
            by_code.setdefault(code, []).append(
                (
                    no,
                    code,
                    line.rule_id,
                    winner.id,
                    winner.branch_id,
                    campaign_ids.get(code),
                    _Tail(line, None),
                )
            )
        ids.append(bounty_id)
    return ids


def _with_title(line: Any, title: str) -> Any:
    from dataclasses import replace

    return replace(
        line, explanation=f"{line.explanation} ({title})", explanation_zh=f"{line.explanation_zh}（{title}）"
    )


def _adjustment_lines(
    session: Session, data: MonthData, run_id: int | None, rows: list[Row], codes: dict[int, str]
) -> list[int]:
    """Accepted disputes of earlier months not yet paid (or paid by this very run): one line each."""
    cond = Dispute.applied_run_id.is_(None)
    if run_id is not None:
        cond = cond | (Dispute.applied_run_id == run_id)
    found: list[int] = []
    for d_id, staff_id, month, adjustment, campaign_id, rule_id, answer in session.execute(
        select(
            Dispute.id,
            Dispute.staff_id,
            Dispute.month,
            Dispute.adjustment,
            StatementLine.campaign_id,
            StatementLine.rule_id,
            Dispute.answer,
        )
        .join(StatementLine, StatementLine.id == Dispute.line_id)
        .where(Dispute.state == DisputeState.accepted, Dispute.month < data.month, cond)
        .order_by(Dispute.id)
    ):
        if staff_id not in data.staff or adjustment is None:
            continue
        staff = data.staff[staff_id]
        amount = Decimal(adjustment).quantize(Decimal("0.01"))
        line = Line(
            rule_id=f"adjustment-{d_id}",
            kind="adjustment",  # type: ignore[arg-type]  # not a rule kind: stored as text
            measure=None,
            value=None,
            target=None,
            computed=amount,
            amount=amount,
            formula="accepted dispute",
            explanation=f"adjustment for dispute #{d_id} on {month} line {rule_id}: {amount:.2f} ({answer or ''})",
            explanation_zh=f"申诉 #{d_id} 调整（{month} {rule_id}）：{amount:.2f}（{answer or ''}）",
        )
        code = NO_CAMPAIGN if campaign_id is None else codes.get(campaign_id, NO_CAMPAIGN)
        rows.append(
            (
                staff.staff_no,
                code,
                line.rule_id,
                staff_id,
                staff.branch_id,
                campaign_id,
                _Tail(line, None, d_id),
            )
        )
        found.append(d_id)
    return found


# ---------------------------------------------------------------------------------------------
# Writing lines: one statement, whatever the number of lines

#: The columns of a line after its staff member and campaign (:class:`_Tail`, in this order).
_TAIL_COLUMNS = (
    "rule_id",
    "rule_version",
    "kind",
    "measure",
    "input",
    "target",
    "computed",
    "amount",
    "limited_by",
    "budget_scaled_from",
    "what_if",
    "formula",
    "explanation",
    "explanation_zh",
    "dispute_id",
)
_LINE_COLUMNS = ("run_id", "staff_id", "branch_id", "campaign_id", *_TAIL_COLUMNS)

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        # str.translate is slow on Chinese text: only escape when there is something to escape
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_COPY_ESCAPES)
        return value
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


class _CopyStream:
    """A read-only text file over the COPY rows, produced as psycopg2 reads (never the whole payload in memory)."""

    def __init__(self, run_id: int, rows: list[Row]) -> None:
        prefix, null = f"{run_id}\t", "\\N"
        self._lines = (
            f"{prefix}{sid}\t{bid}\t{null if cid is None else cid}\t{tail.copy}\n"
            for _no, _code, _rule, sid, bid, cid, tail in rows
        )
        self._buffer = ""

    def read(self, size: int = -1) -> str:
        parts, length = [self._buffer], len(self._buffer)
        want = size if size is not None and size > 0 else 1 << 62
        for line in self._lines:
            parts.append(line)
            length += len(line)
            if length >= want:
                break
        text_ = "".join(parts)
        if size is None or size <= 0:
            self._buffer = ""
            return text_
        self._buffer = text_[want:]
        return text_[:want]

    def readline(self, size: int = -1) -> str:  # pragma: no cover - psycopg2 uses read()
        return self.read(size)


def insert_lines(session: Session, run_id: int, rows: list[Row]) -> None:
    """Insert a run's lines with ONE statement: PostgreSQL ``COPY … FROM STDIN`` (streamed), SQLite one executemany."""
    if not rows:
        return
    cols = ", ".join(_LINE_COLUMNS)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # COPY on the session's own connection, so the lines are in the run's transaction
        raw = session.connection().connection.driver_connection
        with raw.cursor() as cur:
            cur.copy_expert(
                f"COPY statement_line ({cols}) FROM STDIN",  # fixed column names
                _CopyStream(run_id, rows),
                size=1 << 16,
            )
    else:
        # SQLite: one executemany of plain tuples (amounts as exact decimal text; NUMERIC affinity stores them)
        marks = ", ".join("?" for _ in _LINE_COLUMNS)
        values: dict[_Tail, tuple[Any, ...]] = {}  # each shared tail formatted once
        for tail in (row[6] for row in rows):
            if tail not in values:
                values[tail] = tail.sqlite_values()
        session.connection().exec_driver_sql(
            f"INSERT INTO statement_line ({cols}) VALUES ({marks})",  # noqa: S608 - fixed column names
            [(run_id, sid, bid, cid, *values[tail]) for _no, _code, _rule, sid, bid, cid, tail in rows],
        )


# ---------------------------------------------------------------------------------------------
# Approve, close checklist, lock


def get_run(session: Session, month: str, scope: str | int | None = None) -> IncentiveRun:
    month = parse_month(month)
    run = find_run(session, month, scope)
    if run is None:
        _, key = _scope(session, scope)
        raise RunError(f"there is no {key} run for {month}: run it first")
    return run


def approve_run(session: Session, run: IncentiveRun, actor: Staff) -> IncentiveRun:
    """computed → approved, by a director who did not run it."""
    if run.state == RunState.computing:
        raise RunError(f"the run of {run.month} is still computing: it can be approved once computed")
    run_workflow.fire(
        session, run, "approve", actor_id=actor.id, payload={"is_director": actor.has_role("director")}
    )
    return run


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    label: str
    ok: bool
    detail: str


def close_checklist(session: Session, run: IncentiveRun, imports_done: bool = False) -> list[ChecklistItem]:
    """The month-close checklist (§11.7): imports done (confirmed by the clerk), claims verified, disputes answered."""
    first, last = month_bounds(run.month)
    items = [
        ChecklistItem(
            "imports_done",
            "Core-banking imports of the month are done",
            bool(imports_done),
            "confirmed" if imports_done else "confirm that the month's events and snapshots are imported",
        )
    ]
    pending = 0
    try:
        from tasks.models import Claim  # type: ignore[attr-defined]

        stmt = (
            select(func.count())
            .select_from(Claim)
            .where(
                Claim.state == "submitted",
                Claim.created_at < dt.datetime.combine(last + dt.timedelta(days=1), dt.time()),
            )
        )
        if run.scope_branch_id is not None:
            stmt = stmt.where(Claim.branch_id == run.scope_branch_id)
        pending = int(session.scalar(stmt) or 0)
    except ImportError:  # pragma: no cover - before the claims issue
        pending = 0
    items.append(
        ChecklistItem(
            "claims_verified",
            "Claims of the month are verified or rejected",
            pending == 0,
            f"{pending} claims waiting",
        )
    )
    stmt = (
        select(func.count())
        .select_from(Dispute)
        .where(Dispute.state == DisputeState.open, Dispute.month <= run.month)
    )
    if run.scope_branch_id is not None:
        stmt = stmt.where(Dispute.branch_id == run.scope_branch_id)
    open_disputes = int(session.scalar(stmt) or 0)
    items.append(
        ChecklistItem(
            "disputes_answered", "Disputes are answered", open_disputes == 0, f"{open_disputes} disputes open"
        )
    )
    return items


def lock_run(session: Session, run: IncentiveRun, actor_id: int, imports_done: bool = False) -> IncentiveRun:
    """approved → locked once the close checklist is complete; pays the run's bounties."""
    if run.state in (RunState.computing, RunState.computed):
        raise RunError(f"the run of {run.month} is {run.state}: it must be approved before it is locked")
    missing = [f"{i.label} ({i.detail})" for i in close_checklist(session, run, imports_done) if not i.ok]
    run_workflow.fire(session, run, "lock", actor_id=actor_id, payload={"checklist_missing": missing})
    _pay_bounties(session, run, actor_id)
    _settle_campaigns(session, run, actor_id)
    return run


def _settle_campaigns(session: Session, run: IncentiveRun, actor_id: int) -> None:
    """closed → settled for campaigns whose last month this union run pays (PRODUCT.md §5)."""
    if run.scope_branch_id is not None:
        return  # a branch run does not close the books of a campaign
    from campaigns.models import Campaign
    from workflow.engine import fire

    first, last = month_bounds(run.month)
    for campaign in session.scalars(
        select(Campaign).where(Campaign.state == "closed", Campaign.end_date <= last).order_by(Campaign.id)
    ):
        fire(session, campaign, "settle", actor_id=actor_id, payload={"run": f"{run.month}:{run.scope_key}"})


def _pay_bounties(session: Session, run: IncentiveRun, actor_id: int) -> None:
    try:
        from campaigns.bounty_models import Bounty  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover
        return
    ids = [
        int(rule_id.split("-", 1)[1])
        for rule_id in session.scalars(
            select(StatementLine.rule_id).where(
                StatementLine.run_id == run.id, StatementLine.kind == "bounty"
            )
        )
    ]
    if not ids:
        return
    ref = f"run:{run.month}:{run.scope_key}"
    try:
        from campaigns import bounties  # type: ignore[attr-defined]

        mark_paid = getattr(bounties, "mark_paid", None)
    except ImportError:
        mark_paid = None
    for bounty in session.scalars(
        select(Bounty).where(Bounty.id.in_(ids), Bounty.state == "won").order_by(Bounty.id)
    ):
        if mark_paid is not None:
            mark_paid(session, bounty.id, ref, actor_id)
            if bounty.paid_in is None:
                bounty.paid_in = ref
        else:
            from workflow.engine import fire

            bounty.paid_in = ref
            fire(session, bounty, "pay", actor_id=actor_id, payload={"run": ref})


# ---------------------------------------------------------------------------------------------
# Statements and disputes


def what_if(session: Session, lines: list[StatementLine]) -> dict[int, Decimal]:
    """What one more result would add to each line (§11.5): 1 more for counts, 10 000 yuan more for sums.

    Evaluated on demand for one statement with the rule version the line was computed with;
    budget scaling is not applied (it depends on everybody's results).
    """
    from campaigns.models import Campaign

    wanted = {(ln.campaign_id, ln.rule_version) for ln in lines if ln.campaign_id and ln.rule_version}
    if not wanted:
        return {}
    campaign_ids = sorted({cid for cid, _ in wanted})
    rules_of: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for cid, version, rules in session.execute(
        select(RuleVersion.campaign_id, RuleVersion.version, RuleVersion.rules).where(
            RuleVersion.campaign_id.in_(campaign_ids)
        )
    ):
        rules_of[(cid, version)] = rules
    for cid, rules in session.execute(
        select(Campaign.id, Campaign.rules).where(Campaign.id.in_(campaign_ids))
    ):
        rules_of.setdefault((cid, 1), rules or [])
    out: dict[int, Decimal] = {}
    for ln in lines:
        rules = rules_of.get((ln.campaign_id, ln.rule_version))
        if not rules or ln.input is None or ln.kind in ("bounty", "pool", "adjustment"):
            continue
        try:
            parsed = {r.id: r for r in parse_rules(rules)}
        except RuleErrors:
            continue
        rule = parsed.get(ln.rule_id)
        if rule is None:
            continue
        before = evaluate(
            rule,
            RuleInputs(value=Decimal(ln.input), target=None if ln.target is None else Decimal(ln.target)),
        ).amount
        delta = _what_if(rule, Decimal(ln.input), None if ln.target is None else Decimal(ln.target), before)
        if delta is not None:
            out[ln.id] = delta
    return out


def statement(session: Session, run: IncentiveRun, staff_id: int) -> list[StatementLine]:
    return list(
        session.scalars(
            select(StatementLine)
            .where(StatementLine.run_id == run.id, StatementLine.staff_id == staff_id)
            .order_by(StatementLine.campaign_id, StatementLine.rule_id)
        )
    )


def raise_dispute(
    session: Session,
    line: StatementLine,
    staff: Staff,
    text_: str,
    category: str = "other",
    attachment: tuple[str, bytes] | None = None,
    answer_days: int = 10,
) -> Dispute:
    """A staff member disputes one of their own lines of a computed, approved or locked run."""
    run = session.get(IncentiveRun, line.run_id)
    if line.staff_id != staff.id:
        raise RunError("a staff member can dispute only lines of their own statement")
    if run is None or run.state == RunState.computing:
        raise RunError("this run is still computing: wait for the statement")
    if not (text_ or "").strip():
        raise RunError("text: say what is wrong with the line")
    from org.sensitive import problem

    refused = problem(text_)  # no card numbers, passwords or codes in a dispute (PII-02)
    if refused:
        raise RunError(f"text: {refused}")
    if category not in DISPUTE_CATEGORIES:
        raise RunError(f"category: one of {', '.join(DISPUTE_CATEGORIES)}, found {category!r}")
    dispute = Dispute(
        line_id=line.id,
        run_id=run.id,
        month=run.month,
        staff_id=staff.id,
        branch_id=line.branch_id,
        category=category,
        text=text_.strip(),
        attachment_name=attachment[0] if attachment else None,
        attachment=attachment[1] if attachment else None,
        deadline=clock.today() + dt.timedelta(days=answer_days),
    )
    session.add(dispute)
    session.flush()
    return dispute


def answer_dispute(
    session: Session,
    dispute: Dispute,
    actor_id: int,
    accept: bool,
    answer: str,
    adjustment: Decimal | None = None,
) -> Dispute:
    """accept (with the adjustment paid in the next run) or reject (reason required)."""
    answer = (answer or "").strip()
    if accept:
        if adjustment is None or adjustment == 0:
            raise RunError(
                "adjustment: an accepted dispute needs the amount to add (negative to deduct), not 0"
            )
        dispute.adjustment = Decimal(adjustment).quantize(Decimal("0.01"))
        dispute_workflow.fire(session, dispute, "accept", actor_id=actor_id, reason=answer or None)
    else:
        dispute_workflow.fire(session, dispute, "reject", actor_id=actor_id, reason=answer)
    return dispute


def add_rule_version(
    session: Session,
    campaign: Any,
    rules: list[dict[str, Any]],
    effective_from: dt.date,
    actor_id: int | None = None,
    note: str | None = None,
) -> RuleVersion:
    """Amend a campaign's rules from a date (§11.6): validated, numbered, never changing months already closed."""
    try:
        parse_rules(rules)
    except RuleErrors as exc:
        raise RunError(str(exc)) from None
    month = month_of(effective_from)
    scopes = locked_scopes(session, [month])
    if scopes.get(month):
        raise RunError(
            f"month {month} is approved or locked: an amendment can take effect only in a later month"
        )
    last = session.scalar(select(func.max(RuleVersion.version)).where(RuleVersion.campaign_id == campaign.id))
    if last is None:
        session.add(
            RuleVersion(
                campaign_id=campaign.id,
                version=1,
                effective_from=campaign.start_date,
                rules=list(campaign.rules or []),
            )
        )
        last = 1
    version = RuleVersion(
        campaign_id=campaign.id,
        version=last + 1,
        effective_from=effective_from,
        rules=rules,
        note=note,
        created_by=actor_id,
    )
    session.add(version)
    session.flush()
    return version


__all__ = [
    "MonthError",
    "RunError",
    "add_rule_version",
    "answer_dispute",
    "approve_run",
    "begin_run",
    "close_checklist",
    "compute_run",
    "get_run",
    "lock_run",
    "raise_dispute",
]
