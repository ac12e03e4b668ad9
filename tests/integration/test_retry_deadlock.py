"""Two units of work that lock the same two rows in opposite orders: PostgreSQL kills one of them
as a deadlock (40P01), SQLite makes one wait or refuses it as busy; ``retry_busy`` runs the loser
again and both changes land (RELIABILITY CONC-05)."""

from __future__ import annotations

import threading

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from config.database import db
from org.models import Staff
from tasks.retry import is_busy, retry_busy


def test_opposite_lock_orders_both_land(app, session, union):
    a, b = union.m1.id, union.m2.id
    before = {a: union.m1.capacity, b: union.m2.capacity}
    session.commit()
    meet = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(first: int, second: int) -> None:
        tries = {"n": 0}

        def work() -> None:
            tries["n"] += 1
            with db.transaction() as s:
                s.execute(update(Staff).where(Staff.id == first).values(capacity=Staff.capacity + 1))
                if tries["n"] == 1:  # both hold their first row before reaching for the other
                    try:
                        meet.wait(timeout=3)
                    except threading.BrokenBarrierError:
                        pass
                s.execute(update(Staff).where(Staff.id == second).values(capacity=Staff.capacity + 1))

        try:
            with app.app_context():
                retry_busy(db.session, work, attempts=8)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(a, b)), threading.Thread(target=worker, args=(b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    session.expire_all()
    assert session.get(Staff, a).capacity == before[a] + 2
    assert session.get(Staff, b).capacity == before[b] + 2


def test_only_try_again_errors_are_retried():
    class Orig(Exception):
        def __init__(self, pgcode: str) -> None:
            super().__init__(pgcode)
            self.pgcode = pgcode

    assert is_busy(OperationalError("UPDATE", {}, Orig("40P01")))
    assert is_busy(OperationalError("UPDATE", {}, Orig("40001")))
    assert not is_busy(OperationalError("UPDATE", {}, Orig("23505")))
