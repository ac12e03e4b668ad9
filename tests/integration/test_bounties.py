"""Bounties (悬赏营销): post, take (one taker), release/expire job, win by the taker, pay."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from campaigns import bounties
from campaigns.bounty_jobs import SCHEDULE, release_bounties
from campaigns.bounty_models import Bounty
from config import clock
from config.database import db, make_engine
from org.models import Staff
from org.scope import Forbidden, NotFound, Scope
from tests.factories import make_customer, make_staff
from workflow.engine import history
from workflow.errors import ConflictError, GuardRefused, InvalidTransition, ReasonRequired

TODAY = clock.today()


def _post(session, union, **kw):
    hospital = kw.pop("customer", None) or make_customer(
        session, union.b1, type="institution", name="县人民医院"
    )
    kw.setdefault("title", "县人民医院代发工资")
    kw.setdefault("amount", "3000")
    kw.setdefault("deadline", TODAY + dt.timedelta(days=60))
    kw.setdefault("exclusive_days", 14)
    b = bounties.post(session, Scope.of(session, union.director_b1), customer_id=hospital.id, **kw)
    session.commit()
    return b


def test_journey_post_take_win_pay(session, union):
    b = _post(session, union)
    assert (b.state, b.amount, b.branch_id) == ("open", Decimal("3000.00"), union.b1.id)
    taken = bounties.take(session, Scope.of(session, union.m1), b.id)
    session.commit()
    # exclusive for 14 days counting today
    assert (taken.state, taken.taken_by, taken.taken_until) == (
        "taken",
        union.m1.id,
        TODAY + dt.timedelta(days=13),
    )
    from tasks.models import Notification

    told = {n.staff_id for n in session.scalars(select(Notification).where(Notification.kind == "bounty"))}
    assert told == {union.m1.id, union.m2.id}  # the managers of B01, not B02's
    with pytest.raises(ConflictError, match="already taken"):
        bounties.take(session, Scope.of(session, union.m2), b.id)
    session.rollback()
    # only the taker's verified claim wins it
    with pytest.raises(GuardRefused, match="only the manager who took"):
        bounties.mark_won(session, b.id, union.m2.id)
    session.rollback()
    assert bounties.win_for_verified_claim(session, b.customer_id, union.m1.id, union.checker.id) == [b.id]
    session.commit()
    assert session.get(Bounty, b.id).winner_id == union.m1.id
    assert bounties.won_unpaid(session) == [(b.id, union.m1.id, Decimal("3000.00"))]
    bounties.mark_paid(session, b.id, run="2027-01:U00")
    session.commit()
    done = session.get(Bounty, b.id)
    assert (done.state, done.paid_in) == ("paid", "2027-01:U00")
    assert [h.trigger for h in history(session, "bounty", b.id)] == ["take", "win", "pay"]
    assert bounties.won_unpaid(session) == []


def test_bad_input_is_refused_with_the_field(session, union):
    scope = Scope.of(session, union.director_b1)
    c = make_customer(session, union.b1)
    other = make_customer(session, union.b2)
    ok = {"customer_id": c.id, "title": "t", "amount": "100", "deadline": TODAY + dt.timedelta(days=3)}
    cases = [
        ({"amount": "-5"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"deadline": TODAY - dt.timedelta(days=1)}, "deadline"),
        ({"title": " "}, "title"),
        ({"customer_id": other.id}, "customer"),
        ({"exclusive_days": 0}, "exclusive_days"),
        ({"campaign_id": 99999}, "campaign"),
    ]
    for change, field in cases:
        with pytest.raises(bounties.BountyInputError) as err:
            bounties.post(session, scope, **{**ok, **change})
        assert err.value.field == field
    assert session.scalars(select(Bounty)).all() == []
    with pytest.raises(Forbidden):
        bounties.post(session, Scope.of(session, union.m1), **ok)


def test_scope_manager_of_other_branch_cannot_take(session, union):
    b = _post(session, union)
    with pytest.raises(NotFound):
        bounties.take(session, Scope.of(session, union.m3), b.id)
    with pytest.raises(NotFound):
        bounties.get_bounty(session, Scope.of(session, union.director_b2), b.id)
    with pytest.raises(Forbidden):
        bounties.take(session, Scope.of(session, union.director_b1), b.id)


def test_release_and_expire_job(session, union):
    held = _post(session, union, exclusive_days=3)
    stale = _post(session, union, deadline=TODAY + dt.timedelta(days=1))
    bounties.take(session, Scope.of(session, union.m1), held.id)
    session.commit()
    # nothing due yet: the exclusivity covers today, tomorrow and the day after
    assert bounties.release_expired(session, TODAY + dt.timedelta(days=1)) == {"released": 0, "expired": 0}
    assert bounties.release_expired(session, TODAY + dt.timedelta(days=2)) == {"released": 0, "expired": 1}
    result = bounties.release_expired(session, TODAY + dt.timedelta(days=4))
    session.commit()
    assert result == {"released": 1, "expired": 0}
    session.expire_all()
    h, s = session.get(Bounty, held.id), session.get(Bounty, stale.id)
    assert (h.state, h.taken_by, h.taken_until) == ("open", None, None)
    assert s.state == "expired"
    assert [x.trigger for x in history(session, "bounty", h.id)] == ["take", "release"]
    # the released bounty can be taken by someone else now
    again = bounties.take(session, Scope.of(session, union.m2), h.id)
    assert again.taken_by == union.m2.id
    session.commit()
    assert "campaigns.release_bounties" in SCHEDULE
    assert release_bounties() == {"released": 0, "expired": 0}


def test_withdraw_needs_reason_and_open_state(session, union):
    b = _post(session, union)
    scope = Scope.of(session, union.director_b1)
    with pytest.raises(ReasonRequired):
        bounties.withdraw(session, scope, b.id, "")
    bounties.withdraw(session, scope, b.id, "target changed")
    session.commit()
    assert session.get(Bounty, b.id).state == "withdrawn"
    with pytest.raises(InvalidTransition, match="it is withdrawn"):
        bounties.withdraw(session, scope, b.id, "again")


def test_concurrent_take_one_taker(session, union):
    b = _post(session, union)
    managers = [make_staff(session, union.b1) for _ in range(8)]
    session.commit()
    engine = make_engine(db.engine.url.render_as_string(hide_password=False), pool_size=10, max_overflow=0)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    barrier = threading.Barrier(len(managers))
    results: list[str] = []

    def attempt(staff_id: int) -> None:
        s = factory()
        try:
            scope = Scope.of(s, s.get(Staff, staff_id))
            barrier.wait(timeout=30)
            try:
                bounties.take(s, scope, b.id)
                s.commit()
                results.append("won")
            except ConflictError:
                s.rollback()
                results.append("409")
        except Exception as exc:
            results.append(repr(exc))
        finally:
            s.close()

    threads = [threading.Thread(target=attempt, args=(m.id,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    engine.dispose()
    assert sorted(results) == ["409"] * 7 + ["won"], results
    session.expire_all()
    assert session.get(Bounty, b.id).version == 2


def test_demo_bounties(session):
    from random import Random

    from campaigns import bounty_demo
    from customers import demo as customers_demo
    from web.demo import DemoContext, seed_org

    ctx = DemoContext(rng=Random(7), customers=200)
    seed_org(session, ctx)
    customers_demo.seed(session, ctx)
    bounty_demo.seed(session, ctx)
    session.commit()
    rows = session.scalars(select(Bounty).order_by(Bounty.id)).all()
    assert [(b.state, b.amount) for b in rows] == [
        ("taken", Decimal("3000.00")),
        ("open", Decimal("1500.00")),
    ]
    assert "县人民医院" in rows[0].title and rows[0].taken_by == ctx.staff["S1102"].id
