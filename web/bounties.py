"""Bounty board (悬赏): open bounties, mine, and the director's post form (PRODUCT.md §3, §5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, DecimalField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from campaigns import bounties
from campaigns.bounty_models import Bounty, BountyState
from campaigns.models import Campaign
from config.database import db
from customers.masking import mask_name
from customers.models import Customer
from org.models import Role
from web import nav
from web.auth import current_scope, roles_required

bp = Blueprint("bounties", __name__, url_prefix="/bounties")
nav.register(
    "bounties.board", _l("Bounty board (悬赏)"), ("director", "manager", "checker", "admin"), order=35
)


class PostForm(FlaskForm):
    """A director posts a bounty on one customer of their branches."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    customer_no = StringField(_l("Customer number"), validators=[DataRequired(), Length(max=32)])
    amount = DecimalField(
        _l("Amount (yuan)"), places=2, validators=[DataRequired(), NumberRange(min=Decimal("0.01"))]
    )
    deadline = DateField(_l("Deadline"), validators=[DataRequired()])
    exclusive_days = IntegerField(
        _l("Exclusive days for the taker"),
        default=14,
        validators=[DataRequired(), NumberRange(min=1, max=90)],
    )
    campaign_code = StringField(_l("Campaign code (optional)"), validators=[Optional(), Length(max=40)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])


class ActForm(FlaskForm):
    """Take or withdraw (reason for withdrawing)."""

    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=500)])


def _render(form: PostForm, status: int = 200) -> Any:
    scope = current_scope()
    session = db.session
    open_ = list(session.scalars(bounties.board_query(scope, BountyState.open.value).limit(200)))
    mine = list(session.scalars(bounties.mine_query(scope).limit(200))) if scope.has(Role.manager) else []
    others = []
    if scope.has(Role.director, Role.checker, Role.admin):
        others = list(
            session.scalars(
                select(Bounty)
                .where(bounties.visible(scope), Bounty.state != BountyState.open.value)
                .order_by(Bounty.id.desc())
                .limit(200)
            )
        )
    return (
        render_template(
            "bounties/board.html",
            open_bounties=open_,
            mine=mine,
            others=others,
            form=form,
            act_form=ActForm(),
            can_post=scope.has(Role.director),
            can_take=scope.has(Role.manager),
            customer_label=lambda c: f"{c.customer_no} {mask_name(c.name, c.type)}",
        ),
        status,
    )


@bp.get("/")
@roles_required("director", "manager", "checker", "admin")
def board() -> Any:
    return _render(PostForm())


@bp.post("/")
@roles_required("director")
def post() -> Any:
    form = PostForm()
    if not form.validate_on_submit():
        return _render(form, 422)
    scope = current_scope()
    customer = db.session.scalars(
        select(Customer).where(
            Customer.customer_no == form.customer_no.data.strip(),
            scope.branch_filter(Customer.branch_id, Role.director),
        )
    ).first()
    if customer is None:
        form.customer_no.errors.append(_("No such customer in your branches."))
        return _render(form, 422)
    campaign_id = None
    if form.campaign_code.data:
        campaign_id = db.session.scalar(
            select(Campaign.id).where(Campaign.code == form.campaign_code.data.strip())
        )
        if campaign_id is None:
            form.campaign_code.errors.append(_("No campaign with this code."))
            return _render(form, 422)
    try:
        b = bounties.post(
            db.session,
            scope,
            customer_id=customer.id,
            title=form.title.data,
            amount=str(form.amount.data),
            deadline=form.deadline.data,
            exclusive_days=form.exclusive_days.data,
            campaign_id=campaign_id,
            description=form.description.data,
        )
    except bounties.BountyInputError as exc:
        db.session.rollback()
        field = {"customer": "customer_no", "campaign": "campaign_code"}.get(exc.field, exc.field)
        getattr(form, field).errors.append(exc.message)
        return _render(form, 422)
    db.session.commit()
    flash(_("Bounty posted: %(title)s", title=b.title), "success")
    return redirect(url_for(".board")), 303


@bp.post("/<int:bounty_id>/take")
@roles_required("manager")
def take(bounty_id: int) -> Any:
    if not ActForm().validate_on_submit():
        flash(_("The form expired: reload and try again."), "danger")
        return redirect(url_for(".board")), 303
    b = bounties.take(db.session, current_scope(), bounty_id)
    db.session.commit()
    flash(
        _("You hold this bounty until %(day)s.", day=b.taken_until.isoformat() if b.taken_until else ""),
        "success",
    )
    return redirect(url_for(".board")), 303


@bp.post("/<int:bounty_id>/withdraw")
@roles_required("director")
def withdraw(bounty_id: int) -> Any:
    form = ActForm()
    if not form.validate_on_submit():
        flash(_("The form expired: reload and try again."), "danger")
        return redirect(url_for(".board")), 303
    bounties.withdraw(db.session, current_scope(), bounty_id, form.reason.data or "")
    db.session.commit()
    flash(_("Bounty withdrawn."), "success")
    return redirect(url_for(".board")), 303


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
