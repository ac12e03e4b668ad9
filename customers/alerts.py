"""Customer change alerts (PRODUCT.md §4.4; seed: 关注客户变化 — 资产规模变化、资金稳定状态、风险状态).

:func:`detect` looks at the snapshots of one period (a month, ``"2026-11"``) and inserts, set-based
(``INSERT … SELECT … ON CONFLICT DO NOTHING``), one row into ``alert`` per customer, type and
period:

* ``asset_drop``: total assets (deposits + wealth) of the newest snapshot in the period are down
  more than :data:`DROP_PCT` (from at least :data:`DROP_MIN_BALANCE`) or more than
  :data:`DROP_AMOUNT` CNY against the newest snapshot before the period;
* ``unstable_funds``: the coefficient of variation (standard deviation / mean) of total assets
  over the last :data:`CV_SNAPSHOTS` snapshots is above :data:`CV_THRESHOLD`;
* ``risk_change``: the risk status (overdue loan, frozen account …) changed to a non-normal one.

Then every alert of the period without its task gets ONE retention task for the relationship
manager (``source='alert'``, ``source_key='alert:<id>'``, due in :data:`TASK_DUE_DAYS` days).
Re-running (re-importing the same snapshots) creates nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime, Numeric, TextClause, bindparam, text
from sqlalchemy.orm import Session

from config import clock
from config.database import now_local

#: Asset drop: more than this share of the previous total …
DROP_PCT = Decimal("0.30")
#: … (the share rule applies from this previous total on) …
DROP_MIN_BALANCE = Decimal("10000")
#: … or more than this many CNY.
DROP_AMOUNT = Decimal("200000")
#: Unstable funds: coefficient of variation above this …
CV_THRESHOLD = Decimal("0.5")
#: … over this many newest snapshots (all of them needed) …
CV_SNAPSHOTS = 6
#: … for customers whose average total is at least this.
CV_MIN_BALANCE = Decimal("10000")
#: Retention tasks are due this many days after detection.
TASK_DUE_DAYS = 3

DEFAULT_THRESHOLDS: dict[str, Any] = {
    "drop_pct": DROP_PCT,
    "drop_min_balance": DROP_MIN_BALANCE,
    "drop_amount": DROP_AMOUNT,
    "cv_threshold": CV_THRESHOLD,
    "cv_snapshots": CV_SNAPSHOTS,
    "cv_min_balance": CV_MIN_BALANCE,
    "task_due_days": TASK_DUE_DAYS,
}

ALERT_TYPES = ("asset_drop", "unstable_funds", "risk_change")

#: Task titles per alert type (English msgids; the queue translates them by ``detail.alert_type``).
TASK_TITLES = {
    "asset_drop": "Retention: assets dropped",
    "unstable_funds": "Retention: unstable funds",
    "risk_change": "Retention: risk status changed",
}


def thresholds_from_settings(env: Mapping[str, str] | None) -> dict[str, Any]:
    """Thresholds overridden by ``CAMPAIGNFLOW_ALERT_DROP_PCT``, ``…_DROP_AMOUNT``, ``…_CV_THRESHOLD`` …

    ``env`` is the process environment (or any mapping); a bad value raises ``ValueError`` naming
    the variable.
    """
    out = dict(DEFAULT_THRESHOLDS)
    for key, default in DEFAULT_THRESHOLDS.items():
        name = f"CAMPAIGNFLOW_ALERT_{key.upper()}"
        raw = (env or {}).get(name)
        if raw is None or not str(raw).strip():
            continue
        try:
            value: Any = int(raw) if isinstance(default, int) else Decimal(str(raw).strip())
        except (ValueError, ArithmeticError):
            raise ValueError(f"{name}={raw!r} is not a number") from None
        if value < 0 or (isinstance(value, Decimal) and not value.is_finite()):
            raise ValueError(f"{name}={raw!r} must be a non-negative number")
        out[key] = value
    return out


def period_of(day: dt.date) -> str:
    """``date(2026, 11, 30)`` → ``"2026-11"``."""
    return f"{day.year:04d}-{day.month:02d}"


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """First day of the period and first day of the next one; raises ValueError for a bad period."""
    try:
        year, month = (int(p) for p in period.split("-"))
        start = dt.date(year, month, 1)
    except (ValueError, TypeError):
        raise ValueError(f"period {period!r} is not YYYY-MM") from None
    end = dt.date(year + (month == 12), 1 if month == 12 else month + 1, 1)
    return start, end


def detect(
    session: Session,
    period: str,
    thresholds: Mapping[str, Any] | None = None,
    today: dt.date | None = None,
) -> dict[str, int]:
    """Insert the period's new alerts and their retention tasks; returns counts per alert type and tasks."""
    t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    start, end = period_bounds(period)
    dialect = session.get_bind().dialect.name
    json_fn = "json_build_object" if dialect == "postgresql" else "json_object"
    params: dict[str, Any] = {
        "period": period,
        "p_start": start,
        "p_end": end,
        # the previous period's snapshot is looked for in the three months before
        "prev_from": start - dt.timedelta(days=92),
        "cv_from": start - dt.timedelta(days=31 * (int(t["cv_snapshots"]) + 1)),
        "drop_pct": Decimal(str(t["drop_pct"])),
        "drop_min": Decimal(str(t["drop_min_balance"])),
        "drop_amount": Decimal(str(t["drop_amount"])),
        "cv2": Decimal(str(t["cv_threshold"])) ** 2,
        "cv_n": int(t["cv_snapshots"]),
        "cv_min": Decimal(str(t["cv_min_balance"])),
        "now": now_local(),
    }
    session.flush()
    counts: dict[str, int] = {}
    for kind, sql in (
        ("asset_drop", _CTES + _ASSET_DROP),
        ("unstable_funds", _UNSTABLE),
        ("risk_change", _CTES + _RISK_CHANGE),
    ):
        result = session.execute(_statement(_INSERT_ALERT + sql.replace("{json}", json_fn)), params)
        counts[kind] = max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    due = (today or clock.today()) + dt.timedelta(days=int(t["task_due_days"]))
    counts["tasks"] = open_retention_tasks(session, period, due)
    session.expire_all()
    return counts


