"""Claims and verification (业绩申报 / 业绩认定, PRODUCT.md §5, §11.2, JOURNEYS 3).

* :func:`submit` validates the claim (measure of the campaign, quantity and amount ≥ 0 as
  ``Decimal``), sets its retention window and holdback, and computes the anti-gaming flags; a
  flagged claim needs a person's review.
* :func:`verify`, :func:`reject`, :func:`reverse` go through the claim machine: the checker is
  never the claimant (guard + database CHECK). A verified claim becomes a ledger event through
  ``appraisal.ledger.record_verified_claim(session, claim)``; a reversal calls
  ``appraisal.ledger.reverse(session, event, reason)`` (both when that module exists).
* :func:`auto_verify` confirms submitted, unflagged claims against imported core-banking data
  (product holdings and balance snapshots of the same customer) and verifies them as the system.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from config import clock
from customers.masking import mask_phone
from customers.models import Customer, Holding, Snapshot
from org.models import Staff
from org.scope import Forbidden, NotFound, Scope
from tasks.claim_machine import claim_workflow
from tasks.models import CLAIM_MEASURES, Claim, ClaimState
from tasks.services import InputError
from workflow.engine import fire
from workflow.errors import GuardRefused

#: Products in the core-banking holdings that confirm a measure.
MEASURE_PRODUCTS: dict[str, frozenset[str]] = {
    "accounts_opened": frozenset({"debit_card", "savings_account", "deposit_account", "account"}),
    "digital_activations": frozenset({"mobile_banking", "online_banking", "wechat_banking"}),
    "payroll_accounts": frozenset({"payroll_account"}),
    "agreements_signed": frozenset({"payroll_agreement", "payroll_account"}),
    "time_deposits_opened": frozenset({"time_deposit"}),
}
#: Measures confirmed by the rise of the customer's deposits between snapshots.
DEPOSIT_MEASURES = frozenset({"new_deposits"})
EVIDENCE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".pdf"})


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class ClaimPolicy:
    """Anti-gaming settings (§11.2); each from ``CAMPAIGNFLOW_CLAIM_*`` or its default."""

    retention_days: int = 30  #: a claim counts only after this many days (a deposit held N days)
    reversal_days: int = 90  #: a verified claim may be clawed back within this many days
    closed_within_days: int = 30  #: an account closed this soon after opening is suspicious
    same_contact_threshold: int = 3  #: this many new accounts on one phone/address in a week is suspicious
    outflow_share_pct: int = 50  #: month-end inflow leaving in the next month's first days above this share
    holdback_pct: int = 0  #: pay (100 − X) % now, X % after the retention window (0: no holdback)

    @classmethod
    def from_env(cls) -> ClaimPolicy:
        return cls(
            retention_days=_env_int("CAMPAIGNFLOW_CLAIM_RETENTION_DAYS", cls.retention_days),
            reversal_days=_env_int("CAMPAIGNFLOW_CLAIM_REVERSAL_DAYS", cls.reversal_days),
            closed_within_days=_env_int("CAMPAIGNFLOW_CLAIM_CLOSED_WITHIN_DAYS", cls.closed_within_days),
            same_contact_threshold=_env_int("CAMPAIGNFLOW_CLAIM_SAME_CONTACT", cls.same_contact_threshold),
            outflow_share_pct=_env_int("CAMPAIGNFLOW_CLAIM_OUTFLOW_PCT", cls.outflow_share_pct),
            holdback_pct=_env_int("CAMPAIGNFLOW_CLAIM_HOLDBACK_PCT", cls.holdback_pct),
        )


# -- input -------------------------------------------------------------------------------------
def parse_decimal(field: str, raw: Any, *, allow_zero: bool = True) -> Decimal:
    """A non-negative Decimal from form/API input, or :class:`InputError` naming the field."""
    if isinstance(raw, float):
        raw = repr(raw)
    text = "" if raw is None else str(raw).strip().replace(",", "")
    if not text:
        raise InputError(field, "is required")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(field, f"{text!r} is not a number") from None
    if not value.is_finite():
        raise InputError(field, f"{text!r} is not a number")
    if value < 0:
        raise InputError(field, f"{text} is negative; it must be 0 or more")
    if not allow_zero and value == 0:
        raise InputError(field, "must be more than 0")
    if value > Decimal("9999999999999999.99"):
        raise InputError(field, f"{text} is too large")
    return value.quantize(Decimal("0.01"))


def campaign_measures(session: Session, campaign: Campaign | None) -> list[str]:
    """Measures a claim in ``campaign`` may name: its targets' and rules' measures, else the defaults."""
    if campaign is None:
        return list(CLAIM_MEASURES)
    found = [t.measure for t in campaign.targets] + [
        str(r.get("measure")) for r in campaign.rules or [] if r.get("measure")
    ]
    unique = list(dict.fromkeys(found))
    return unique or list(CLAIM_MEASURES)


def store_evidence(instance_dir: Path | str, filename: str, data: bytes) -> str:
    """Save an evidence photo under ``instance/uploads`` with a generated name; return that name."""
    ext = Path(filename or "").suffix.lower()
    if ext not in EVIDENCE_EXTENSIONS:
        raise InputError(
            "evidence_file", f"{filename!r}: upload a photo or PDF ({', '.join(sorted(EVIDENCE_EXTENSIONS))})"
        )
    if not data:
        raise InputError("evidence_file", f"{filename!r} is empty")
    folder = Path(instance_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"claim-{uuid.uuid4().hex}{ext}"
    (folder / name).write_bytes(data)
    return name


# -- submit ------------------------------------------------------------------------------------
def submit(
    session: Session,
    staff_id: int,
    *,
    measure: str,
    quantity: Any = "1",
    amount: Any = "0",
    campaign_id: int | None = None,
    customer_id: int | None = None,
    assignment_id: int | None = None,
    task_id: int | None = None,
    evidence_text: str | None = None,
    evidence_file: str | None = None,
    policy: ClaimPolicy | None = None,
) -> Claim:
    """A manager claims a result; validated first (nothing is stored on bad input)."""
    policy = policy or ClaimPolicy.from_env()
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound(f"No staff {staff_id}")
    qty = parse_decimal("quantity", quantity, allow_zero=False)
    amt = parse_decimal("amount", amount)
    campaign = session.get(Campaign, campaign_id) if campaign_id else None
    if campaign_id and campaign is None:
        raise InputError("campaign", f"no campaign {campaign_id}")
    allowed = campaign_measures(session, campaign)
    if measure not in allowed:
        raise InputError(
            "measure", f"{measure!r} is not a measure of this campaign; choose one of {', '.join(allowed)}"
        )
    customer = session.get(Customer, customer_id) if customer_id else None
    if customer_id and customer is None:
        raise InputError("customer", f"no customer {customer_id}")
    if not (evidence_text or "").strip() and not evidence_file:
        raise InputError("evidence", "give evidence: a note (receipt number, account number) or a photo")
    from org.sensitive import problem

    refused = problem(evidence_text, cards=False)  # an account number is evidence
    if refused:
        raise InputError("evidence", refused)
    today = clock.today()
    claim = Claim(
        staff_id=staff_id,
        branch_id=staff.branch_id,
        campaign_id=campaign.id if campaign else None,
        customer_id=customer.id if customer else None,
        assignment_id=assignment_id,
        task_id=task_id,
        measure=measure,
        quantity=qty,
        amount=amt,
        evidence_text=(evidence_text or "").strip() or None,
        evidence_file=evidence_file,
        retention_until=today + dt.timedelta(days=policy.retention_days),
    )
    if policy.holdback_pct:
        pct = Decimal(policy.holdback_pct)
        claim.holdback_pct = pct
        claim.holdback_amount = (amt * pct / 100).quantize(Decimal("0.01"))
        claim.holdback_release_on = claim.retention_until
    session.add(claim)
    session.flush()
    refresh_flags(session, claim, policy)
    return claim


# -- anti-gaming flags -------------------------------------------------------------------------
def suspicion_flags(
    session: Session, claim: Claim, policy: ClaimPolicy, today: dt.date | None = None
) -> list[str]:
    """Why a claim looks gamed (§11.2); empty when nothing does."""
    today = today or clock.today()
    customer = session.get(Customer, claim.customer_id) if claim.customer_id else None
    if customer is None:
        return []
    flags: list[str] = []
    week_ago = today - dt.timedelta(days=7)
    for attr, label in (("phone", "phone"), ("address", "address")):
        value = getattr(customer, attr)
        if not value:
            continue
        n = (
            session.scalar(
                select(func.count(func.distinct(Holding.customer_id)))
                .join(Customer, Customer.id == Holding.customer_id)
                .where(
                    getattr(Customer, attr) == value,
                    Holding.opened_on >= week_ago,
                    Holding.opened_on <= today,
                )
            )
            or 0
        )
        if n >= policy.same_contact_threshold:
            shown = mask_phone(value) if attr == "phone" else "(masked)"
            flags.append(f"same_{label}: {n} new accounts on one {label} {shown} this week")
    products = MEASURE_PRODUCTS.get(claim.measure)
    holdings = session.scalars(select(Holding).where(Holding.customer_id == customer.id)).all()
    for h in holdings:
        if products and h.product not in products:
            continue
        if h.opened_on and h.closed_on and (h.closed_on - h.opened_on).days <= policy.closed_within_days:
            flags.append(
                f"closed_early: {h.product} opened {h.opened_on.isoformat()} closed {h.closed_on.isoformat()} "
                f"(within {policy.closed_within_days} days)"
            )
    outflow = _month_end_outflow(session, customer.id, policy)
    if outflow:
        flags.append(outflow)
    return flags


def _deposits(s: Snapshot) -> Decimal:
    return (s.deposit_demand or Decimal(0)) + (s.deposit_time or Decimal(0))


def _month_end_outflow(session: Session, customer_id: int, policy: ClaimPolicy) -> str | None:
    """A month-end inflow that leaves in the first days of the next month."""
    snaps = session.scalars(
        select(Snapshot).where(Snapshot.customer_id == customer_id).order_by(Snapshot.as_of)
    ).all()
    by_day = {s.as_of: s for s in snaps}
    for s in snaps:
        nxt = s.as_of + dt.timedelta(days=1)
        if nxt.day != 1:
            continue  # not a month-end snapshot
        before = [
            x for x in snaps if s.as_of - dt.timedelta(days=31) <= x.as_of < s.as_of - dt.timedelta(days=5)
        ]
        after = [by_day[d] for d in (nxt + dt.timedelta(days=i) for i in range(5)) if d in by_day]
        if not before or not after:
            continue
        base, peak = _deposits(before[-1]), _deposits(s)
        inflow = peak - base
        if inflow <= 0:
            continue
        low = min(_deposits(a) for a in after)
        left = peak - low
        if left * 100 >= inflow * policy.outflow_share_pct:
            return f"month_end_outflow: {left:.2f} of a {inflow:.2f} month-end inflow left by {after[-1].as_of.isoformat()}"
    return None


def refresh_flags(session: Session, claim: Claim, policy: ClaimPolicy | None = None) -> list[str]:
    policy = policy or ClaimPolicy.from_env()
    flags = suspicion_flags(session, claim, policy)
    claim.flags = flags or None
    claim.needs_review = bool(flags)
    session.flush()
    return flags


# -- access ------------------------------------------------------------------------------------
def checker_filter(scope: Scope) -> Any:
    return scope.branch_filter(Claim.__table__.c.branch_id, "checker", "admin")


def get_claim_for_checker(session: Session, scope: Scope, claim_id: int) -> Claim:
    claim = session.get(Claim, claim_id)
    if claim is None or not scope.can_see_branch(claim.branch_id, "checker", "admin"):
        raise NotFound(f"No claim {claim_id}")
    return claim


def checker_queue(
    session: Session, scope: Scope, state: str = ClaimState.submitted, limit: int = 200
) -> list[Claim]:
    """Claims waiting for a checker in their branches; flagged ones first, then oldest first."""
    return list(
        session.scalars(
            select(Claim)
            .where(Claim.state == state, checker_filter(scope))
            .order_by(Claim.needs_review.desc(), Claim.created_at, Claim.id)
            .limit(limit)
        )
    )


def my_claims(session: Session, staff_id: int, limit: int = 100) -> list[Claim]:
    return list(
        session.scalars(
            select(Claim).where(Claim.staff_id == staff_id).order_by(Claim.id.desc()).limit(limit)
        )
    )


# -- verdicts ----------------------------------------------------------------------------------
def _not_claimant(claim: Claim, actor_id: int | None) -> None:
    if actor_id is not None and actor_id == claim.staff_id:
        raise Forbidden(
            "You cannot verify, reject or reverse your own claim: another checker must (maker-checker)"
        )


def verify(
    session: Session, claim: Claim, actor_id: int | None, note: str | None = None, ledger_event: Any = None
) -> Claim:
    """submitted → verified (a person, or the system when ``actor_id`` is None); records the ledger
    event, unless ``ledger_event`` (an imported core-banking event that confirms it) already counts."""
    _not_claimant(claim, actor_id)
    fire(session, claim, "verify", actor_id=actor_id, reason=note)
    _after_verified(session, claim, ledger_event)
    if actor_id is not None:  # a person's verdict (the system's own is in the claim's history)
        _audit(session, actor_id, "claim_verify", claim, note)
    return claim


def _audit(session: Session, actor_id: int | None, action: str, claim: Claim, reason: str | None) -> None:
    """The audit row of a claim's money step (RELIABILITY AUD-01): who, which claim, why."""
    from org.services import audit

    audit(
        session,
        actor_id,
        action,
        "claim",
        claim.id,
        reason=reason,
        detail={
            "staff_id": claim.staff_id,
            "measure": claim.measure,
            "quantity": str(claim.quantity),
            "amount": str(claim.amount),
        },
    )


