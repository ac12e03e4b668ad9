"""Contribution, key customers and tiers (PRODUCT.md §4.3; seed: 找出获利能力最高的20%的目标客户).

Contribution over the last 12 months = average demand deposit × its spread + average time
deposit × its spread + average loan × the loan spread + average wealth × its spread (spreads are
configurable per product). Customers are ranked by contribution (ties by id); key customers
(重点客户) are either the smallest set making up ``key_share`` of the total contribution
(``mode='value'``, the 80/20 rule) or the top ``key_share`` … of customers by count
(``mode='count'``, e.g. ``Decimal('0.2')``). Tiers come from rank cut-offs (share of customers).

Everything is one set-based ``UPDATE customer … FROM (window functions)`` statement, on SQLite
(≥ 3.33) and PostgreSQL alike: no row is loaded into Python.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Numeric, TextClause, bindparam, func, select, text
from sqlalchemy.orm import Session

from config import clock
from customers.models import Customer, Snapshot

#: Yearly spread earned per CNY of average balance, per product column of a snapshot.
DEFAULT_SPREADS: dict[str, Decimal] = {
    "deposit_demand": Decimal("0.0150"),
    "deposit_time": Decimal("0.0080"),
    "loan": Decimal("0.0250"),
    "wealth": Decimal("0.0040"),
}

#: Tier cut-offs as shares of customers by rank: the top 5 % are vip, the next up to 20 % high.
DEFAULT_TIER_CUTOFFS: dict[str, Decimal] = {"vip": Decimal("0.05"), "high": Decimal("0.20")}

#: How many months of snapshots count (the last 12 months, ending at the newest snapshot).
WINDOW_MONTHS = 12


def window_start(as_of: dt.date, months: int = WINDOW_MONTHS) -> dt.date:
    """The exclusive start of the window ending at ``as_of``: the same day ``months`` months earlier."""
    year, month = divmod(as_of.year * 12 + as_of.month - 1 - months, 12)
    month += 1
    last_day = [
        31,
        29 if (year % 4 == 0 and (year % 100 or year % 400 == 0)) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]
    return dt.date(year, month, min(as_of.day, last_day[month - 1]))


def recompute(
    session: Session,
    as_of: dt.date | None = None,
    spreads: Mapping[str, Decimal] | None = None,
    key_share: Decimal = Decimal("0.8"),
    mode: str = "value",
    tier_cutoffs: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """Recompute every customer's contribution, rank, key flag and tier; returns a summary.

    ``as_of``: the end of the 12-month window (default: the newest snapshot). Customers without
    snapshots in the window get contribution 0 and rank after everyone else. Flushes nothing of
    its own: the caller commits.
    """
    if mode not in ("value", "count"):
        raise ValueError("mode must be 'value' or 'count'")
    key_share = Decimal(str(key_share))
    if not Decimal("0") < key_share <= Decimal("1"):
        raise ValueError("key_share must be in (0, 1]")
    spreads = {**DEFAULT_SPREADS, **{k: Decimal(str(v)) for k, v in (spreads or {}).items()}}
    unknown = set(spreads) - set(DEFAULT_SPREADS)
    if unknown:
        raise ValueError(f"unknown spread columns: {', '.join(sorted(unknown))}")
    cutoffs = {**DEFAULT_TIER_CUTOFFS, **{k: Decimal(str(v)) for k, v in (tier_cutoffs or {}).items()}}
    if not Decimal("0") <= cutoffs["vip"] <= cutoffs["high"] <= Decimal("1"):
        raise ValueError("tier cut-offs must satisfy 0 ≤ vip ≤ high ≤ 1")
    if as_of is None:
        as_of = session.scalar(select(func.max(Snapshot.as_of)))
        if as_of is None:
            as_of = clock.today()
    n = session.scalar(select(func.count()).select_from(Customer)) or 0
    params: dict[str, Any] = {
        "start": window_start(as_of),
        "end": as_of,
        "s_dd": spreads["deposit_demand"],
        "s_dt": spreads["deposit_time"],
        "s_loan": spreads["loan"],
        "s_wealth": spreads["wealth"],
        "key_share": key_share,
        "n_key": math.ceil(n * key_share),
        "n_vip": math.ceil(n * cutoffs["vip"]),
        "n_high": math.ceil(n * cutoffs["high"]),
    }
    session.flush()
    session.execute(recompute_statement(mode, session.get_bind().dialect.name), params)
    total, keys = session.execute(
        select(
            func.coalesce(func.sum(Customer.contribution), 0), func.count().filter(Customer.is_key.is_(True))
        )
    ).one()
    session.expire_all()
    return {
        "as_of": as_of,
        "customers": n,
        "total": Decimal(str(total)).quantize(Decimal("0.01")),
        "key_customers": int(keys),
    }


_MONEY_PARAMS = ("s_dd", "s_dt", "s_loan", "s_wealth", "key_share")


def recompute_statement(mode: str = "value", dialect: str = "postgresql") -> TextClause:
    """:func:`recompute_sql` with typed parameters (Decimals bind on SQLite and PostgreSQL)."""
    sql = recompute_sql(mode, dialect)
    return text(sql).bindparams(
        *(bindparam(name, type_=Numeric(12, 6)) for name in _MONEY_PARAMS if f":{name}" in sql),
        bindparam("start", type_=Date()),
        bindparam("end", type_=Date()),
    )


def recompute_sql(mode: str = "value", dialect: str = "postgresql") -> str:
    """The one UPDATE statement. Bound parameters: start, end (the window), s_dd, s_dt, s_loan,
    s_wealth (spreads), key_share, n_key (key customers by count), n_vip, n_high (rank cut-offs).

    Rows whose four values do not change are not written (a re-run touches nothing)."""
    if mode == "value":
        # the smallest set reaching key_share of the total: rows whose preceding sum is still below it
        key = "(w.total > 0 AND w.contrib > 0 AND w.cum - w.contrib < :key_share * w.total)"
    else:
        key = "(w.contrib > 0 AND w.rn <= :n_key)"
    differs = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    return _RECOMPUTE_SQL.replace("{key}", key).replace("{differs}", differs)


_RECOMPUTE_SQL = """
UPDATE customer SET
  contribution = r.contrib,
  contribution_rank = r.rn,
  is_key = r.is_key,
  tier = r.tier
