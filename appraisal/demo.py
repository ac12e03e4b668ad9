"""Demo data of appraisal: a few months of ledger events for the demo campaigns, the Monday staff
school (员工夜校) with attendance, one verified complaint and a computed (not approved) run for last month."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from appraisal.ledger import month_bounds, month_of, previous_month
from appraisal.measures import PAYING_STATES
from appraisal.models import Attendance, Complaint, LedgerEvent, TrainingSession
from appraisal.runs import RunError, compute_run
from campaigns.models import Campaign, CampaignBranch
from config import clock
from org.models import Staff, StaffRole

COUNT_MEASURES = ("accounts_opened", "digital_activations", "payroll_accounts", "agreements_signed")


def seed(session: Session, ctx: Any) -> None:
    rng = ctx.rng
    today = clock.today()
    this_month = month_of(today)
    last_month = previous_month(this_month)
    months = [previous_month(last_month), last_month, this_month]
    managers = list(
        session.execute(
            select(Staff.id, Staff.branch_id)
            .join(StaffRole, StaffRole.staff_id == Staff.id)
            .where(StaffRole.role == "manager", Staff.status != "departed")
            .order_by(Staff.staff_no)
        )
    )
    campaigns = list(
        session.scalars(select(Campaign).where(Campaign.state.in_(PAYING_STATES)).order_by(Campaign.code))
    )
    branches: dict[int, set[int]] = {}
    for cid, bid in session.execute(select(CampaignBranch.campaign_id, CampaignBranch.branch_id)):
        branches.setdefault(cid, set()).add(bid)

    rows: list[dict[str, Any]] = []
    for month in months:
        first, last = month_bounds(month)
        last = min(last, today)
        for camp in campaigns:
            start, end = max(first, camp.start_date), min(last, camp.end_date)
            if start > end:
                continue
            measures = sorted(
                {r.get("measure") for r in camp.rules or [] if r.get("measure") in COUNT_MEASURES}
            ) or ["accounts_opened"]
            for sid, bid in managers:
                if not camp.all_branches and bid not in branches.get(camp.id, set()):
                    continue
                for _ in range(rng.randint(0, 6)):
                    day = start + dt.timedelta(days=rng.randrange((end - start).days + 1))
                    rows.append(
                        {
                            "event_id": f"DEMO-{camp.code}-{len(rows) + 1:06d}",
                            "occurred_on": day,
                            "month": month,
                            "staff_id": sid,
                            "campaign_id": camp.id,
                            "measure": rng.choice(measures),
                            "quantity": rng.randint(1, 3),
                            "amount": Decimal("0.00"),
                            "source": "import",
                        }
                    )
    if rows:
        session.execute(insert(LedgerEvent), rows)

    # the Monday evening staff school, last month and this month, with attendance
    first = month_bounds(last_month)[0]
    monday = first + dt.timedelta(days=(7 - first.weekday()) % 7)
    sessions = []
    while monday <= today:
        sessions.append(
            TrainingSession(title="员工夜校", kind="staff_school", held_on=monday, mandatory=True)
        )
        monday += dt.timedelta(days=7)
    session.add_all(sessions)
    session.flush()
    if sessions and managers:
        session.execute(
            insert(Attendance),
            [
                {"session_id": s.id, "staff_id": sid, "present": rng.random() > 0.1}
                for s in sessions
                for sid, _ in managers
            ],
        )

    if managers:
        sid = managers[min(3, len(managers) - 1)][0]
        session.add(
            Complaint(
                staff_id=sid,
                received_on=month_bounds(last_month)[0] + dt.timedelta(days=11),
                text="客户反映办理业务时等候时间过长、解释不耐心",
                state="verified",
                satisfaction=3,
            )
        )
    session.flush()
    try:
        compute_run(session, last_month)
    except RunError as exc:  # a demo campaign with rules the run refuses: say so, keep the rest
        print(f"appraisal demo: no run for {last_month}: {exc}")
