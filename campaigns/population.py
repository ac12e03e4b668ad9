"""Populations: which customers a campaign targets, as a saved filter over the customer base.

A population is a dict (the YAML ``population`` block)::

    {"customers": {"tags_any": [...], "tier_in": [...], "area": "rural", "occupation_in": [...],
                   "age_min": 18, "age_max": 60, "no_holding": "mobile_banking", "type_in": [...],
                   "grid_in": [...], "customer_nos": [...]}}

It always stays inside the campaign's branches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.models import Campaign, CampaignBranch
from config import clock
from customers.models import Customer, CustomerTag, Holding

FILTER_KEYS = {
    "tags_any",
    "tags_all",
    "tier_in",
    "type_in",
    "area",
    "occupation_in",
    "age_min",
    "age_max",
    "gender",
    "grid_in",
    "has_holding",
    "no_holding",
    "is_key",
    "customer_nos",
    "manager_in",
}


def filter_conditions(spec: dict[str, Any], today: dt.date | None = None) -> list[ColumnElement[bool]]:
    """SQL conditions on :class:`Customer` for one population filter dict."""
    today = today or clock.today()
    c = Customer
    conds: list[ColumnElement[bool]] = []
    if spec.get("tags_any"):
        conds.append(
            exists().where(CustomerTag.customer_id == c.id, CustomerTag.tag.in_(list(spec["tags_any"])))
        )
    for tag in spec.get("tags_all") or []:
        conds.append(exists().where(CustomerTag.customer_id == c.id, CustomerTag.tag == tag))
    if spec.get("tier_in"):
        conds.append(c.tier.in_(list(spec["tier_in"])))
    if spec.get("type_in"):
        conds.append(c.type.in_(list(spec["type_in"])))
    if spec.get("area"):
        conds.append(c.area == spec["area"])
    if spec.get("gender"):
        conds.append(c.gender == spec["gender"])
    if spec.get("occupation_in"):
        conds.append(c.occupation.in_(list(spec["occupation_in"])))
    if spec.get("grid_in"):
        conds.append(c.grid.in_(list(spec["grid_in"])))
    if spec.get("customer_nos"):
        conds.append(c.customer_no.in_(list(spec["customer_nos"])))
    if spec.get("is_key") is not None:
        conds.append(c.is_key.is_(bool(spec["is_key"])))
    if spec.get("age_min") is not None:
        latest_birth = today.replace(year=today.year - int(spec["age_min"]))
        conds.append(c.birth_date <= latest_birth)
    if spec.get("age_max") is not None:
        earliest_birth = today.replace(year=today.year - int(spec["age_max"]) - 1)
        conds.append(c.birth_date > earliest_birth)
    if spec.get("has_holding"):
        conds.append(
            exists().where(Holding.customer_id == c.id, Holding.product == spec["has_holding"], Holding.closed_on.is_(None))
        )
    if spec.get("no_holding"):
        conds.append(
            ~exists().where(Holding.customer_id == c.id, Holding.product == spec["no_holding"], Holding.closed_on.is_(None))
        )
    return conds


def population_select(campaign: Campaign, columns: Any = None) -> Select[Any]:
    """SELECT of the campaign's customers (inside its branches); ``columns`` default: the id."""
    spec = (campaign.population or {}).get("customers") or {}
    stmt = select(*(columns or [Customer.id])).where(*filter_conditions(spec))
    if not campaign.all_branches:
        stmt = stmt.where(
            exists().where(CampaignBranch.campaign_id == campaign.id, CampaignBranch.branch_id == Customer.branch_id)
        )
    return stmt.where(and_(Customer.do_not_contact.is_(False)))


def population_count(session: Session, campaign: Campaign) -> int:
    """How many customers the campaign's population holds now."""
    return int(session.scalar(select(func.count()).select_from(population_select(campaign).subquery())) or 0)