def reject(session: Session, claim: Claim, actor_id: int, reason: str | None) -> Claim:
    """submitted → rejected with a reason the manager sees, and a notification to them."""
    _not_claimant(claim, actor_id)
    if not (reason or "").strip():
        raise InputError("reason", "a reason is required to reject a claim (the manager sees it)")
    fire(session, claim, "reject", actor_id=actor_id, reason=reason)
    _audit(session, actor_id, "claim_reject", claim, reason)
    from tasks.notify import notify

    notify(
        session,
        claim.staff_id,
        "claim",
        f"Claim #{claim.id} ({claim.measure}) was rejected: {reason}",
        link="/queue/claims",
    )
    return claim


def reverse(
    session: Session,
    claim: Claim,
    actor_id: int | None,
    reason: str | None,
    policy: ClaimPolicy | None = None,
) -> Claim:
    """verified → reversed (clawback) within the reversal window; the ledger event is reversed too."""
    policy = policy or ClaimPolicy.from_env()
    _not_claimant(claim, actor_id)
    if not (reason or "").strip():
        raise InputError("reason", "a reason is required to reverse a verified claim")
    fire(
        session,
        claim,
        "reverse",
        actor_id=actor_id,
        reason=reason,
        payload={"window_days": policy.reversal_days},
    )
    _audit(session, actor_id, "claim_reverse", claim, reason)
    ledger = _ledger()
    if ledger is not None and claim.ledger_event_id is not None and hasattr(ledger, "reverse"):
        from appraisal.models import LedgerEvent  # type: ignore[import-not-found]

        event = session.get(LedgerEvent, claim.ledger_event_id)
        if event is not None:
            ledger.reverse(session, event, reason, actor_id=actor_id)
    from tasks.notify import notify

    notify(
        session,
        claim.staff_id,
        "claim",
        f"Claim #{claim.id} ({claim.measure}) was reversed: {reason}",
        link="/queue/claims",
    )
    return claim


