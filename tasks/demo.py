"""Demo data of the task queue: follow-up plans, follow-ups, failures, a snoozed task, an
appointment with the director for a key customer, claims in every state, notifications.

Runs after ``campaigns.demo`` (which launches campaigns and makes their first tasks). Everything
goes through the services, so the demo obeys the same rules as the product. Deterministic.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Assignment, Campaign, CampaignState
from config import clock
from customers.models import Customer
from org.models import Role, Staff, StaffRole
from tasks import claims, jobs, services
from tasks.models import Task, TaskState
from workflow.errors import WorkflowError

PLANS = [
    ("把外出务工汇款转为一年期定期存款", "过年要用现金", "推荐6个月定期，到期正好过年"),
    ("开通手机银行并绑定代发工资卡", "担心不安全", "演示指纹登录和转账限额"),
    ("争取单位代发工资协议", "已在他行代发", "对比手续费与上门服务"),
]
CONTENTS = [
    ("interested", "客户有意向，约好周五到网点办理"),
    ("neutral", "客户说再考虑，下周再联系"),
    ("declined", "客户已在他行购买理财，暂不需要"),
    ("unreachable", "电话无人接听"),
]
FAIL_REASONS = ["客户外出务工，联系不上", "资金已转他行理财", "客户搬家，地址无效"]


def _try(session: Session, fn: Any) -> Any:
    """Run one demo action in a savepoint; a refusal (e.g. a do-not-contact customer) is skipped."""
    try:
        with session.begin_nested():
            return fn()
    except WorkflowError:
        return None


def seed(session: Session, ctx: Any) -> None:
    today = clock.today()
    rng = ctx.rng
    tasks = list(
        session.scalars(
            select(Task)
            .join(Campaign, Campaign.id == Task.campaign_id)
            .where(
                Campaign.state == CampaignState.active,
                Task.state == TaskState.open,
                Task.staff_id.is_not(None),
            )
            .order_by(Task.staff_id, Task.id)
            .limit(400)
        )
    )
    if not tasks:
        return
    checker = session.scalars(
        select(Staff)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == Role.checker)
        .limit(1)
    ).first()
    by_staff: dict[int, list[Task]] = {}
    for t in tasks:
        by_staff.setdefault(t.staff_id, []).append(t)  # type: ignore[arg-type]
    for staff_id, own in list(by_staff.items())[:8]:
        for i, task in enumerate(own[:12]):
            assignment = session.get(Assignment, task.assignment_id) if task.assignment_id else None
            if assignment is not None and i % 2 == 0:
                goal, reaction, response = PLANS[i % len(PLANS)]
                services.set_plan(session, assignment, goal, [{"reaction": reaction, "response": response}])
            # spread due dates so the queue has overdue, today and upcoming cards
            task.due_on = today + dt.timedelta(days=(i % 5) - 1)
            if i in (0, 1, 2):
                reaction, content = CONTENTS[(i + staff_id) % len(CONTENTS)]
                data = services.FollowUpInput(
                    channel=rng.choice(["phone", "visit", "wechat"]),
                    content=content,
                    reaction=reaction,
                    next_step="回访" if reaction in ("interested", "neutral") else None,
                    next_due=today + dt.timedelta(days=3) if reaction in ("interested", "neutral") else None,
                    failure_reason="已在他行" if reaction == "declined" else None,
                )
                _try(
                    session,
                    lambda task=task, data=data, sid=staff_id: services.complete(session, task, sid, data),
                )
            elif i == 3:
                _try(
                    session,
                    lambda task=task, sid=staff_id: services.fail(
                        session, task, sid, rng.choice(FAIL_REASONS)
                    ),
                )
            elif i == 4:
                _try(
                    session,
                    lambda task=task, sid=staff_id: services.snooze(
                        session, task, sid, today + dt.timedelta(days=2)
                    ),
                )
        session.flush()
        # claims: one verified, one submitted, one rejected
        done = [t for t in own[:3] if t.state == TaskState.done and t.customer_id]
        for j, task in enumerate(done):
            claim = _try(
                session,
                lambda task=task, j=j, sid=staff_id: claims.submit(
                    session,
                    sid,
                    measure="accounts_opened",
                    quantity="1",
                    amount=str(10000 * (j + 1)),
                    campaign_id=None,
                    customer_id=task.customer_id,
                    task_id=task.id,
                    evidence_text=f"存单号 DEMO-{task.id:06d}",
                ),
            )
            if claim is None or checker is None or checker.id == staff_id:
                continue
            if j == 0:
                _try(session, lambda claim=claim: claims.verify(session, claim, checker.id))
            elif j == 2:
                _try(
                    session,
                    lambda claim=claim: claims.reject(session, claim, checker.id, "核心系统中未找到该账户"),
                )
    # an appointment of a key customer: the director accompanies
    key = session.scalars(
        select(Customer)
        .where(
            Customer.is_key.is_(True), Customer.manager_id.is_not(None), Customer.do_not_contact.is_(False)
        )
        .limit(1)
    ).first()
    if key is not None and key.manager_id is not None:
        at = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(10, 0))
        _try(
            session, lambda: services.book_appointment(session, key.manager_id, key, at, "到网点办理大额定期")
        )  # type: ignore[arg-type]
    jobs.due_soon_reminders(session, today)
    jobs.overdue_escalation(session, today)
    session.flush()
