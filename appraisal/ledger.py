"""The ledger (业绩台账): append-only verified events — the only input of rewards.

* :func:`record_verified_claim` — a verified claim enters the ledger (idempotent per claim).
* :func:`reverse` — a correction or clawback is a reversal event in the current (open) month;
  the original is never changed (the database refuses UPDATE and DELETE, migration 0002).
* :func:`import_events` — rows of an events file (PRODUCT.md §8): re-importing adds nothing,
  every bad row is reported (row, column, value, reason).
* :func:`check_totals` / :func:`rebuild_totals` — ``ledger_total`` (kept by the database on every
  insert, migration 0004) against a fresh GROUP BY of the events; a month's totals recomputed.

Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, and_, delete, func, insert, or_, select, text, type_coerce
from sqlalchemy.orm import Session

from appraisal.models import EventSource, IncentiveRun, LedgerEvent, LedgerTotal, RunState
from appraisal.rules import MEASURES
from campaigns.models import Campaign
from config import clock
from customers.fileformats import RowError
from customers.models import Customer
from org.models import Staff

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_CHUNK = 900  # ids per IN (…) list: below SQLite's variable limit


class LedgerError(ValueError):
    """A ledger change that is not allowed (the message says why)."""


class MonthError(ValueError):
    """A month argument that is malformed or in the future."""


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_month(text: str, *, allow_current: bool = True) -> str:
    """Check a ``YYYY-MM`` month: well formed, and not in the future."""
    value = (text or "").strip()
    if not _MONTH.match(value):
        raise MonthError(f"month must be written YYYY-MM (e.g. 2026-10), found {text!r}")
    current = month_of(clock.today())
    if value > current or (not allow_current and value == current):
        raise MonthError(f"month {value} is in the future (this month is {current})")
    return value


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of a ``YYYY-MM`` month."""
    year, mon = int(month[:4]), int(month[5:7])
    first = dt.date(year, mon, 1)
    nxt = dt.date(year + (mon == 12), mon % 12 + 1, 1)
    return first, nxt - dt.timedelta(days=1)


def previous_month(month: str) -> str:
    first, _ = month_bounds(month)
    return month_of(first - dt.timedelta(days=1))


def locked_scopes(session: Session, months: Iterable[str]) -> dict[str, set[int | None]]:
    """For each month with a locked run: the branch ids locked (None = the whole union)."""
    wanted = sorted(set(months))
    if not wanted:
        return {}
    rows = session.execute(
        select(IncentiveRun.month, IncentiveRun.scope_branch_id).where(
            IncentiveRun.month.in_(wanted), IncentiveRun.state.in_([RunState.locked, RunState.approved])
        )
    ).all()
    found: dict[str, set[int | None]] = {}
    for month, branch_id in rows:
        found.setdefault(month, set()).add(branch_id)
    return found


def is_closed(scopes: dict[str, set[int | None]], month: str, branch_id: int | None) -> bool:
    """Whether a month is approved or locked for a branch (a union run covers every branch)."""
    branches = scopes.get(month)
    return bool(branches) and (None in branches or branch_id in branches)  # type: ignore[operator]


def open_month(session: Session, branch_id: int | None) -> str:
    """The month a new correction posts into: this month (refused if already closed)."""
    month = month_of(clock.today())
    if is_closed(locked_scopes(session, [month]), month, branch_id):
        raise LedgerError(f"month {month} is already approved or locked: nothing more can be posted into it")
    return month


# ---------------------------------------------------------------------------------------------
# Claims and reversals