def _ledger() -> Any:
    try:
        from appraisal import ledger  # type: ignore[attr-defined]
    except ImportError:
        return None
    return ledger


def ledger_available() -> bool:
    ledger = _ledger()
    return ledger is not None and hasattr(ledger, "record_verified_claim")


def _after_verified(session: Session, claim: Claim, ledger_event: Any = None) -> None:
    ledger = _ledger()
    if ledger_event is not None:
        claim.ledger_event_id = ledger_event.id  # the imported event already counts: never twice
        session.flush()
    elif ledger is not None and hasattr(ledger, "record_verified_claim"):
        event = ledger.record_verified_claim(session, claim, actor_id=claim.verifier_id)
        claim.ledger_event_id = getattr(event, "id", None)
        session.flush()
    _mark_bounty_won(session, claim)
    from tasks.notify import notify

    notify(
        session,
        claim.staff_id,
        "claim",
        f"Claim #{claim.id} ({claim.measure}) was verified",
        link="/queue/claims",
    )


def _mark_bounty_won(session: Session, claim: Claim) -> None:
    """When the claim concerns a bounty's customer and the claimant holds it: the bounty is won."""
    try:
        from campaigns import bounties  # type: ignore[attr-defined]
    except ImportError:
        return
    win = getattr(bounties, "win_for_verified_claim", None)
    if win is None or claim.customer_id is None:
        return
    win(session, claim.customer_id, claim.staff_id, claim.verifier_id)


