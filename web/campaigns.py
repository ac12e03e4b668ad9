"""Campaign pages: list, detail with state diagram and history, and the director's actions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from wtforms import HiddenField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from campaigns import services
from campaigns.assignment import assignment_counts
from campaigns.machine import campaign_workflow
from campaigns.models import Campaign, CampaignBranch
from config.database import db
from web import labels, nav
from web.auth import current_scope, current_staff_id, roles_required
from workflow.diagram import render_svg
from workflow.engine import available_triggers
from workflow.models import JobProgress

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
nav.register("campaigns.index", _l("Campaigns"), ("director", "admin", "checker"), order=20)

ACTIONS = ("launch", "pause", "resume", "close", "cancel")


class ActionForm(FlaskForm):
    """One director action on a campaign; cancelling needs a reason (checked by the engine too)."""

    action = HiddenField(validators=[DataRequired(), AnyOf(ACTIONS)])
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=500)])

    def validate_reason(self, field: Any) -> None:
        if self.action.data == "cancel" and not (field.data or "").strip():
            from wtforms.validators import ValidationError

            raise ValidationError(_("A reason is required to cancel a campaign."))


def scoped_campaigns() -> Any:
    """SELECT of the campaigns the caller may see."""
    stmt = select(Campaign)
    branches = services.visible_branches(current_scope())
    if branches is not None:
        stmt = stmt.where(
            or_(
                Campaign.all_branches.is_(True),
                Campaign.id.in_(select(CampaignBranch.campaign_id).where(CampaignBranch.branch_id.in_(branches))),
            )
        )
    return stmt


@bp.get("/")
@roles_required("director", "admin", "checker", "manager")
def index() -> Any:
    state = request.args.get("state") or None
    stmt = scoped_campaigns().order_by(Campaign.start_date.desc(), Campaign.id.desc())
    if state:
        stmt = stmt.where(Campaign.state == state)
    campaigns = list(db.session.scalars(stmt.limit(200)))
    counts = dict(
        db.session.execute(
            select(Campaign.state, func.count()).where(Campaign.id.in_(scoped_campaigns().with_only_columns(Campaign.id))).group_by(Campaign.state)
        ).all()
    )
    return render_template("campaigns/index.html", campaigns=campaigns, state=state, counts=counts)


@bp.get("/<int:campaign_id>")
@roles_required("director", "admin", "checker", "manager")
def detail(campaign_id: int) -> Any:
    scope = current_scope()
    campaign = services.get_campaign(db.session, scope, campaign_id)
    svg = render_svg(
        campaign_workflow, current=campaign.state, labels=labels.state_labels(), trigger_labels=labels.trigger_labels()
    )
    allowed = [t for t in available_triggers(campaign) if t in ACTIONS] if scope.has("director") else []
    progress = db.session.scalars(
        select(JobProgress)
        .where(JobProgress.subject == f"campaign:{campaign.code}")
        .order_by(JobProgress.id.desc())
        .limit(1)
    ).first()
    from campaigns.launch_check import check

    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        diagram=svg,
        history=services.campaign_history(db.session, campaign),
        allowed=allowed,
        form=ActionForm(),
        counts=assignment_counts(db.session, campaign.id),
        progress=progress,
        findings=check(db.session, campaign) if campaign.state == "draft" else [],
    )


@bp.post("/<int:campaign_id>/action")
@roles_required("director")
def action(campaign_id: int) -> Any:
    """Launch, pause, resume, close or cancel through the workflow engine."""
    scope = current_scope()
    campaign = services.get_campaign(db.session, scope, campaign_id)
    services.require_director_of(scope, campaign)
    form = ActionForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for e in errors:
                flash(e, "danger")
        return redirect(url_for(".detail", campaign_id=campaign.id)), 303
    verb = form.action.data
    reason = (form.reason.data or "").strip() or None
    actor = current_staff_id()
    if verb == "launch":
        services.launch(db.session, campaign, actor)
    elif verb == "cancel":
        services.cancel(db.session, campaign, actor, reason or "")
    elif verb in ("pause", "resume", "close"):
        getattr(services, verb)(db.session, campaign, actor, reason)
    else:  # pragma: no cover - AnyOf above
        abort(400)
    db.session.commit()
    flash(_("Done: %(action)s.", action=labels.TRIGGERS[verb]), "success")
    return redirect(url_for(".detail", campaign_id=campaign.id)), 303


@bp.get("/jobs/<int:progress_id>")
@roles_required("director", "admin", "checker", "manager")
def job_progress(progress_id: int) -> Any:
    """A progress bar fragment, polled by htmx while the job runs."""
    progress = db.session.get(JobProgress, progress_id)
    if progress is None or (progress.owner_id not in (None, current_staff_id()) and not current_scope().has("admin", "director", "checker")):
        abort(404)
    return render_template("partials/progress.html", progress=progress)
