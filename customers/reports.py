"""The needs report per segment (seed: 分析客户需求 — 存款工具的选择、存款期限、存款回报的期盼).

For one segment dimension (age band, occupation, gender, urban/rural) and one need (preferred
product, term, return expectation, risk appetite) it counts the caller's customers per pair, in
one GROUP BY over the customer table (scoped, set-based).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from config import clock
from customers.models import Customer
from customers.queries import AGE_BANDS, CustomerFilter, _years_before, scope_clause
from org.scope import Scope

DIMENSIONS = ("age_band", "occupation", "gender", "area")
NEEDS = ("preferred_product", "term", "return_expectation", "risk_appetite")

#: Values of each need, in display order (others found in data are appended).
NEED_VALUES: dict[str, tuple[str, ...]] = {
    "preferred_product": ("demand_deposit", "time_deposit", "large_cd", "wealth", "treasury_bond"),
    "term": ("none", "3m", "6m", "1y", "3y", "5y"),
    "return_expectation": ("low", "medium", "high"),
    "risk_appetite": ("conservative", "balanced", "aggressive"),
}

UNKNOWN = "unknown"


@dataclass
class NeedsReport:
    dimension: str
    need: str
    segments: list[str]
    values: list[str]
    counts: dict[tuple[str, str], int]

    def row_total(self, segment: str) -> int:
        return sum(self.counts.get((segment, v), 0) for v in self.values)

    def share(self, segment: str, value: str) -> int:
        """Whole percent of the segment's customers with this need value."""
        total = self.row_total(segment)
        return round(100 * self.counts.get((segment, value), 0) / total) if total else 0

    def chart(self) -> dict[str, Any]:
        """A Chart.js stacked bar spec: one bar per segment, one stack part per need value."""
        palette = ("#198754", "#0d6efd", "#ffc107", "#dc3545", "#6f42c1", "#20c997", "#6c757d")
        return {
            "type": "bar",
            "data": {
                "labels": self.segments,
                "datasets": [
                    {
                        "label": v,
                        "data": [self.share(s, v) for s in self.segments],
                        "backgroundColor": palette[i % len(palette)],
                    }
                    for i, v in enumerate(self.values)
                ],
            },
            "options": {
                "responsive": True,
                "scales": {"x": {"stacked": True}, "y": {"stacked": True, "max": 100}},
            },
        }


def _dimension_expr(dimension: str, today: dt.date) -> Any:
    if dimension == "age_band":
        whens = []
        for key, low, high in AGE_BANDS:
            latest = _years_before(today, low)
            cond = Customer.birth_date <= latest
            if high is not None:
                cond = cond & (Customer.birth_date > _years_before(today, high + 1))
            whens.append((cond, literal(key)))
        return case(*whens, else_=literal(UNKNOWN))
    column = {"occupation": Customer.occupation, "gender": Customer.gender, "area": Customer.area}[dimension]
    return func.coalesce(column, literal(UNKNOWN))


def needs_report(
    session: Session,
    scope: Scope,
    dimension: str = "age_band",
    need: str = "preferred_product",
    flt: CustomerFilter | None = None,
    today: dt.date | None = None,
) -> NeedsReport:
    """Counts of the caller's individual customers per (segment value, need value)."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}")
    if need not in NEEDS:
        raise ValueError(f"need must be one of {', '.join(NEEDS)}")
    today = today or clock.today()
    seg = _dimension_expr(dimension, today).label("seg")
    val = func.coalesce(Customer.needs[need].as_string(), literal(UNKNOWN)).label("val")
    stmt = select(seg, val, func.count()).where(scope_clause(scope), Customer.type == "individual")
    if flt is not None:
        stmt = flt.apply(stmt, today)
    rows = session.execute(stmt.group_by(seg, val)).all()
    counts = {(str(s), str(v)): int(n) for s, v, n in rows}
    seen_values = {v for _s, v in counts}
    values = [v for v in NEED_VALUES[need] if v in seen_values]
    values += sorted(seen_values - set(values) - {UNKNOWN}) + ([UNKNOWN] if UNKNOWN in seen_values else [])
    seen_segments = {s for s, _v in counts}
    order = [b[0] for b in AGE_BANDS] if dimension == "age_band" else sorted(seen_segments - {UNKNOWN})
    segments = [s for s in order if s in seen_segments] + ([UNKNOWN] if UNKNOWN in seen_segments else [])
    return NeedsReport(dimension, need, segments, values, counts)