def record_verified_claim(session: Session, claim: Any, actor_id: int | None = None) -> LedgerEvent:
    """Put a verified claim into the ledger (once: a second call returns the same event).

    The event counts in the month the claim was verified (the current open month); its quantity
    is the claim's quantity (a count) and its amount the claim's amount.
    """
    event_id = f"claim-{claim.id}"
    existing = session.scalar(select(LedgerEvent).where(LedgerEvent.event_id == event_id))
    if existing is not None:
        return existing
    if getattr(claim, "state", "verified") not in ("verified",):
        raise LedgerError(f"claim {claim.id} is {claim.state}, not verified: it cannot enter the ledger")
    staff = session.get(Staff, claim.staff_id)
    month = open_month(session, staff.branch_id if staff else None)
    verified_at = getattr(claim, "verified_at", None)
    occurred = verified_at.date() if isinstance(verified_at, dt.datetime) else clock.today()
    if month_of(occurred) != month:
        occurred = clock.today()
    quantity = Decimal(getattr(claim, "quantity", 1) or 0)
    event = LedgerEvent(
        event_id=event_id,
        occurred_on=occurred,
        month=month,
        staff_id=claim.staff_id,
        customer_id=getattr(claim, "customer_id", None),
        campaign_id=getattr(claim, "campaign_id", None),
        measure=claim.measure,
        quantity=int(quantity),
        amount=Decimal(getattr(claim, "amount", 0) or 0).quantize(Decimal("0.01")),
        source=EventSource.claim,
        claim_id=claim.id,
        created_by=actor_id or getattr(claim, "verifier_id", None),
    )
    session.add(event)
    session.flush()
    return event


def reverse(session: Session, event: LedgerEvent, reason: str, actor_id: int | None = None) -> LedgerEvent:
    """Cancel ``event`` with a reversal event (negative quantity and amount) in the current open month.

    The original stays as it was. Reversing twice returns the first reversal; a reversal itself
    cannot be reversed (record a new event instead).
    """
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("a reversal needs a reason")
    if event.source == EventSource.reversal:
        raise LedgerError(f"event {event.event_id} is itself a reversal and cannot be reversed")
    existing = session.scalar(select(LedgerEvent).where(LedgerEvent.reverses_id == event.id))
    if existing is not None:
        return existing
    staff = session.get(Staff, event.staff_id)
    month = open_month(session, staff.branch_id if staff else None)
    reversal = LedgerEvent(
        event_id=f"rev-{event.event_id}"[:64],
        occurred_on=clock.today(),
        month=month,
        staff_id=event.staff_id,
        customer_id=event.customer_id,
        campaign_id=event.campaign_id,
        measure=event.measure,
        quantity=-event.quantity,
        amount=-event.amount,
        source=EventSource.reversal,
        claim_id=event.claim_id,
        reverses_id=event.id,
        reason=reason,
        created_by=actor_id,
    )
    session.add(reversal)
    session.flush()
    return reversal


def reverse_claim(
    session: Session, claim: Any, reason: str, actor_id: int | None = None
) -> LedgerEvent | None:
    """Reverse the ledger event of a claim (clawback); None when the claim never reached the ledger."""
    event = session.scalar(select(LedgerEvent).where(LedgerEvent.event_id == f"claim-{claim.id}"))
    return None if event is None else reverse(session, event, reason, actor_id)


# ---------------------------------------------------------------------------------------------
# Import of events files


@dataclass
class ImportResult:
    """What an events import did: rows read, added, already there, and every row error."""

    read: int = 0
    added: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def refused_rows(self) -> int:
        return len({e.row for e in self.errors})


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _lookup(session: Session, column: Any, key_col: Any, keys: set[str], *extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted(keys)):
        for row in session.execute(select(key_col, column, *extra).where(key_col.in_(chunk))):
            found[row[0]] = row[1:] if extra else row[1]
    return found


