"""The claim machine's table, exhaustively, and its guards (the checker is never the claimant)."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace

import pytest

from config import clock
from tasks.claim_machine import claim_workflow
from tasks.models import ClaimState
from workflow.engine import FireContext

S = ClaimState
TRIGGERS = ("verify", "reject", "reverse")
ALLOWED = {
    (S.submitted, "verify"): S.verified,
    (S.submitted, "reject"): S.rejected,
    (S.verified, "reverse"): S.reversed,
}


@pytest.mark.parametrize("state,trigger", list(itertools.product(list(S), TRIGGERS)))
def test_every_pair(state, trigger):
    t = claim_workflow.table.get((state, trigger))
    if (state, trigger) in ALLOWED:
        assert t is not None and t.dest == ALLOWED[(state, trigger)]
    else:
        assert t is None


def test_reasons_required_for_reject_and_reverse_only():
    assert claim_workflow.table[(S.submitted, "reject")].reason_required
    assert claim_workflow.table[(S.verified, "reverse")].reason_required
    assert not claim_workflow.table[(S.submitted, "verify")].reason_required
    for s in (S.rejected, S.reversed):
        assert claim_workflow.triggers_from(s) == []


def _ctx(actor, obj, payload=None):
    return FireContext(None, obj, "verify", actor, None, payload or {})  # type: ignore[arg-type]


def _guard(trigger, state, name):
    return next(g for g in claim_workflow.table[(state, trigger)].guards if g.name == name)


@pytest.mark.parametrize(
    "trigger,state", [("verify", S.submitted), ("reject", S.submitted), ("reverse", S.verified)]
)
def test_the_claimant_is_never_the_checker(trigger, state):
    g = _guard(trigger, state, "not_claimant")
    claim = SimpleNamespace(staff_id=7, needs_review=False, flags=None)
    assert "never the claimant" in g.check(_ctx(7, claim))
    assert g.check(_ctx(8, claim)) is None
    assert g.check(_ctx(None, claim)) is None  # the system (automatic verification)


def test_flagged_claims_need_a_person():
    g = _guard("verify", S.submitted, "reviewed_by_person")
    flagged = SimpleNamespace(staff_id=1, needs_review=True, flags=["same_phone: 5"])
    assert "a person must review" in g.check(_ctx(None, flagged))
    assert g.check(_ctx(2, flagged)) is None


def test_reversal_window():
    g = _guard("reverse", S.verified, "within_window")
    recent = SimpleNamespace(verified_at=clock.now() - dt.timedelta(days=10))
    old = SimpleNamespace(verified_at=clock.now() - dt.timedelta(days=100))
    assert g.check(_ctx(1, recent, {"window_days": 90})) is None
    assert "has passed" in g.check(_ctx(1, old, {"window_days": 90}))