# -- automatic verification --------------------------------------------------------------------
def matching_imported_event(session: Session, claim: Claim) -> Any:
    """An imported core-banking ledger event of the same staff, customer and measure (not yet
    linked to another claim), or None."""
    try:
        from appraisal.models import EventSource, LedgerEvent
    except ImportError:  # pragma: no cover - the appraisal package is part of the product
        return None
    if claim.customer_id is None:
        return None
    since = (claim.created_at.date() if claim.created_at else clock.today()) - dt.timedelta(days=60)
    taken = select(Claim.ledger_event_id).where(Claim.ledger_event_id.is_not(None))
    return session.scalars(
        select(LedgerEvent)
        .where(
            LedgerEvent.source == EventSource.import_,
            LedgerEvent.staff_id == claim.staff_id,
            LedgerEvent.customer_id == claim.customer_id,
            LedgerEvent.measure == claim.measure,
            LedgerEvent.occurred_on >= since,
            LedgerEvent.id.not_in(taken),
        )
        .order_by(LedgerEvent.occurred_on, LedgerEvent.id)
        .limit(1)
    ).first()


def confirmed_by_core_banking(session: Session, claim: Claim) -> str | None:
    """The core-banking evidence that confirms ``claim`` (a holding opened, deposits risen), or None."""
    if claim.customer_id is None:
        return None
    since = (claim.created_at.date() if claim.created_at else clock.today()) - dt.timedelta(days=60)
    products = MEASURE_PRODUCTS.get(claim.measure)
    if products:
        rows = session.scalars(
            select(Holding).where(
                Holding.customer_id == claim.customer_id,
                Holding.product.in_(sorted(products)),
                Holding.opened_on >= since,
                Holding.closed_on.is_(None),
            )
        ).all()
        if len(rows) >= int(claim.quantity):
            return ", ".join(f"{h.product} opened {h.opened_on.isoformat()}" for h in rows if h.opened_on)
        return None
    if claim.measure in DEPOSIT_MEASURES:
        snaps = session.scalars(
            select(Snapshot)
            .where(Snapshot.customer_id == claim.customer_id, Snapshot.as_of >= since)
            .order_by(Snapshot.as_of)
        ).all()
        if len(snaps) >= 2:
            rise = _deposits(snaps[-1]) - _deposits(snaps[0])
            if rise >= claim.amount > 0:
                return f"deposits rose {rise:.2f} from {snaps[0].as_of.isoformat()} to {snaps[-1].as_of.isoformat()}"
    return None


