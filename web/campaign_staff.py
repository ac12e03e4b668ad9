"""Pages for moving customers between people: the branch pool (抢单) for managers, handover (移交)
on a campaign and the staff-leaves page for directors (JOURNEYS 7)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import SelectField, SelectMultipleField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from campaigns import pool, services
from campaigns.assignment import OPEN_STATES
from campaigns.handover import bulk_handover_departing, handover
from campaigns.models import Assignment, Campaign
from config.database import db
from customers.masking import mask_name
from customers.models import Customer
from org.models import Role, Staff, StaffRole, StaffStatus
from org.scope import NotFound
from web import nav
from web.auth import current_scope, current_staff_id, roles_required

bp = Blueprint("campaign_staff", __name__)
nav.register("campaign_staff.pool_page", _l("Customer pool (客户池)"), ("manager",), order=32)
nav.register("campaign_staff.leaving", _l("Staff leaving (移交)"), ("director",), order=60)


class ClaimForm(FlaskForm):
    pass


class HandoverForm(FlaskForm):
    """Hand a colleague's open assignments of one campaign to another colleague."""

    from_staff = SelectField(_l("From"), coerce=int, validators=[DataRequired()])
    to_staff = SelectField(_l("To"), coerce=int, validators=[DataRequired()])
    customer_nos = TextAreaField(
        _l("Only these customer numbers (one per line; empty = all open ones)"),
        validators=[Optional(), Length(max=20000)],
    )
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=180)])


class LeavingForm(FlaskForm):
    """A staff member leaves: their open assignments are spread over chosen colleagues by load."""

    leaver = SelectField(_l("Who leaves"), coerce=int, validators=[DataRequired()])
    colleagues = SelectMultipleField(
        _l("Colleagues who take over"),
        coerce=int,
        validators=[DataRequired()],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=180)])


def _director_staff(active_only: bool = False, managers_only: bool = False) -> list[Staff]:
    scope = current_scope()
    stmt = select(Staff).where(scope.branch_filter(Staff.branch_id, Role.director)).order_by(Staff.staff_no)
    if active_only:
        stmt = stmt.where(Staff.status == StaffStatus.active.value)
    if managers_only:
        stmt = stmt.where(
            select(StaffRole.id)
            .where(StaffRole.staff_id == Staff.id, StaffRole.role == Role.manager.value)
            .exists()
        )
    return list(db.session.scalars(stmt))


def _label(s: Staff) -> str:
    return f"{s.staff_no} {s.name}"


# -- the pool ---------------------------------------------------------------------------------------


@bp.get("/pool")
@roles_required("manager")
def pool_page() -> Any:
    scope = current_scope()
    rows = db.session.execute(
        pool.pool_query(scope)
        .add_columns(Campaign.code, Campaign.name, Customer.customer_no, Customer.name, Customer.type)
        .join(Customer, Customer.id == Assignment.customer_id)
        .limit(300)
    ).all()
    items = [
        {
            "id": a.id,
            "campaign": f"{code} {cname}",
            "customer": f"{no} {mask_name(name, ctype)}",
            "reason": a.reason,
        }
        for a, code, cname, no, name, ctype in rows
    ]
    return render_template("campaign_staff/pool.html", items=items, form=ClaimForm())


@bp.post("/pool/<int:assignment_id>/claim")
@roles_required("manager")
def claim(assignment_id: int) -> Any:
    if not ClaimForm().validate_on_submit():
        flash(_("The form expired: reload and try again."), "danger")
        return redirect(url_for(".pool_page")), 303
    pool.claim(db.session, current_scope(), assignment_id)
    db.session.commit()
    flash(_("The customer is yours now; the first task is in your queue."), "success")
    return redirect(url_for(".pool_page")), 303


@bp.post("/pool/next")
@roles_required("manager")
def claim_next() -> Any:
    if not ClaimForm().validate_on_submit():
        flash(_("The form expired: reload and try again."), "danger")
        return redirect(url_for(".pool_page")), 303
    taken = pool.claim_next(db.session, current_scope())
    if taken is None:
        flash(_("The pool is empty."), "info")
        return redirect(url_for(".pool_page")), 303
    db.session.commit()
    flash(_("The customer is yours now; the first task is in your queue."), "success")
    return redirect(url_for(".pool_page")), 303


# -- handover on a campaign -----------------------------------------------------------------------------


