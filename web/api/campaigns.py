"""Campaign endpoints of the JSON API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from campaigns import services
from campaigns.models import Campaign
from config.database import db
from web.api import TAGS, api, api_scope, api_staff
from workflow.engine import available_triggers


class CampaignOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    state: str
    start_date: dt.date
    end_date: dt.date
    allowed_actions: list[str]


class CampaignList(BaseModel):
    items: list[CampaignOut]


class CampaignPath(BaseModel):
    campaign_id: int


class CampaignQuery(BaseModel):
    state: str | None = Field(None, max_length=12)


class TransitionIn(BaseModel):
    action: Literal["launch", "pause", "resume", "close", "cancel"]
    reason: str | None = Field(None, max_length=500)


class ErrorOut(BaseModel):
    error: str
    message: str


class MeOut(BaseModel):
    staff_no: str
    name: str
    roles: list[str]


def _out(c: Campaign) -> CampaignOut:
    return CampaignOut(
        id=c.id,
        code=c.code,
        name=c.name,
        kind=c.kind,
        state=c.state,
        start_date=c.start_date,
        end_date=c.end_date,
        allowed_actions=available_triggers(c),
    )


@api.get("/me", tags=[TAGS["me"]], responses={200: MeOut})
def me() -> Any:
    """Who the token belongs to."""
    staff = api_staff()
    return MeOut(staff_no=staff.staff_no, name=staff.name, roles=sorted(staff.role_names())).model_dump()


@api.get("/campaigns", tags=[TAGS["campaigns"]], responses={200: CampaignList})
def list_campaigns(query: CampaignQuery) -> Any:
    """Campaigns in the caller's scope, newest first."""
    scope = api_scope()
    rows = db.session.scalars(select(Campaign).order_by(Campaign.start_date.desc(), Campaign.id.desc()))
    items = [_out(c) for c in rows if services.can_see(db.session, scope, c) and (not query.state or c.state == query.state)]
    return CampaignList(items=items).model_dump(mode="json")


@api.get("/campaigns/<int:campaign_id>", tags=[TAGS["campaigns"]], responses={200: CampaignOut, 404: ErrorOut})
def get_campaign(path: CampaignPath) -> Any:
    """One campaign (404 when outside the caller's scope)."""
    c = services.get_campaign(db.session, api_scope(), path.campaign_id)
    return _out(c).model_dump(mode="json")


@api.post(
    "/campaigns/<int:campaign_id>/transitions",
    tags=[TAGS["campaigns"]],
    responses={200: CampaignOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
)
def transition(path: CampaignPath, body: TransitionIn) -> Any:
    """Launch, pause, resume, close or cancel (reason required) a campaign; 409 when impossible."""
    scope = api_scope()
    c = services.get_campaign(db.session, scope, path.campaign_id)
    services.require_director_of(scope, c)
    actor = api_staff().id
    if body.action == "launch":
        services.launch(db.session, c, actor)
    elif body.action == "cancel":
        services.cancel(db.session, c, actor, body.reason or "")
    else:
        getattr(services, body.action)(db.session, c, actor, body.reason)
    db.session.commit()
    return _out(c).model_dump(mode="json")