FROM (
  SELECT w.id, w.contrib, w.rn, {key} AS is_key,
         CASE WHEN w.contrib > 0 AND w.rn <= :n_vip THEN 'vip'
              WHEN w.contrib > 0 AND w.rn <= :n_high THEN 'high'
              ELSE 'mass' END AS tier
  FROM (
    SELECT v.id, v.contrib,
           ROW_NUMBER() OVER (ORDER BY v.contrib DESC, v.id) AS rn,
           SUM(v.contrib) OVER (ORDER BY v.contrib DESC, v.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
           SUM(v.contrib) OVER () AS total
    FROM (
      SELECT c.id,
             ROUND(COALESCE(a.dd, 0) * :s_dd + COALESCE(a.dt, 0) * :s_dt
                   + COALESCE(a.ln, 0) * :s_loan + COALESCE(a.wl, 0) * :s_wealth, 2) AS contrib
      FROM customer c
      LEFT JOIN (
        SELECT s.customer_id, AVG(s.deposit_demand) AS dd, AVG(s.deposit_time) AS dt,
               AVG(s.loan) AS ln, AVG(s.wealth) AS wl
        FROM snapshot s
        WHERE s.as_of > :start AND s.as_of <= :end
        GROUP BY s.customer_id
      ) a ON a.customer_id = c.id
    ) v
  ) w
) r
WHERE customer.id = r.id
  AND (customer.contribution {differs} r.contrib OR customer.contribution_rank {differs} r.rn
       OR customer.is_key {differs} r.is_key OR customer.tier {differs} r.tier)
"""


def pareto_points(contributions: list[Decimal], points: int = 20) -> list[tuple[Decimal, Decimal]]:
    """(share of customers, cumulative share of contribution) in percent, for a Pareto chart.

    ``contributions`` in descending order; returns at most ``points`` + 1 points including (0, 0).
    """
    n = len(contributions)
    total = sum(contributions, Decimal("0"))
    out = [(Decimal("0"), Decimal("0"))]
    if n == 0 or total <= 0:
        return out
    step = max(1, math.ceil(n / points))
    running = Decimal("0")
    for i, value in enumerate(contributions, start=1):
        running += value
        if i % step == 0 or i == n:
            out.append(
                (
                    (Decimal(i) * 100 / n).quantize(Decimal("0.1")),
                    (running * 100 / total).quantize(Decimal("0.1")),
                )
            )
    return out
