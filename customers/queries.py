"""Customers through the caller's scope (PRODUCT.md §1), and the list filters of the customer base.

Who sees which customer:

* admin, checker and director: by branch (union-wide roles: everyone);
* manager: the customers they manage (``manager_id``), customers assigned to them in a campaign,
  and the pool of their branch (customers without a manager, and campaign pool assignments).

:func:`scoped_customers` is the one SELECT every list, fetch and export starts from;
:func:`get_customer` answers :class:`org.scope.NotFound` for a customer outside the scope, so a
guessed id reveals nothing. No flask here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, exists, false, or_, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.models import Assignment
from config import clock
from customers.models import Customer, CustomerTag, Holding
from org.scope import NotFound, Scope

#: Assignment states that still tie a customer to a staff member.
_LIVE_ASSIGNMENT = ("assigned", "contacted", "interested")

#: Age bands of the list filter and the needs report: (key, lowest age, highest age).
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("18-30", 18, 30),
    ("31-45", 31, 45),
    ("46-60", 46, 60),
    ("61+", 61, None),
)

#: Page size of the customer list.
PAGE_SIZE = 50


def scope_clause(scope: Scope) -> ColumnElement[bool]:
    """WHERE clause: the customers ``scope`` may see."""
    clauses: list[ColumnElement[bool]] = []
    if scope.has("admin", "director", "checker"):
        clauses.append(scope.branch_filter(Customer.branch_id))
    if scope.has("manager"):
        # plain indexed predicates plus one uncorrelated IN (a hashed subplan on PostgreSQL, an
        # ephemeral index on SQLite): linear whatever the planner's statistics say
        clauses.append(Customer.manager_id == scope.staff_id)
        clauses.append(and_(Customer.branch_id == scope.branch_id, Customer.manager_id.is_(None)))
        clauses.append(
            Customer.id.in_(
                union_all(
                    select(Assignment.customer_id).where(
                        Assignment.staff_id == scope.staff_id, Assignment.state.in_(_LIVE_ASSIGNMENT)
                    ),
                    select(Assignment.customer_id).where(
                        Assignment.branch_id == scope.branch_id,
                        Assignment.staff_id.is_(None),
                        Assignment.state == "pool",
                    ),
                )
            )
        )
    return or_(*clauses) if clauses else false()


def scoped_customers(scope: Scope) -> Select[tuple[Customer]]:
    """SELECT of the customers ``scope`` may see."""
    return select(Customer).where(scope_clause(scope))


def get_customer(session: Session, scope: Scope, customer_id: int) -> Customer:
    """The customer with ``customer_id`` if ``scope`` may see it, else :class:`NotFound`."""
    customer = session.scalar(scoped_customers(scope).where(Customer.id == customer_id))
    if customer is None:
        raise NotFound(f"customer {customer_id}")
    return customer


def in_relationship(scope: Scope, customer: Customer) -> bool:
    """Whether the caller is the customer's relationship manager (names shown in full in lists)."""
    return customer.manager_id == scope.staff_id


def may_reveal(scope: Scope, customer: Customer) -> bool:
    """Who may ask to see personal data in full: the relationship manager, the branch director, admin."""
    if customer.manager_id == scope.staff_id:
        return True
    if scope.has("admin"):
        return scope.can_see_branch(customer.branch_id, "admin")
    return scope.has("director") and scope.can_see_branch(customer.branch_id, "director")


def may_edit_needs(scope: Scope, customer: Customer) -> bool:
    """The relationship manager records needs; directors of the branch may correct them."""
    return customer.manager_id == scope.staff_id or (
        scope.has("director") and scope.can_see_branch(customer.branch_id, "director")
    )


def may_export_unmasked(scope: Scope) -> bool:
    """Only admins may export lists with personal data in full (with a reason, audited)."""
    return scope.has("admin")


