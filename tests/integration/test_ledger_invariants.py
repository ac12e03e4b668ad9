"""LED-05 (RELIABILITY.md): ledger and run invariants hold after every step of random sequences of
recording, reversing, computing, approving and locking (hypothesis stateful testing).

Each example works in a branch of its own (the ledger can never be emptied: it is append-only).
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from appraisal import ledger, runs
from appraisal.models import IncentiveRun, LedgerEvent, StatementLine
from config import clock

_seq = itertools.count(1)
_done: dict[str, int] = {}


def test_ledger_invariants_under_random_sequences(session, union, factories) -> None:  # noqa: ANN001
    last_month = ledger.previous_month(ledger.month_of(clock.today()))
    this_month = ledger.month_of(clock.today())
    first, _ = ledger.month_bounds(last_month)

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            n = next(_seq)
            self.branch = factories.branch(session, f"L{n:04d}", parent=union.root)
            self.staff = [factories.staff(session, self.branch, ("manager",)) for _ in range(2)]
            self.campaign = factories.campaign(
                session,
                union.director,
                [self.branch],
                start_date=first,
                end_date=clock.today() + dt.timedelta(days=30),
                state="active",
                budget=Decimal("150.00"),
                rules=[
                    {
                        "id": "acc",
                        "kind": "piece_rate",
                        "measure": "accounts_opened",
                        "rate": "20",
                        "cap": "200",
                    },
                    {"id": "vol", "kind": "percentage", "measure": "payroll_volume", "rate": "0.003"},
                ],
            )
            session.commit()
            self.events: list[int] = []
            self.locked_hash: dict[str, str] = {}

        def _scope(self) -> str:
            return self.branch.code

        @rule(
            who=st.integers(0, 1), last=st.booleans(), qty=st.integers(1, 5), cents=st.integers(0, 10_000_000)
        )
        def record(self, who: int, last: bool, qty: int, cents: int) -> None:
            month = last_month if last else this_month
            day = ledger.month_bounds(month)[0] + dt.timedelta(days=1)
            row = {
                "event_id": f"LI{next(_seq):07d}",
                "occurred_on": min(day, clock.today()),
                "staff_no": self.staff[who].staff_no,
                "customer_no": None,
                "campaign_code": self.campaign.code,
                "measure": "payroll_volume" if cents % 2 else "accounts_opened",
                "quantity": qty,
                "amount": Decimal(cents).scaleb(-2),
            }
            result = ledger.import_events(session, [(2, row, [])])
            session.commit()
            closed = month in self.locked_hash
            assert (result.added == 0) == closed  # nothing is posted into a closed month
            if result.added:
                self.events.append(
                    session.scalar(select(LedgerEvent.id).where(LedgerEvent.event_id == row["event_id"]))
                )

        @precondition(lambda self: bool(self.events))
        @rule(pick=st.integers(0, 10_000))
        def reverse(self, pick: int) -> None:
            event = session.get(LedgerEvent, self.events[pick % len(self.events)])
            ledger.reverse(session, event, "clawback")
            session.commit()

        @rule(last=st.booleans())
        def compute(self, last: bool) -> None:
            month = last_month if last else this_month
            try:
                runs.compute_run(session, month, self._scope())
                session.commit()
                _done["computed"] = _done.get("computed", 0) + 1
            except runs.RunError:
                session.rollback()
                assert (
                    month in self.locked_hash
                    or runs.get_run(session, month, self._scope()).state == "approved"
                )

        @rule()
        def approve_and_lock_last_month(self) -> None:
            run = runs.find_run(session, last_month, self._scope())
            if run is None or run.state != "computed":
                return
            runs.approve_run(session, run, union.director)
            runs.lock_run(session, run, union.checker.id, imports_done=True)
            session.commit()
            self.locked_hash[last_month] = run.result_hash
            _done["locked"] = _done.get("locked", 0) + 1

        @invariant()
        def lines_sum_to_totals(self) -> None:
            if not hasattr(self, "branch"):
                return
            for run in session.scalars(
                select(IncentiveRun).where(IncentiveRun.scope_key == self.branch.code)
            ):
                if run.state == "computing":
                    continue
                total = session.scalar(
                    select(func.coalesce(func.sum(StatementLine.amount), 0)).where(
                        StatementLine.run_id == run.id
                    )
                )
                assert Decimal(str(total)).quantize(Decimal("0.01")) == run.total
                positive = session.scalar(
                    select(func.coalesce(func.sum(StatementLine.amount), 0)).where(
                        StatementLine.run_id == run.id, StatementLine.amount > 0
                    )
                )
                assert (
                    Decimal(str(positive)).quantize(Decimal("0.01")) <= Decimal("150.00") * 2
                )  # two months' budget at most

        @invariant()
        def locked_runs_never_change(self) -> None:
            if not hasattr(self, "branch"):
                return
            for month, digest in self.locked_hash.items():
                run = runs.find_run(session, month, self.branch.code)
                assert run.state == "locked" and run.result_hash == digest

        @invariant()
        def totals_match_the_events(self) -> None:
            assert ledger.check_totals(session) == []  # ledger_total, kept by the database's trigger

        @invariant()
        def each_event_reversed_at_most_once(self) -> None:
            counts = session.execute(
                select(LedgerEvent.reverses_id, func.count())
                .where(LedgerEvent.reverses_id.is_not(None))
                .group_by(LedgerEvent.reverses_id)
            ).all()
            assert all(n == 1 for _, n in counts)

    LedgerMachine.TestCase.settings = settings(
        max_examples=12,
        stateful_step_count=10,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same sequences every run: the "did real work" check cannot flake
    )
    run_state_machine_as_test(LedgerMachine, settings=LedgerMachine.TestCase.settings)
    assert _done.get("computed", 0) > 5 and _done.get("locked", 0) > 0, _done  # the sequences did real work
