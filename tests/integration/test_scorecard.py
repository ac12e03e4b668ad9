"""Journey 9: training attendance and a verified complaint show on the scorecard beside results and
process (follow-ups logged, tasks on time), and the ranking within the branch moves."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from appraisal import ledger
from appraisal.measures import gather
from appraisal.models import Attendance, Complaint, LedgerEvent, TrainingSession
from appraisal.scorecard import score_month
from campaigns.models import Assignment, Target
from config import clock
from tasks.models import FollowUp, Task

D = Decimal


def test_scorecard_measures_from_the_database_and_ranking(session, union, factories) -> None:  # noqa: ANN001
    u = union
    month = ledger.previous_month(ledger.month_of(clock.today()))
    first, last = ledger.month_bounds(month)
    camp = factories.campaign(
        session,
        u.director,
        [u.b1],
        start_date=first,
        end_date=clock.today() + dt.timedelta(days=5),
        state="active",
        targets=[Target(measure="accounts_opened", branch_id=u.b1.id, value=D(8), split="by_headcount")],
    )
    cust = factories.customer(session, u.b1, u.m1)
    a = Assignment(campaign_id=camp.id, customer_id=cust.id, branch_id=u.b1.id, staff_id=u.m1.id)
    session.add(a)
    session.flush()
    at = dt.datetime.combine(first + dt.timedelta(days=3), dt.time(19))
    for i in range(10):
        session.add(
            FollowUp(
                assignment_id=a.id,
                customer_id=cust.id,
                staff_id=u.m1.id,
                at=at + dt.timedelta(days=i),
                channel="phone",
                content="回访",
                reaction="interested",
            )
        )
    done_at = dt.datetime.combine(first + dt.timedelta(days=4), dt.time(10))
    session.add_all(
        [
            Task(
                kind="contact",
                title="t",
                campaign_id=camp.id,
                branch_id=u.b1.id,
                staff_id=u.m1.id,
                due_on=first + dt.timedelta(days=5),
                state="done",
                finished_at=done_at,
            ),
            Task(
                kind="contact",
                title="t",
                campaign_id=camp.id,
                branch_id=u.b1.id,
                staff_id=u.m2.id,
                due_on=first + dt.timedelta(days=5),
                state="open",
            ),
            Task(
                kind="contact",
                title="t",
                campaign_id=camp.id,
                branch_id=u.b1.id,
                staff_id=u.m2.id,
                due_on=first + dt.timedelta(days=6),
                state="done",
                finished_at=dt.datetime.combine(last + dt.timedelta(days=2), dt.time(9)),
            ),  # late: overdue at month end
        ]
    )
    for staff, qty in ((u.m1, 4), (u.m2, 4)):
        session.add(
            LedgerEvent(
                event_id=f"S{staff.id}",
                occurred_on=first + dt.timedelta(days=2),
                month=month,
                staff_id=staff.id,
                campaign_id=camp.id,
                measure="accounts_opened",
                quantity=qty,
            )
        )
    session.commit()

    data = gather(session, month)
    assert data.measures[(u.m1.id, camp.id)]["follow_ups_logged"] == D(10)
    assert data.measures[(u.m1.id, camp.id)]["tasks_done"] == D(1)
    assert data.measures[(u.m2.id, camp.id)]["tasks_overdue"] == D(2)
    before = score_month(data)
    assert (
        before[u.m1.id].rank_branch == 1 and before[u.m2.id].rank_branch == 2
    )  # process decides (重结果、轻过程)

    # M0101 misses two Monday staff schools and gets a verified complaint: the ranking turns
    for day in (7, 14):
        ts = TrainingSession(title="员工夜校", held_on=first + dt.timedelta(days=day - 1), branch_id=u.b1.id)
        session.add(ts)
        session.flush()
        session.add_all(
            [
                Attendance(session_id=ts.id, staff_id=u.m1.id, present=False),
                Attendance(session_id=ts.id, staff_id=u.m2.id, present=True),
            ]
        )
    session.add_all(
        [
            Complaint(
                staff_id=u.m1.id, received_on=first + dt.timedelta(days=9), text="服务态度", state="verified"
            ),
            Complaint(
                staff_id=u.m1.id, received_on=first + dt.timedelta(days=9), text="未核实", state="dismissed"
            ),
            *[
                Complaint(
                    staff_id=u.m1.id,
                    received_on=first + dt.timedelta(days=12 + i),
                    text="再次",
                    state="verified",
                )
                for i in range(3)
            ],
        ]
    )
    session.commit()
    data = gather(session, month)
    assert data.staff_measures[u.m1.id] == {"training_missed": D(2), "complaints": D(4)}
    after = score_month(data)
    assert after[u.m1.id].training == D("0.00") and after[u.m1.id].service == D("20.00")  # 100 − 4 × 20
    assert after[u.m1.id].score == D("66.50")  # 0.4 × 100 + 0.3 × 75 + 0.2 × 20 + 0.1 × 0
    assert after[u.m2.id].rank_branch == 1 and after[u.m1.id].rank_branch == 2
    assert after[u.m3.id].rank_branch == 1  # alone in B02