def import_events(
    session: Session,
    rows: Iterable[tuple[int, dict[str, Any] | None, list[RowError]]],
    *,
    strict: bool = False,
    actor_id: int | None = None,
) -> ImportResult:
    """Add the good rows of an events file to the ledger (verified results from core banking).

    ``rows`` are ``(row_number, clean row or None, errors)`` as from
    :func:`customers.fileformats.iter_validated`. Row errors: duplicate event_id in the file,
    unknown staff / customer / campaign / measure, a negative quantity or amount (a correction is a
    reversal), a date in the future or outside the campaign's period, a month already approved or
    locked, an event_id already in the ledger with other values. Rows already in the ledger with
    the same values are counted as unchanged (re-importing adds nothing). With ``strict`` any
    error stores nothing. Flushes; the caller commits.
    """
    result = ImportResult()
    good: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    today = clock.today()
    for row, clean, errors in rows:
        result.read += 1
        result.errors.extend(errors)
        if clean is None:
            continue
        problems: list[RowError] = []
        eid = clean["event_id"]
        if eid in seen:
            problems.append(RowError(row, "event_id", eid, f"duplicate event_id: already on row {seen[eid]}"))
        else:
            seen[eid] = row
        if clean["measure"] not in MEASURES:
            problems.append(
                RowError(
                    row, "measure", clean["measure"], "unknown measure; known: " + ", ".join(sorted(MEASURES))
                )
            )
        quantity = clean.get("quantity")
        amount = clean.get("amount")
        if quantity is not None and quantity < 0:
            problems.append(
                RowError(row, "quantity", str(quantity), "must not be negative (a correction is a reversal)")
            )
        if amount is not None and amount < 0:
            problems.append(
                RowError(row, "amount", str(amount), "must not be negative (a correction is a reversal)")
            )
        if clean["occurred_on"] > today:
            problems.append(
                RowError(
                    row,
                    "occurred_on",
                    clean["occurred_on"].isoformat(),
                    f"is in the future (today is {today})",
                )
            )
        result.errors.extend(problems)
        if not problems:
            good.append((row, clean))

    staff = _lookup(session, Staff.id, Staff.staff_no, {c["staff_no"] for _, c in good}, Staff.branch_id)
    customers = _lookup(
        session,
        Customer.id,
        Customer.customer_no,
        {c["customer_no"] for _, c in good if c.get("customer_no")},
    )
    campaigns = _lookup(
        session,
        Campaign.id,
        Campaign.code,
        {c["campaign_code"] for _, c in good if c.get("campaign_code")},
        Campaign.start_date,
        Campaign.end_date,
    )
    existing: dict[str, tuple[Any, ...]] = {}
    ids = [c["event_id"] for _, c in good]
    for chunk in _chunks(ids):
        for ev in session.execute(
            select(
                LedgerEvent.event_id,
                LedgerEvent.occurred_on,
                LedgerEvent.staff_id,
                LedgerEvent.customer_id,
                LedgerEvent.campaign_id,
                LedgerEvent.measure,
                LedgerEvent.quantity,
                LedgerEvent.amount,
            ).where(LedgerEvent.event_id.in_(chunk))
        ):
            existing[ev[0]] = tuple(ev[1:])
    scopes = locked_scopes(session, {_month(c) for _, c in good})

    to_add: list[dict[str, Any]] = []
    for row, clean in good:
        problems = []
        staff_row = staff.get(clean["staff_no"])
        if staff_row is None:
            problems.append(
                RowError(row, "staff_no", clean["staff_no"], "no staff member with this staff_no")
            )
        customer_id = None
        if clean.get("customer_no"):
            customer_id = customers.get(clean["customer_no"])
            if customer_id is None:
                problems.append(
                    RowError(row, "customer_no", clean["customer_no"], "no customer with this customer_no")
                )
        campaign_id = None
        if clean.get("campaign_code"):
            found = campaigns.get(clean["campaign_code"])
            if found is None:
                problems.append(
                    RowError(row, "campaign_code", clean["campaign_code"], "no campaign with this code")
                )
            else:
                campaign_id, start, end = found
                if not start <= clean["occurred_on"] <= end:
                    problems.append(
                        RowError(
                            row,
                            "occurred_on",
                            clean["occurred_on"].isoformat(),
                            f"outside the campaign's period {start} – {end}",
                        )
                    )
        month = _month(clean)
        if staff_row is not None and is_closed(scopes, month, staff_row[1]):
            problems.append(
                RowError(
                    row,
                    "occurred_on",
                    clean["occurred_on"].isoformat(),
                    f"month {month} is approved or locked",
                )
            )
        values = (
            clean["occurred_on"],
            staff_row[0] if staff_row else None,
            customer_id,
            campaign_id,
            clean["measure"],
            int(clean.get("quantity") or 0),
            (clean.get("amount") or Decimal("0")).quantize(Decimal("0.01")),
        )
        if not problems and clean["event_id"] in existing:
            if _same(existing[clean["event_id"]], values):
                result.unchanged += 1
                continue
            problems.append(
                RowError(
                    row,
                    "event_id",
                    clean["event_id"],
                    "already in the ledger with other values (the ledger is append-only: record a reversal)",
                )
            )
        if problems:
            result.errors.extend(problems)
            continue
        to_add.append(
            {
                "event_id": clean["event_id"],
                "occurred_on": values[0],
                "month": month,
                "staff_id": values[1],
                "customer_id": customer_id,
                "campaign_id": campaign_id,
                "measure": values[4],
                "quantity": values[5],
                "amount": values[6],
                "source": EventSource.import_.value,
                "created_by": actor_id,
            }
        )
    result.errors.sort(key=lambda e: (e.row, e.column))
    if strict and result.errors:
        return result
    if to_add:
        session.execute(insert(LedgerEvent), to_add)
        session.flush()
    result.added = len(to_add)
    return result