@bp.route("/campaigns/<int:campaign_id>/handover", methods=["GET", "POST"])
@roles_required("director")
def handover_page(campaign_id: int) -> Any:
    scope = current_scope()
    campaign = services.get_campaign(db.session, scope, campaign_id)
    in_scope = scope.branch_filter(Assignment.branch_id, Role.director)
    owners = db.session.execute(
        select(Staff, func.count(Assignment.id))
        .join(Assignment, Assignment.staff_id == Staff.id)
        .where(Assignment.campaign_id == campaign.id, Assignment.state.in_(OPEN_STATES), in_scope)
        .group_by(Staff)
        .order_by(Staff.staff_no)
    ).all()
    form = HandoverForm()
    form.from_staff.choices = [(s.id, f"{_label(s)} ({n})") for s, n in owners]
    form.to_staff.choices = [(s.id, _label(s)) for s in _director_staff(active_only=True, managers_only=True)]
    if form.validate_on_submit():
        stmt = select(Assignment.id).where(
            Assignment.campaign_id == campaign.id, Assignment.staff_id == form.from_staff.data, in_scope
        )
        nos = [line.strip() for line in (form.customer_nos.data or "").splitlines() if line.strip()]
        if nos:
            found = dict(
                db.session.execute(
                    select(Customer.customer_no, Customer.id).where(Customer.customer_no.in_(nos))
                ).all()
            )
            unknown = [n for n in nos if n not in found]
            if unknown:
                form.customer_nos.errors.append(
                    _("Unknown customer numbers: %(nos)s", nos=", ".join(unknown[:20]))
                )
                return _handover_render(campaign, form, owners), 422
            stmt = stmt.where(Assignment.customer_id.in_(list(found.values())))
        ids = list(db.session.scalars(stmt))
        moved = handover(db.session, ids, form.to_staff.data, form.reason.data, current_staff_id())
        db.session.commit()
        flash(_("%(n)s assignments handed over.", n=moved), "success")
        return redirect(url_for(".handover_page", campaign_id=campaign.id)), 303
    return _handover_render(campaign, form, owners), (422 if form.is_submitted() else 200)


def _handover_render(campaign: Campaign, form: HandoverForm, owners: list[Any]) -> str:
    in_pool = db.session.scalar(
        select(func.count()).where(
            Assignment.campaign_id == campaign.id,
            Assignment.state == "pool",
            current_scope().branch_filter(Assignment.branch_id, Role.director),
        )
    )
    return render_template(
        "campaign_staff/handover.html",
        campaign=campaign,
        form=form,
        owners=owners,
        in_pool=int(in_pool or 0),
        pool_form=ClaimForm(),
    )


@bp.post("/campaigns/<int:campaign_id>/pool/distribute")
@roles_required("director")
def distribute(campaign_id: int) -> Any:
    """Hand the campaign's pool out again by load (after capacities changed or people returned)."""
    scope = current_scope()
    campaign = services.get_campaign(db.session, scope, campaign_id)
    services.require_director_of(scope, campaign)
    if not ClaimForm().validate_on_submit():
        flash(_("The form expired: reload and try again."), "danger")
        return redirect(url_for(".handover_page", campaign_id=campaign.id)), 303
    moved = pool.distribute_pool(db.session, campaign, current_staff_id())
    db.session.commit()
    flash(_("%(n)s pool customers assigned by load.", n=moved), "success" if moved else "warning")
    return redirect(url_for(".handover_page", campaign_id=campaign.id)), 303


# -- a staff member leaves -------------------------------------------------------------------------------


@bp.route("/staff/leaving", methods=["GET", "POST"])
@roles_required("director")
def leaving() -> Any:
    scope = current_scope()
    everyone = _director_staff()
    form = LeavingForm()
    form.leaver.choices = [(s.id, f"{_label(s)} · {s.status}") for s in everyone]
    form.colleagues.choices = [
        (s.id, _label(s)) for s in _director_staff(active_only=True, managers_only=True)
    ]
    result = None
    if form.validate_on_submit():
        leaver = db.session.get(Staff, form.leaver.data)
        if leaver is None or not scope.can_see_branch(leaver.branch_id, Role.director):
            raise NotFound("No such staff member")
        given = bulk_handover_departing(
            db.session, leaver, form.colleagues.data, form.reason.data, current_staff_id()
        )
        db.session.commit()
        names = {s.id: _label(s) for s in everyone}
        result = [(names.get(sid, str(sid)), n) for sid, n in given.items()]
        flash(_("%(n)s assignments handed over.", n=sum(given.values())), "success")
    counts = dict(
        db.session.execute(
            select(Assignment.staff_id, func.count())
            .where(Assignment.state.in_(OPEN_STATES), Assignment.staff_id.in_([s.id for s in everyone]))
            .group_by(Assignment.staff_id)
        ).all()
    )
    status = 422 if form.is_submitted() and form.errors else 200
    return render_template(
        "campaign_staff/leaving.html", form=form, result=result, counts=counts, everyone=everyone
    ), status


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
