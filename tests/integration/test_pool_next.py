"""'Take the next customer' from the pool (RELIABILITY CONC-04): managers pulling at the same moment
each get a different customer (PostgreSQL: FOR UPDATE SKIP LOCKED in the claim's transaction),
nobody gets one twice, and an empty pool says so."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from campaigns import pool
from campaigns.models import Assignment
from config.database import db, make_engine
from org.models import Staff
from org.scope import Scope
from tasks.retry import retry_busy
from tests.conftest import USE_PG
from tests.factories import bearer, login, make_campaign, make_customer, make_staff

N = 20 if USE_PG else 6


def _pool(session, union, n):
    campaign = make_campaign(session, union.director_b1, [union.b1], state="active")
    for _ in range(n):
        session.add(
            Assignment(
                campaign_id=campaign.id,
                customer_id=make_customer(session, union.b1).id,
                branch_id=union.b1.id,
                state="pool",
            )
        )
    session.commit()
    return campaign


def test_simultaneous_pulls_get_different_customers(session, union):
    campaign = _pool(session, union, N)
    managers = [make_staff(session, union.b1) for _ in range(N)]
    session.commit()
    ids = [m.id for m in managers]
    engine = make_engine(
        str(db.engine.url.render_as_string(hide_password=False)), pool_size=N + 2, max_overflow=0
    )
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    barrier = threading.Barrier(N)
    got: dict[int, int] = {}
    errors: list[BaseException] = []

    def pull(staff_id: int) -> None:
        s = factory()
        try:
            scope = Scope.of(s, s.get(Staff, staff_id))
            barrier.wait(timeout=30)

            def work() -> None:
                a = pool.claim_next(s, scope)
                s.commit()
                got[staff_id] = a.id

            retry_busy(s, work, attempts=20)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=pull, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    engine.dispose()
    assert not errors, errors[:3]
    assert len(got) == N and len(set(got.values())) == N  # everyone got one, all different
    session.expire_all()
    owners = dict(
        session.execute(
            select(Assignment.id, Assignment.staff_id).where(Assignment.campaign_id == campaign.id)
        ).all()
    )
    assert {aid: owners[aid] for aid in got.values()} == {aid: sid for sid, aid in got.items()}
    assert session.scalar(select(func.count()).select_from(Assignment).where(Assignment.state == "pool")) == 0


def test_the_button_and_the_api(client, session, union):
    _pool(session, union, 1)
    login(client, union.m1)
    page = client.get("/pool").get_data(as_text=True)
    assert 'data-testid="claim-next"' in page
    r = client.post("/pool/next", follow_redirects=True)
    assert "The customer is yours now" in r.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(Assignment.staff_id)) == union.m1.id
    r = client.post("/pool/next", follow_redirects=True)
    assert "The pool is empty." in r.get_data(as_text=True)
    _pool(session, union, 1)
    h = bearer(session, union.m2)
    r = client.post("/api/v1/pool/next", headers=h)
    assert r.status_code == 200 and r.get_json()["staff_id"] == union.m2.id
    assert client.post("/api/v1/pool/next", headers=h).status_code == 404
