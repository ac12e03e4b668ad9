"""Claims: maker-checker, ledger events, automatic verification, anti-gaming flags, reversal window."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from appraisal.models import LedgerEvent
from config import clock
from customers.models import Holding, Snapshot
from org.scope import Forbidden, Scope
from tasks import claims
from tasks.models import Claim, Notification
from tests.factories import make_campaign, make_customer
from workflow.errors import GuardRefused, ReasonRequired

NO_HOLD = claims.ClaimPolicy(retention_days=30, reversal_days=90, holdback_pct=0)


def _claim(session, union, customer=None, **kw):
    kw.setdefault("measure", "accounts_opened")
    kw.setdefault("evidence_text", "receipt 0001")
    return claims.submit(
        session, union.m1.id, customer_id=customer.id if customer else None, policy=NO_HOLD, **kw
    )


def test_checker_verifies_and_the_ledger_holds_the_event(session, union):
    c = _claim(session, union, amount="80000.00", measure="new_deposits")
    session.commit()
    assert c.state == "submitted" and c.retention_until == clock.today() + dt.timedelta(days=30)
    claims.verify(session, c, union.checker.id)
    session.commit()
    assert c.state == "verified" and c.verifier_id == union.checker.id and not c.auto_verified
    event = session.get(LedgerEvent, c.ledger_event_id)
    assert event.claim_id == c.id and event.amount == Decimal("80000.00") and event.staff_id == union.m1.id
    assert (
        session.scalar(
            select(func.count()).select_from(Notification).where(Notification.staff_id == union.m1.id)
        )
        == 1
    )


def test_the_claimant_can_never_verify_their_own_claim(session, union):
    c = _claim(session, union)
    session.commit()
    with pytest.raises(Forbidden, match="own claim"):
        claims.verify(session, c, union.m1.id)
    with pytest.raises(Forbidden):
        claims.reject(session, c, union.m1.id, "no")
    # the machine guard alone refuses too
    from workflow.engine import fire

    with pytest.raises(GuardRefused, match="never the claimant"):
        fire(session, c, "verify", actor_id=union.m1.id)
    session.rollback()
    # and the database refuses it whatever the code path
    with pytest.raises(IntegrityError):
        session.execute(update(Claim).where(Claim.id == c.id).values(verifier_id=union.m1.id))
        session.flush()
    session.rollback()
    assert session.get(Claim, c.id).state == "submitted"


def test_reject_needs_a_reason_and_tells_the_manager(session, union):
    c = _claim(session, union)
    with pytest.raises(claims.InputError, match="reason"):
        claims.reject(session, c, union.checker.id, " ")
    claims.reject(session, c, union.checker.id, "no account found in core banking")
    session.commit()
    assert c.state == "rejected" and c.reason == "no account found in core banking"
    note = session.scalar(select(Notification).where(Notification.staff_id == union.m1.id))
    assert "rejected: no account found" in note.text


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("amount", "-5", "negative"),
        ("amount", "abc", "not a number"),
        ("amount", "NaN", "not a number"),
        ("quantity", "0", "more than 0"),
        ("quantity", "x", "not a number"),
    ],
)
def test_bad_amounts_are_refused_with_the_field(session, union, field, value, message):
    with pytest.raises(claims.InputError, match=f"{field}: .*{message}"):
        _claim(session, union, **{field: value})
    assert session.scalar(select(func.count()).select_from(Claim)) == 0


def test_measure_must_be_one_of_the_campaign(session, union):
    camp = make_campaign(session, union.director_b1, [union.b1])
    with pytest.raises(claims.InputError, match="measure"):
        _claim(session, union, campaign_id=camp.id, measure="payroll_accounts")
    assert _claim(session, union, campaign_id=camp.id).measure == "accounts_opened"
    with pytest.raises(claims.InputError, match="evidence"):
        _claim(session, union, evidence_text="")


def test_auto_verify_from_holdings_and_from_imported_events(session, union):
    cust = make_customer(session, union.b1, union.m1)
    other = make_customer(session, union.b1, union.m1)
    session.add(Holding(customer_id=cust.id, product="debit_card", opened_on=clock.today()))
    c1 = _claim(session, union, cust)
    c2 = _claim(session, union, other)  # nothing confirms it
    ev = LedgerEvent(
        event_id="CB-1",
        occurred_on=clock.today(),
        month=clock.today().strftime("%Y-%m"),
        staff_id=union.m1.id,
        customer_id=other.id,
        measure="digital_activations",
        quantity=1,
        amount=Decimal("0"),
        source="import",
    )
    session.add(ev)
    c3 = _claim(session, union, other, measure="digital_activations")
    session.commit()
    result = claims.auto_verify(session, NO_HOLD)
    session.commit()
    assert result == {"verified": 2, "flagged": 0, "unconfirmed": 1}
    assert c1.state == "verified" and c1.auto_verified and c1.verifier_id is None and c1.ledger_event_id
    assert c2.state == "submitted"
    assert c3.ledger_event_id == ev.id  # the imported event counts; no second event
    assert (
        session.scalar(select(func.count()).select_from(LedgerEvent).where(LedgerEvent.claim_id == c3.id))
        == 0
    )


def test_flags_send_claims_to_human_review(session, union):
    phone = "13912345678"
    customers = [make_customer(session, union.b1, union.m1, phone=phone) for _ in range(3)]
    for cu in customers:
        session.add(Holding(customer_id=cu.id, product="debit_card", opened_on=clock.today()))
    closer = make_customer(session, union.b1, union.m1)
    session.add(
        Holding(
            customer_id=closer.id,
            product="debit_card",
            opened_on=clock.today() - dt.timedelta(days=5),
            closed_on=clock.today(),
        )
    )
    session.flush()
    c1 = _claim(session, union, customers[0])
    c2 = _claim(session, union, closer)
    session.commit()
    assert c1.needs_review and c1.flags[0].startswith("same_phone: 3 new accounts on one phone 139****5678")
    assert c2.needs_review and c2.flags[0].startswith("closed_early")
    assert claims.auto_verify(session, NO_HOLD)["verified"] == 0
    with pytest.raises(GuardRefused, match="a person must review"):
        claims.verify(session, c1, None)
    session.rollback()
    claims.verify(session, session.get(Claim, c1.id), union.checker.id)  # a person may
    assert claims.checker_queue(session, Scope.of(session, union.checker))[0].id == c2.id


def test_month_end_outflow_is_flagged(session, union):
    cust = make_customer(session, union.b1, union.m1)
    month_end = clock.today().replace(day=1) - dt.timedelta(days=1)
    for day, amount in (
        (month_end - dt.timedelta(days=20), "1000"),
        (month_end, "101000"),
        (month_end + dt.timedelta(days=3), "2000"),
    ):
        session.add(Snapshot(customer_id=cust.id, as_of=day, deposit_demand=Decimal(amount)))
    session.flush()
    c = _claim(session, union, cust, measure="new_deposits", amount="100000")
    assert any(f.startswith("month_end_outflow") for f in c.flags)


def test_holdback_is_stored_on_the_claim(session, union):
    c = claims.submit(
        session,
        union.m1.id,
        measure="new_deposits",
        amount="1000",
        evidence_text="r",
        policy=claims.ClaimPolicy(retention_days=10, holdback_pct=40),
    )
    assert c.holdback_pct == Decimal("40") and c.holdback_amount == Decimal("400.00")
    assert c.holdback_release_on == clock.today() + dt.timedelta(days=10)


def test_reversal_within_the_window_reverses_the_ledger_event(session, union, monkeypatch):
    c = _claim(session, union)
    claims.verify(session, c, union.checker.id)
    session.commit()
    with pytest.raises(claims.InputError):
        claims.reverse(session, c, union.checker.id, "", NO_HOLD)
    claims.reverse(session, c, union.checker.id, "account closed after 3 days", NO_HOLD)
    session.commit()
    assert c.state == "reversed"
    rev = session.scalar(select(LedgerEvent).where(LedgerEvent.reverses_id == c.ledger_event_id))
    assert rev.quantity == -1


def test_reversal_after_the_window_is_refused(session, union, monkeypatch):
    c = _claim(session, union)
    claims.verify(session, c, union.checker.id)
    session.commit()
    later = clock.now() + dt.timedelta(days=91)
    monkeypatch.setattr(clock, "now", lambda: later)
    with pytest.raises(GuardRefused, match="reversal window of 90 days"):
        claims.reverse(session, c, union.checker.id, "too late", NO_HOLD)


def test_retention_sweep_claws_back_closed_accounts(session, union):
    cust = make_customer(session, union.b1, union.m1)
    h = Holding(customer_id=cust.id, product="debit_card", opened_on=clock.today())
    session.add(h)
    c = _claim(session, union, cust)
    claims.verify(session, c, union.checker.id)
    h.closed_on = clock.today()
    session.commit()
    assert claims.retention_sweep(session, NO_HOLD) == 1
    assert c.state == "reversed"


def test_reasons_are_required_by_the_machine(session, union):
    c = _claim(session, union)
    from workflow.engine import fire

    with pytest.raises(ReasonRequired):
        fire(session, c, "reject", actor_id=union.checker.id)


def test_verified_claim_wins_the_bounty_the_claimant_holds(session, union):
    from campaigns import bounties
    from campaigns.bounty_models import Bounty

    hospital = make_customer(session, union.b1, None, name="县人民医院", type="institution")
    session.commit()
    b = bounties.post(
        session,
        Scope.of(session, union.director_b1),
        customer_id=hospital.id,
        title="医院代发工资",
        amount="3000",
        deadline=clock.today() + dt.timedelta(days=30),
    )
    bounties.take(session, Scope.of(session, union.m1), b.id)
    session.commit()
    other = claims.submit(
        session,
        union.m2.id,
        measure="payroll_accounts",
        customer_id=hospital.id,
        evidence_text="协议",
        policy=NO_HOLD,
    )
    claims.verify(session, other, union.checker.id)  # not the taker: nothing won
    assert session.get(Bounty, b.id).state == "taken"
    mine = claims.submit(
        session,
        union.m1.id,
        measure="payroll_accounts",
        customer_id=hospital.id,
        evidence_text="代发协议已签",
        policy=NO_HOLD,
    )
    claims.verify(session, mine, union.checker.id)
    session.commit()
    won = session.get(Bounty, b.id)
    assert won.state == "won" and won.winner_id == union.m1.id