@dataclass
class CustomerFilter:
    """The list filters; every one maps to an indexed column or an EXISTS on an indexed table."""

    q: str = ""
    tags: list[str] = field(default_factory=list)
    tier: str = ""
    branch_id: int | None = None
    manager_id: int | None = None
    age_band: str = ""
    occupation: str = ""
    area: str = ""
    gender: str = ""
    type: str = ""
    has_product: str = ""
    lacks_product: str = ""
    key_only: bool = False
    product: str = ""
    term: str = ""
    risk: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> CustomerFilter:
        """Build from request arguments; unusable values are ignored (a filter never errors)."""

        def text(name: str, limit: int = 60) -> str:
            return str(args.get(name) or "").strip()[:limit]

        def number(name: str) -> int | None:
            raw = text(name, 12)
            return int(raw) if raw.isdigit() else None

        tags_raw: list[str] = []
        getlist = getattr(args, "getlist", None)
        if getlist is not None:
            tags_raw = [t for v in getlist("tag") for t in str(v).split(",")]
        elif args.get("tag"):
            tags_raw = str(args["tag"]).split(",")
        return cls(
            q=text("q"),
            tags=[t.strip()[:40] for t in tags_raw if t.strip()][:5],
            tier=text("tier", 6),
            branch_id=number("branch"),
            manager_id=number("manager"),
            age_band=text("age", 6) if text("age", 6) in {b[0] for b in AGE_BANDS} else "",
            occupation=text("occupation"),
            area=text("area", 8),
            gender=text("gender", 1),
            type=text("type", 12),
            has_product=text("has", 30),
            lacks_product=text("lacks", 30),
            key_only=text("key", 3) in ("1", "on", "yes"),
            product=text("product", 40),
            term=text("term", 40),
            risk=text("risk", 40),
        )

    def args(self) -> dict[str, Any]:
        """The filter as query arguments (for links that keep it)."""
        out: dict[str, Any] = {}
        for key, value in (
            ("q", self.q),
            ("tier", self.tier),
            ("branch", self.branch_id),
            ("manager", self.manager_id),
            ("age", self.age_band),
            ("occupation", self.occupation),
            ("area", self.area),
            ("gender", self.gender),
            ("type", self.type),
            ("has", self.has_product),
            ("lacks", self.lacks_product),
            ("key", "1" if self.key_only else ""),
        ):
            if value not in ("", None):
                out[key] = value
        if self.tags:
            out["tag"] = ",".join(self.tags)
        return out

    def apply(self, stmt: Select[Any], today: dt.date | None = None) -> Select[Any]:
        """Add this filter's WHERE clauses to ``stmt`` (a SELECT over :class:`Customer`)."""
        if self.q:
            q = self.q
            if q.upper().startswith("C") and q[1:].isdigit() or q.isdigit():
                stmt = stmt.where(
                    or_(Customer.customer_no == q, Customer.customer_no.startswith(q, autoescape=True))
                )
            else:
                stmt = stmt.where(
                    or_(Customer.name.startswith(q, autoescape=True), Customer.customer_no == q)
                )
        for tag in self.tags:
            stmt = stmt.where(exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag))
        if self.tier:
            stmt = stmt.where(Customer.tier == self.tier)
        if self.branch_id is not None:
            stmt = stmt.where(Customer.branch_id == self.branch_id)
        if self.manager_id is not None:
            stmt = stmt.where(Customer.manager_id == self.manager_id)
        if self.age_band:
            low, high = age_range(self.age_band, today or clock.today())
            stmt = stmt.where(Customer.birth_date <= low)
            if high is not None:
                stmt = stmt.where(Customer.birth_date > high)
        if self.occupation:
            stmt = stmt.where(Customer.occupation == self.occupation)
        if self.area:
            stmt = stmt.where(Customer.area == self.area)
        if self.gender:
            stmt = stmt.where(Customer.gender == self.gender)
        if self.type:
            stmt = stmt.where(Customer.type == self.type)
        if self.has_product:
            stmt = stmt.where(_holds(self.has_product))
        if self.lacks_product:
            stmt = stmt.where(~_holds(self.lacks_product))
        if self.key_only:
            stmt = stmt.where(Customer.is_key.is_(True))
        return stmt


def _holds(product: str) -> ColumnElement[bool]:
    return exists().where(
        Holding.customer_id == Customer.id, Holding.product == product, Holding.closed_on.is_(None)
    )


def age_range(band: str, today: dt.date) -> tuple[dt.date, dt.date | None]:
    """Birth dates of an age band: born on or before the first date and after the second (None: open)."""
    for key, low, high in AGE_BANDS:
        if key == band:
            latest = _years_before(today, low)
            earliest = _years_before(today, high + 1) if high is not None else None
            return latest, earliest
    raise ValueError(f"unknown age band {band!r}")


def age_band_of(birth_date: dt.date | None, today: dt.date) -> str:
    """The band key of a birth date ('' when unknown or under 18)."""
    if birth_date is None:
        return ""
    age = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
    for key, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return key
    return ""


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@dataclass
class Page:
    """One page of a keyset-paginated list (newest id first)."""

    rows: list[Any]
    next_before: int | None


def customer_page(
    session: Session, scope: Scope, flt: CustomerFilter, before: int | None = None, size: int = PAGE_SIZE
) -> Page:
    """One page of the caller's customers matching ``flt``, keyset-paginated on the primary key."""
    stmt = flt.apply(scoped_customers(scope))
    if before is not None:
        stmt = stmt.where(Customer.id < before)
    rows = list(session.scalars(stmt.order_by(Customer.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, rows[-1].id if more and rows else None)


def filtered_ids(scope: Scope, flt: CustomerFilter) -> Select[tuple[int]]:
    """SELECT of the ids of the caller's customers matching ``flt`` (for exports and reports)."""
    return flt.apply(scoped_customers(scope)).with_only_columns(Customer.id)