def open_retention_tasks(session: Session, period: str, due_on: dt.date) -> int:
    """One retention task per alert of ``period`` that has none yet; returns how many were opened."""
    dialect = session.get_bind().dialect.name
    json_fn = "json_build_object" if dialect == "postgresql" else "json_object"
    title = (
        "CASE a.type "
        + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in TASK_TITLES.items())
        + " ELSE 'Retention' END"
    )
    sql = _TASKS.replace("{title}", title).replace("{json}", json_fn)
    result = session.execute(
        text(sql).bindparams(bindparam("due", type_=Date()), bindparam("now", type_=DateTime())),
        {"period": period, "due": due_on, "now": now_local()},
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def _statement(sql: str) -> TextClause:
    types: dict[str, Any] = {
        n: Numeric(20, 6) for n in ("drop_pct", "drop_min", "drop_amount", "cv2", "cv_min")
    }
    types.update({n: Date() for n in ("p_start", "p_end", "prev_from", "cv_from")})
    types["now"] = DateTime()
    return text(sql).bindparams(*(bindparam(n, type_=t) for n, t in types.items() if f":{n}" in sql))


# (INSERT first, WITH after it: drivers report the row count of statements that start with INSERT)
_INSERT_ALERT = "INSERT INTO alert (customer_id, type, period, detail, created_at)"

# Per customer, one row: the newest snapshot in the period (cur_*) and the newest before it
# (prev_*). One pass over the snapshots and no join between derived tables, so the plan stays
# linear even before the planner has statistics (a fresh import in the same transaction).
_CTES = """
WITH ranked AS (
  SELECT s.customer_id, s.deposit_demand + s.deposit_time + s.wealth AS total,
         COALESCE(s.risk_status, 'normal') AS risk,
         CASE WHEN s.as_of >= :p_start THEN 1 ELSE 0 END AS in_period,
         ROW_NUMBER() OVER (PARTITION BY s.customer_id, CASE WHEN s.as_of >= :p_start THEN 1 ELSE 0 END
                            ORDER BY s.as_of DESC) AS rn
  FROM snapshot s WHERE s.as_of >= :prev_from AND s.as_of < :p_end
), pair AS (
  SELECT customer_id,
         MAX(CASE WHEN in_period = 1 THEN total END) AS cur_total,
         MAX(CASE WHEN in_period = 0 THEN total END) AS prev_total,
         MAX(CASE WHEN in_period = 1 THEN risk END) AS cur_risk,
         MAX(CASE WHEN in_period = 0 THEN risk END) AS prev_risk
  FROM ranked WHERE rn = 1 GROUP BY customer_id
)
"""

_ASSET_DROP = """
SELECT p.customer_id, 'asset_drop', :period,
       {json}('previous', p.prev_total, 'current', p.cur_total, 'drop', p.prev_total - p.cur_total), :now
FROM pair p
WHERE p.cur_total IS NOT NULL AND p.prev_total > p.cur_total
  AND (p.prev_total - p.cur_total > :drop_amount
       OR (p.prev_total >= :drop_min AND p.prev_total - p.cur_total > :drop_pct * p.prev_total))
  AND NOT EXISTS (SELECT 1 FROM alert a
                  WHERE a.customer_id = p.customer_id AND a.type = 'asset_drop' AND a.period = :period)
ON CONFLICT DO NOTHING
"""

_UNSTABLE = """
WITH last_n AS (
  SELECT customer_id, total, in_period FROM (
    SELECT s.customer_id, s.deposit_demand + s.deposit_time + s.wealth AS total,
           CASE WHEN s.as_of >= :p_start THEN 1 ELSE 0 END AS in_period,
           ROW_NUMBER() OVER (PARTITION BY s.customer_id ORDER BY s.as_of DESC) AS rn
    FROM snapshot s WHERE s.as_of >= :cv_from AND s.as_of < :p_end
  ) x WHERE rn <= :cv_n
), stats AS (
  SELECT customer_id, AVG(total) AS mean, AVG(total * total) AS mean_sq, COUNT(*) AS k
  FROM last_n GROUP BY customer_id HAVING MAX(in_period) = 1
)
SELECT st.customer_id, 'unstable_funds', :period,
       {json}('mean', st.mean, 'snapshots', st.k), :now
FROM stats st
WHERE st.k >= :cv_n AND st.mean >= :cv_min
  AND st.mean_sq - st.mean * st.mean > :cv2 * st.mean * st.mean
  AND NOT EXISTS (SELECT 1 FROM alert a
                  WHERE a.customer_id = st.customer_id AND a.type = 'unstable_funds' AND a.period = :period)
ON CONFLICT DO NOTHING
"""

_RISK_CHANGE = """
SELECT p.customer_id, 'risk_change', :period,
       {json}('previous', COALESCE(p.prev_risk, 'normal'), 'current', p.cur_risk), :now
FROM pair p
WHERE p.cur_risk IS NOT NULL AND p.cur_risk <> 'normal' AND p.cur_risk <> COALESCE(p.prev_risk, 'normal')
  AND NOT EXISTS (SELECT 1 FROM alert a
                  WHERE a.customer_id = p.customer_id AND a.type = 'risk_change' AND a.period = :period)
ON CONFLICT DO NOTHING
"""

_TASKS = """
INSERT INTO task (kind, title, customer_id, branch_id, staff_id, due_on, priority, state, source, source_key,
                  detail, created_at, version)
SELECT 'retention', {title}, a.customer_id, c.branch_id, c.manager_id, :due, 1, 'open', 'alert',
       'alert:' || CAST(a.id AS VARCHAR(20)), {json}('alert_id', a.id, 'alert_type', a.type, 'period', a.period),
       :now, 1
FROM alert a JOIN customer c ON c.id = a.customer_id
WHERE a.period = :period
  AND NOT EXISTS (SELECT 1 FROM task t WHERE t.source_key = 'alert:' || CAST(a.id AS VARCHAR(20)))
ON CONFLICT DO NOTHING
"""
