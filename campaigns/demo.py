"""Demo campaigns in several states, with their assignments and first tasks (deterministic)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from campaigns import assignment
from campaigns.models import Campaign, Target
from config import clock
from tasks.models import Task
from workflow.engine import fire

RULES_DEPOSIT = [
    {"id": "dep", "kind": "percentage", "measure": "new_deposits", "rate": "0.002", "cap": "5000"},
    {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"},
    {
        "id": "bonus",
        "kind": "attainment_bonus",
        "measure": "new_deposits",
        "thresholds": [{"at": "1.0", "amount": "500"}, {"at": "1.2", "amount": "800"}],
    },
    {"id": "late", "kind": "penalty", "measure": "tasks_overdue", "rate": "20"},
]


def _campaign(session: Session, ctx: Any, **kw: Any) -> Campaign:
    branches = [ctx.branches[c] for c in kw.pop("branch_codes")]
    targets = kw.pop("targets", [])
    c = Campaign(owner_id=kw.pop("owner").id, branches=branches, **kw)
    session.add(c)
    session.flush()
    for measure, branch_code, value in targets:
        c.targets.append(
            Target(
                measure=measure,
                branch_id=ctx.branches[branch_code].id,
                value=Decimal(value),
                split="by_headcount",
            )
        )
    session.flush()
    return c


def _launch(session: Session, c: Campaign, actor_id: int) -> None:
    """Launch as a director would, but generate assignments in this transaction (no job)."""
    fire(session, c, "launch", actor_id=actor_id)
    if c.start_date <= clock.today():
        fire(session, c, "start", actor_id=actor_id, reason="launched on or after its start date")
    assignment.generate(session, c)


def seed(session: Session, ctx: Any) -> None:
    today = clock.today()
    boss, wang = ctx.staff["S0001"], ctx.staff["S1100"]
    day = dt.timedelta(days=1)

    dep = _campaign(
        session,
        ctx,
        code="DEP-2027-01",
        name="2027 开门红存款营销",
        kind="deposit_drive",
        owner=wang,
        branch_codes=["B01"],
        start_date=today - 45 * day,
        end_date=today + 100 * day,
        population={"customers": {"tags_any": ["returning_migrant_worker", "self_employed"]}},
        task_templates=[{"kind": "contact", "within_days": 7}, {"kind": "follow_up", "every_days": 14}],
        rules=RULES_DEPOSIT,
        budget=Decimal("200000"),
        targets=[("new_deposits", "B01", "8000000"), ("accounts_opened", "B01", "300")],
    )
    _launch(session, dep, wang.id)

    pay = _campaign(
        session,
        ctx,
        code="PAY-2026-11",
        name="县医院及学校代发工资",
        kind="payroll_accounts",
        owner=boss,
        branch_codes=["B01", "B02", "B03", "B04", "B05"],
        start_date=today - 10 * day,
        end_date=today + 50 * day,
        population={"customers": {"type_in": ["institution"]}},
        task_templates=[{"kind": "contact_finance_office", "within_days": 5}],
        rules=[
            {"id": "pay", "kind": "piece_rate", "measure": "payroll_accounts", "rate": "10"},
            {"id": "agr", "kind": "piece_rate", "measure": "agreements_signed", "rate": "300"},
        ],
        targets=[("agreements_signed", "B01", "2")],
    )
    _launch(session, pay, boss.id)

    online = _campaign(
        session,
        ctx,
        code="DIG-2026-10",
        name="手机银行线上线下激活",
        kind="online_offline",
        owner=boss,
        branch_codes=["B02", "B03"],
        start_date=today - 40 * day,
        end_date=today + 20 * day,
        population={"customers": {"no_holding": "mobile_banking", "age_max": 60}},
        rules=[{"id": "act", "kind": "piece_rate", "measure": "digital_activations", "rate": "5"}],
        targets=[("digital_activations", "B02", "400"), ("digital_activations", "B03", "300")],
    )
    _launch(session, online, boss.id)
    fire(session, online, "pause", actor_id=boss.id, reason="春耕农忙，暂停两周")

    canvass = _campaign(
        session,
        ctx,
        code="CAN-2026-12",
        name="城关扫街扫楼周 G03–G06",
        kind="street_canvassing",
        owner=wang,
        branch_codes=["B01"],
        start_date=today + 5 * day,
        end_date=today + 12 * day,
        population={"customers": {"grid_in": ["G03", "G04", "G05", "G06"]}},
        rules=[{"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "30"}],
        targets=[("accounts_opened", "B01", "60")],
    )
    _launch(session, canvass, wang.id)  # scheduled: assignments made, tasks wait for the start

    q3 = _campaign(
        session,
        ctx,
        code="DEP-2026-Q3",
        name="2026 三季度存款冲刺",
        kind="deposit_drive",
        owner=boss,
        branch_codes=["B02"],
        start_date=today - 120 * day,
        end_date=today,
        population={"customers": {"tier_in": ["vip", "high"]}},
        rules=RULES_DEPOSIT[:2],
        targets=[("new_deposits", "B02", "3000000")],
    )
    _launch(session, q3, boss.id)
    q3.end_date = today - 30 * day  # it ran last quarter; the scheduler closed it at its end
    fire(session, q3, "close", actor_id=None, reason="end date passed")
    session.execute(
        update(Task).where(Task.campaign_id == q3.id, Task.state == "open").values(state="expired")
    )

    _campaign(
        session,
        ctx,
        code="RET-2027-01",
        name="流失预警客户维护",
        kind="retention",
        owner=wang,
        branch_codes=["B01"],
        start_date=today + 3 * day,
        end_date=today + 60 * day,
        population={"customers": {"is_key": True}},
        rules=[],
        targets=[("new_deposits", "B01", "1000000")],
    )
    cancelled = _campaign(
        session,
        ctx,
        code="CAN-2026-09",
        name="九月商圈推广",
        kind="street_canvassing",
        owner=wang,
        branch_codes=["B01"],
        start_date=today + 1 * day,
        end_date=today + 8 * day,
        population={"customers": {"grid_in": ["G01"]}},
        rules_none=True,
        targets=[("accounts_opened", "B01", "20")],
    )
    fire(session, cancelled, "cancel", actor_id=wang.id, reason="与县里集中活动时间冲突")

    # spread the open tasks over the past and coming days: some overdue, some today, most upcoming
    offset = (Task.id % 9) - 2  # -2 … 6 days from today
    session.execute(
        update(Task)
        .where(Task.state == "open", Task.campaign_id.in_([dep.id, pay.id, online.id]))
        .values(due_on=case(*[(offset == k, today + k * day) for k in range(-2, 7)], else_=today))
    )
    n = session.scalar(select(func.count()).select_from(Task))
    ctx.extra["campaigns"] = {"DEP-2027-01": dep.id, "PAY-2026-11": pay.id, "tasks": n}