def _month(clean: dict[str, Any]) -> str:
    return month_of(clean["occurred_on"])


def _same(stored: tuple[Any, ...], values: tuple[Any, ...]) -> bool:
    return (
        tuple(stored[:5]) == tuple(values[:5])
        and int(stored[5]) == values[5]
        and Decimal(stored[6]) == values[6]
    )


def events_of(
    session: Session, staff_id: int, month: str, campaign_id: int | None = None
) -> list[LedgerEvent]:
    """The ledger events of one staff member in one month (drill-down of a statement)."""
    stmt = select(LedgerEvent).where(LedgerEvent.staff_id == staff_id, LedgerEvent.month == month)
    if campaign_id is not None:
        stmt = stmt.where(or_(LedgerEvent.campaign_id == campaign_id, LedgerEvent.campaign_id.is_(None)))
    return list(session.scalars(stmt.order_by(LedgerEvent.occurred_on, LedgerEvent.id)))


# ---------------------------------------------------------------------------------------------
# Totals (ledger_total): kept by the database's trigger, checked and rebuilt here

#: What one ``ledger_total`` row holds: (events, quantity, amount, customer_events).
Totals = tuple[int, int, Decimal, int]


@dataclass(frozen=True)
class TotalDifference:
    """A (month, staff, campaign, measure) whose stored totals differ from its events'.

    ``expected`` is what the events give (None: no event, the stored row should not exist);
    ``stored`` is the ``ledger_total`` row (None: missing).
    """

    month: str
    staff_id: int
    campaign_id: int | None
    measure: str
    expected: Totals | None
    stored: Totals | None

    def describe(self) -> str:
        def show(t: Totals | None) -> str:
            if t is None:
                return "none"
            return f"events={t[0]} quantity={t[1]} amount={t[2]:.2f} customer_events={t[3]}"

        campaign = "no campaign" if self.campaign_id is None else f"campaign #{self.campaign_id}"
        return (
            f"{self.month} staff #{self.staff_id} {campaign} {self.measure}: "
            f"events give {show(self.expected)}, ledger_total has {show(self.stored)}"
        )


