"""Customer change alerts (PRODUCT.md §4.4): asset drop, unstable funds, risk change; one task each."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, insert, select

from customers import alerts
from customers.models import Alert, Snapshot
from tasks.models import Task
from tests.factories import make_customer

MONTHS = [dt.date(2026, m + 1, 1) - dt.timedelta(days=1) for m in range(4, 11)]  # 2026-04-30 … 2026-10-31
PERIOD = "2026-10"
TODAY = dt.date(2026, 11, 2)


def _snapshots(session, customer, totals, risks=None):
    rows = []
    for i, (day, total) in enumerate(zip(MONTHS[-len(totals) :], totals, strict=True)):
        rows.append(
            {
                "customer_id": customer.id,
                "as_of": day,
                "deposit_demand": Decimal(total),
                "risk_status": (risks or {}).get(i),
            }
        )
    session.execute(insert(Snapshot), rows)


def _alerts(session):
    return {(a.customer.name, a.type) for a in session.scalars(select(Alert))}


def test_each_kind_is_detected_once_with_one_retention_task(session, union):
    steady = make_customer(session, union.b1, union.m1, name="平稳")
    dropper = make_customer(session, union.b1, union.m1, name="下降")
    big_drop = make_customer(session, union.b2, union.m3, name="大额")
    jumpy = make_customer(session, union.b1, union.m2, name="波动")
    risky = make_customer(session, union.b1, None, name="逾期")
    small = make_customer(session, union.b1, union.m1, name="小额")
    _snapshots(session, steady, [100_000] * 7)
    _snapshots(session, dropper, [100_000] * 6 + [60_000])  # −40 %
    _snapshots(session, big_drop, [5_000_000] * 6 + [4_700_000])  # −6 % but −300 000 CNY
    _snapshots(session, jumpy, [10_000, 200_000, 15_000, 250_000, 12_000, 180_000, 180_000])
    _snapshots(session, risky, [50_000] * 7, risks={6: "overdue"})
    _snapshots(session, small, [5_000] * 6 + [1_000])  # −80 % but below the minimum balance
    session.commit()

    counts = alerts.detect(session, PERIOD, today=TODAY)
    session.commit()
    assert _alerts(session) == {
        ("下降", "asset_drop"),
        ("大额", "asset_drop"),
        ("波动", "unstable_funds"),
        ("逾期", "risk_change"),
    }
    assert counts == {"asset_drop": 2, "unstable_funds": 1, "risk_change": 1, "tasks": 4}

    tasks = list(session.scalars(select(Task).order_by(Task.id)))
    assert len(tasks) == 4
    by_customer = {t.customer_id: t for t in tasks}
    assert by_customer[dropper.id].staff_id == union.m1.id
    assert (
        by_customer[big_drop.id].staff_id == union.m3.id and by_customer[big_drop.id].branch_id == union.b2.id
    )
    assert by_customer[risky.id].staff_id is None  # no manager: the branch pool
    for t in tasks:
        assert t.kind == "retention" and t.source == "alert" and t.state == "open"
        assert t.due_on == TODAY + dt.timedelta(days=3)
        alert = session.scalar(select(Alert).where(Alert.customer_id == t.customer_id))
        assert t.source_key == f"alert:{alert.id}"
    drop = session.scalar(select(Alert).where(Alert.customer_id == dropper.id))
    assert Decimal(str(drop.detail["drop"])) == Decimal("40000")

    # a re-import of the same snapshots, and a second run, create nothing twice
    again = alerts.detect(session, PERIOD, today=TODAY)
    session.commit()
    assert again == {"asset_drop": 0, "unstable_funds": 0, "risk_change": 0, "tasks": 0}
    assert session.scalar(select(func.count()).select_from(Alert)) == 4
    assert session.scalar(select(func.count()).select_from(Task)) == 4


def test_a_new_drop_in_the_next_period_is_a_new_alert(session, union):
    c = make_customer(session, union.b1, union.m1)
    _snapshots(session, c, [100_000] * 6 + [50_000])
    session.commit()
    alerts.detect(session, PERIOD, today=TODAY)
    session.execute(
        insert(Snapshot),
        [{"customer_id": c.id, "as_of": dt.date(2026, 11, 30), "deposit_demand": Decimal(20_000)}],
    )
    session.commit()
    alerts.detect(session, "2026-11", today=TODAY)
    session.commit()
    assert sorted(a.period for a in session.scalars(select(Alert))) == ["2026-10", "2026-11"]
    assert session.scalar(select(func.count()).select_from(Task)) == 2


def test_thresholds_are_configurable(session, union):
    c = make_customer(session, union.b1, union.m1)
    _snapshots(session, c, [100_000] * 6 + [85_000])  # −15 %
    session.commit()
    assert alerts.detect(session, PERIOD, today=TODAY)["asset_drop"] == 0
    assert alerts.detect(session, PERIOD, {"drop_pct": Decimal("0.1")}, today=TODAY)["asset_drop"] == 1
    session.commit()
    t = alerts.thresholds_from_settings(
        {"CAMPAIGNFLOW_ALERT_DROP_PCT": "0.2", "CAMPAIGNFLOW_ALERT_CV_SNAPSHOTS": "4"}
    )
    assert t["drop_pct"] == Decimal("0.2") and t["cv_snapshots"] == 4
    import pytest

    with pytest.raises(ValueError, match="CAMPAIGNFLOW_ALERT_DROP_AMOUNT"):
        alerts.thresholds_from_settings({"CAMPAIGNFLOW_ALERT_DROP_AMOUNT": "lots"})


def test_bad_period_is_refused():
    import pytest

    with pytest.raises(ValueError, match="YYYY-MM"):
        alerts.period_bounds("2026-13")
    assert alerts.period_bounds("2026-12") == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))


def test_after_snapshot_import_job_recomputes_and_detects(session, union):
    from customers.jobs import after_snapshot_import
    from customers.models import Customer

    c = make_customer(session, union.b1, union.m1)
    other = make_customer(session, union.b1, union.m1)
    _snapshots(session, c, [100_000] * 6 + [40_000])
    _snapshots(session, other, [10_000] * 7)
    session.commit()
    result = after_snapshot_import.delay("2026-10-31").get()
    assert result["asset_drop"] == 1 and result["tasks"] == 1 and result["key_customers"] >= 1
    session.expire_all()
    assert session.get(Customer, c.id).contribution_rank == 1
    assert after_snapshot_import.delay().get()["tasks"] == 0  # idempotent
