"""The checker's verification queue (业绩认定): verify or reject with a reason, reverse within the
window; never one's own claim (403 with a clear message). Scoped by the checker's branches."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional

from config.database import db
from customers.masking import mask_name
from customers.models import Customer
from org.scope import Forbidden
from tasks import claims
from tasks.models import Claim, ClaimState
from tasks.services import InputError
from web import nav
from web.auth import current_scope, current_staff_id, roles_required

bp = Blueprint("checks", __name__, url_prefix="/checks")
nav.register("checks.index", _l("Verification (业绩认定)"), ("checker",), order=30)


class VerdictForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])


def _claim(claim_id: int) -> Claim:
    return claims.get_claim_for_checker(db.session, current_scope(), claim_id)


@bp.get("/")
@roles_required("checker", "admin")
def index() -> Any:
    state = request.args.get("state", ClaimState.submitted)
    if state not in set(ClaimState):
        state = ClaimState.submitted
    rows = claims.checker_queue(db.session, current_scope(), state)
    customers = {
        c.id: c
        for c in db.session.query(Customer).filter(
            Customer.id.in_([r.customer_id for r in rows if r.customer_id])
        )
    }
    return render_template(
        "checks/index.html",
        claims=rows,
        state=state,
        customers=customers,
        mask_name=mask_name,
        me=current_staff_id(),
        form=VerdictForm(),
    )


@bp.get("/<int:claim_id>")
@roles_required("checker", "admin")
def detail(claim_id: int) -> Any:
    claim = _claim(claim_id)
    customer = db.session.get(Customer, claim.customer_id) if claim.customer_id else None
    from workflow.engine import history

    return render_template(
        "checks/detail.html",
        claim=claim,
        customer_name=mask_name(customer.name, customer.type) if customer else "",
        own=claim.staff_id == current_staff_id(),
        form=VerdictForm(),
        history=history(db.session, "claim", claim.id),
        evidence=claims.confirmed_by_core_banking(db.session, claim),
    )


def _verdict(claim_id: int, verb: str) -> Any:
    claim = _claim(claim_id)
    form = VerdictForm()
    if not form.validate_on_submit():
        abort(400)
    actor = current_staff_id()
    if claim.staff_id == actor:
        raise Forbidden(
            _("You cannot verify, reject or reverse your own claim: another checker must (maker-checker).")
        )
    try:
        if verb == "verify":
            claims.verify(db.session, claim, actor, note=form.reason.data or None)
        elif verb == "reject":
            claims.reject(db.session, claim, actor, form.reason.data)
        else:
            claims.reverse(db.session, claim, actor, form.reason.data)
    except InputError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for(".detail", claim_id=claim_id)), 303
    db.session.commit()
    flash(_("Claim #%(id)s: %(state)s.", id=claim.id, state=claim.state), "success")
    return redirect(url_for(".index")), 303


@bp.post("/<int:claim_id>/verify")
@roles_required("checker", "admin")
def verify(claim_id: int) -> Any:
    return _verdict(claim_id, "verify")


@bp.post("/<int:claim_id>/reject")
@roles_required("checker", "admin")
def reject(claim_id: int) -> Any:
    return _verdict(claim_id, "reject")


@bp.post("/<int:claim_id>/reverse")
@roles_required("checker", "admin")
def reverse(claim_id: int) -> Any:
    return _verdict(claim_id, "reverse")


@bp.get("/<int:claim_id>/evidence")
@roles_required("checker", "admin")
def evidence(claim_id: int) -> Any:
    claim = _claim(claim_id)
    if not claim.evidence_file:
        abort(404)
    folder = current_app.config["SETTINGS"].instance_dir / "uploads"
    return send_from_directory(folder, claim.evidence_file)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