def _grouped_events(month: str | None) -> Any:
    """The totals of the events (of ``month``), as ledger_total's columns."""
    stmt = select(
        LedgerEvent.month,
        LedgerEvent.staff_id,
        func.coalesce(LedgerEvent.campaign_id, 0).label("campaign_key"),
        LedgerEvent.measure,
        LedgerEvent.campaign_id,
        func.count().label("events"),
        func.sum(LedgerEvent.quantity).label("quantity"),
        func.sum(LedgerEvent.amount).label("amount"),
        func.count(LedgerEvent.customer_id).label("customer_events"),
    ).group_by(LedgerEvent.month, LedgerEvent.staff_id, LedgerEvent.campaign_id, LedgerEvent.measure)
    if month is not None:
        stmt = stmt.where(LedgerEvent.month == month)
    return stmt


def check_totals(session: Session, month: str | None = None) -> list[TotalDifference]:
    """Compare ``ledger_total`` with a fresh GROUP BY of ``ledger_event`` (one month, or all).

    One statement (a FULL JOIN of both, only differing rows come back). Amounts are compared to
    the fen (SQLite sums them in floating point). An empty list: consistent.
    """
    fresh = _grouped_events(month).subquery("fresh")
    stored_stmt = select(LedgerTotal)
    if month is not None:
        stored_stmt = stored_stmt.where(LedgerTotal.month == month)
    stored = stored_stmt.subquery("stored")
    keys = ("month", "staff_id", "campaign_key", "measure")
    on = [fresh.c[k] == stored.c[k] for k in keys]

    def fen(col: Any) -> Any:
        return type_coerce(func.round(col, 2), Numeric(18, 2, asdecimal=True))

    key_cols = [func.coalesce(fresh.c[k], stored.c[k]).label(f"k_{k}") for k in keys]
    differs = or_(
        fresh.c.month.is_(None),
        stored.c.month.is_(None),
        fresh.c.events != stored.c.events,
        fresh.c.quantity != stored.c.quantity,
        func.round(fresh.c.amount, 2) != func.round(stored.c.amount, 2),
        fresh.c.customer_events != stored.c.customer_events,
    )
    rows = session.execute(
        select(
            *key_cols,
            fresh.c.month.is_not(None),
            fresh.c.events,
            fresh.c.quantity,
            fen(fresh.c.amount),
            fresh.c.customer_events,
            stored.c.month.is_not(None),
            stored.c.events,
            stored.c.quantity,
            fen(stored.c.amount),
            stored.c.customer_events,
        )
        .select_from(fresh.join(stored, and_(*on), full=True))
        .where(differs)
        .order_by(*key_cols)
    ).all()
    found = []
    for m, sid, key, measure, has_fresh, *values in rows:
        expected = _totals(values[:4]) if has_fresh else None
        kept = _totals(values[5:]) if values[4] else None
        found.append(TotalDifference(m, int(sid), int(key) or None, measure, expected, kept))
    return found


def _totals(values: list[Any]) -> Totals:
    events, quantity, amount, customers = values
    return (
        int(events or 0),
        int(quantity or 0),
        Decimal(amount or 0).quantize(Decimal("0.01")),
        int(customers or 0),
    )


def rebuild_totals(session: Session, month: str) -> int:
    """Recompute ``ledger_total`` of ``month`` from its events (in the caller's transaction).

    On PostgreSQL the ledger is locked against inserts (SHARE) until the caller commits, so no
    event is counted twice or missed; SQLite's single writer gives the same. Returns the number of
    rows written. The caller audits and commits.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE ledger_event IN SHARE MODE"))
    session.execute(delete(LedgerTotal).where(LedgerTotal.month == month))
    grouped = _grouped_events(month)
    result = session.execute(
        insert(LedgerTotal).from_select(
            [
                "month",
                "staff_id",
                "campaign_key",
                "measure",
                "campaign_id",
                "events",
                "quantity",
                "amount",
                "customer_events",
            ],
            grouped,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