def auto_verify(session: Session, policy: ClaimPolicy | None = None, limit: int = 5000) -> dict[str, int]:
    """Verify, as the system, every submitted unflagged claim that imported data confirms.

    Flags are recomputed first: a claim that became suspicious goes to human review instead.
    """
    policy = policy or ClaimPolicy.from_env()
    result = {"verified": 0, "flagged": 0, "unconfirmed": 0}
    claims = session.scalars(
        select(Claim)
        .where(Claim.state == ClaimState.submitted, Claim.needs_review.is_(False))
        .order_by(Claim.id)
        .limit(limit)
    ).all()
    for claim in claims:
        if refresh_flags(session, claim, policy):
            result["flagged"] += 1
            continue
        event = matching_imported_event(session, claim)
        evidence = (
            f"imported event {event.event_id}"
            if event is not None
            else confirmed_by_core_banking(session, claim)
        )
        if evidence is None:
            result["unconfirmed"] += 1
            continue
        try:
            verify(session, claim, None, note=f"confirmed by core banking: {evidence}", ledger_event=event)
        except GuardRefused:
            result["flagged"] += 1
            continue
        result["verified"] += 1
    return result


def retention_sweep(session: Session, policy: ClaimPolicy | None = None) -> int:
    """Claw back verified claims whose account closed inside the retention window (when no holdback)."""
    policy = policy or ClaimPolicy.from_env()
    n = 0
    claims = session.scalars(
        select(Claim).where(
            Claim.state == ClaimState.verified, Claim.retention_until >= clock.today() - dt.timedelta(days=1)
        )
    ).all()
    for claim in claims:
        products = MEASURE_PRODUCTS.get(claim.measure)
        if not products or claim.customer_id is None or claim.verified_at is None:
            continue
        closed = session.scalar(
            select(Holding.product).where(
                Holding.customer_id == claim.customer_id,
                Holding.product.in_(sorted(products)),
                Holding.closed_on.is_not(None),
                Holding.closed_on <= claim.retention_until,
                Holding.opened_on >= claim.created_at.date() - dt.timedelta(days=60),
            )
        )
        if closed is None:
            continue
        try:
            reverse(session, claim, None, f"{closed} closed within the retention window", policy)
        except GuardRefused:
            continue
        n += 1
    return n


__all__ = [
    "ClaimPolicy",
    "auto_verify",
    "checker_queue",
    "claim_workflow",
    "reject",
    "reverse",
    "submit",
    "verify",
]
