"""Customer endpoints of the JSON API: the caller's customers, masked (PRODUCT.md §4.5).

The API never returns personal data in full: "show in full" needs a reason and is a page
(audited, capped per day). Lists are keyset-paginated: pass ``before`` = ``next_before``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from config.database import db
from customers import masking, queries
from customers.models import Alert, Customer, Holding
from web.api import TAGS, api, api_scope


class CustomerOut(BaseModel):
    id: int
    customer_no: str
    type: str
    name: str = Field(description="masked for individuals outside the relationship (张*明)")
    phone: str = Field(description="always masked (138****5678)")
    id_number: str = Field(description="always masked (5119**********1234)")
    gender: str | None
    occupation: str | None
    area: str | None
    grid: str | None
    tags: list[str]
    branch_id: int
    manager_id: int | None
    tier: str | None
    is_key: bool
    contribution: Decimal | None
    needs: dict[str, Any] | None


class CustomerDetailOut(CustomerOut):
    holdings: list[str]
    alerts: list[dict[str, Any]]


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_before: int | None


class CustomerQuery(BaseModel):
    q: str | None = Field(None, max_length=60, description="name prefix or customer number")
    tag: str | None = Field(None, max_length=200, description="comma-separated tags, all required")
    tier: str | None = Field(None, max_length=6)
    branch: int | None = None
    manager: int | None = None
    age: str | None = Field(None, max_length=6, description="18-30, 31-45, 46-60 or 61+")
    occupation: str | None = Field(None, max_length=60)
    area: str | None = Field(None, max_length=8)
    has: str | None = Field(None, max_length=30, description="holds this product")
    lacks: str | None = Field(None, max_length=30, description="does not hold this product")
    key: bool | None = None
    before: int | None = Field(None, description="next_before of the previous page")
    size: int = Field(50, ge=1, le=200)


class CustomerPath(BaseModel):
    customer_id: int


class ErrorOut(BaseModel):
    error: str
    message: str


def _out(c: Customer, scope: Any, cls: type[CustomerOut] = CustomerOut, **extra: Any) -> CustomerOut:
    return cls(
        id=c.id,
        customer_no=c.customer_no,
        type=c.type,
        name=c.name if queries.in_relationship(scope, c) else masking.mask_name(c.name, c.type),
        phone=masking.mask_phone(c.phone),
        id_number=masking.mask_id_number(c.id_number),
        gender=c.gender,
        occupation=c.occupation,
        area=c.area,
        grid=c.grid,
        tags=list(c.tags or []),
        branch_id=c.branch_id,
        manager_id=c.manager_id,
        tier=c.tier,
        is_key=bool(c.is_key),
        contribution=c.contribution,
        needs=c.needs,
        **extra,
    )


@api.get("/customers", tags=[TAGS["customers"]], responses={200: CustomerPage})
def list_customers(query: CustomerQuery) -> Any:
    """The caller's customers matching the filters, newest first, masked."""
    scope = api_scope()
    args = {k: v for k, v in query.model_dump().items() if v is not None and k not in ("before", "size")}
    if "key" in args:
        args["key"] = "1" if args["key"] else ""
    flt = queries.CustomerFilter.from_args({k: str(v) for k, v in args.items()})
    page = queries.customer_page(db.session, scope, flt, before=query.before, size=query.size)
    return CustomerPage(items=[_out(c, scope) for c in page.rows], next_before=page.next_before).model_dump(
        mode="json"
    )


@api.get(
    "/customers/<int:customer_id>",
    tags=[TAGS["customers"]],
    responses={200: CustomerDetailOut, 404: ErrorOut},
)
def get_customer(path: CustomerPath) -> Any:
    """One customer with holdings and alerts (404 when outside the caller's scope), masked."""
    scope = api_scope()
    c = queries.get_customer(db.session, scope, path.customer_id)
    holdings = list(
        db.session.scalars(
            select(Holding.product)
            .where(Holding.customer_id == c.id, Holding.closed_on.is_(None))
            .order_by(Holding.product)
        )
    )
    alerts = [
        {"type": a.type, "period": a.period, "created_at": a.created_at.isoformat() if a.created_at else None}
        for a in db.session.scalars(
            select(Alert).where(Alert.customer_id == c.id).order_by(Alert.id.desc()).limit(20)
        )
    ]
    return _out(c, scope, CustomerDetailOut, holdings=holdings, alerts=alerts).model_dump(mode="json")
