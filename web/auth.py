"""Login, logout, the current user's scope and role checks."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from config.database import db
from org.models import Staff
from org.scope import Scope
from org.services import AuthError, authenticate
from web.extensions import limiter, login_manager

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])


class LoginUser(UserMixin):
    """Flask-Login's view of a staff member; the id embeds the session epoch so logout kills it."""

    def __init__(self, staff: Staff) -> None:
        self.staff = staff

    def get_id(self) -> str:
        return f"{self.staff.id}:{self.staff.session_epoch}"

    @property
    def id(self) -> int:
        return self.staff.id


@login_manager.user_loader
def _load_user(user_id: str) -> LoginUser | None:
    try:
        sid, epoch = (int(x) for x in user_id.split(":"))
    except ValueError:
        return None
    staff = db.session.get(Staff, sid)
    if staff is None or staff.session_epoch != epoch or staff.status == "departed":
        return None
    return LoginUser(staff)


def current_scope() -> Scope:
    """The logged-in person's scope (cached for the request)."""
    if "scope" not in g:
        if not current_user.is_authenticated:
            abort(401)
        g.scope = Scope.of(db.session, current_user.staff)
    return g.scope  # type: ignore[no-any-return]


def current_staff_id() -> int:
    return int(current_user.staff.id)


def roles_required(*roles: str) -> Callable[[F], F]:
    """View decorator: logged in and holding one of ``roles``, else 403."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def inner(*args: Any, **kwargs: Any) -> Any:
            if not current_scope().has(*roles):
                from web.errors import audit_refusal

                db.session.rollback()
                audit_refusal(needs=list(roles))  # a refused page is a line in the audit log
                abort(403)
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


#: org.services.AuthError's messages, for the catalogue
AUTH_MESSAGES = {
    "Wrong staff number or password": _l("Wrong staff number or password"),
    "Too many failed logins; try again later": _l("Too many failed logins; try again later"),
}


class LoginForm(FlaskForm):
    staff_no = StringField(_l("Staff number"), validators=[DataRequired(), Length(max=20)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    remember = BooleanField(_l("Keep me signed in on this device"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        try:
            staff = authenticate(db.session, form.staff_no.data.strip(), form.password.data, ip=request.remote_addr)
        except AuthError as exc:
            db.session.commit()  # keep the failure count and audit row
            flash(str(AUTH_MESSAGES.get(str(exc), str(exc))), "danger")
            return render_template("auth/login.html", form=form), 401
        db.session.commit()
        target = request.args.get("next") or ""
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("main.home")
        settings = current_app.config["SETTINGS"]
        if staff.totp_secret or settings.mfa_required:  # the second step (org/mfa.py)
            session.clear()
            session[PENDING] = {
                "staff": staff.id,
                "epoch": staff.session_epoch,
                "remember": bool(form.remember.data),
                "next": target,
                "at": time.time(),
            }
            return redirect(url_for(".login_code" if staff.totp_secret else ".login_enrol"))
        return _finish_login(staff, bool(form.remember.data), target)
    return render_template("auth/login.html", form=form)


# -- the second factor ---------------------------------------------------------------------------
PENDING = "mfa_pending"
PENDING_SECONDS = 300  # the password step is good for five minutes


class CodeForm(FlaskForm):
    code = StringField(
        _l("6-digit code from your authenticator app"),
        validators=[DataRequired(), Length(min=6, max=7)],
        render_kw={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"},
    )


def _finish_login(staff: Staff, remember: bool, target: str) -> Any:
    session.clear()
    login_user(LoginUser(staff), remember=remember)
    return redirect(target)


def _pending() -> tuple[Staff, dict[str, Any]] | None:
    """Who passed the password step in this browser, if still fresh."""
    p = session.get(PENDING)
    if not isinstance(p, dict) or time.time() - float(p.get("at", 0)) > PENDING_SECONDS:
        return None
    staff = db.session.get(Staff, int(p.get("staff", 0)))
    if staff is None or staff.session_epoch != p.get("epoch") or staff.status == "departed":
        return None
    return staff, p


def _wrong_code(staff: Staff) -> None:
    from config.database import now_local
    from org.services import LOCK_MINUTES, MAX_FAILED_LOGINS, audit

    staff.failed_logins += 1
    if staff.failed_logins >= MAX_FAILED_LOGINS:
        staff.locked_until = now_local() + dt.timedelta(minutes=LOCK_MINUTES)
        staff.failed_logins = 0
        session.pop(PENDING, None)
    audit(db.session, staff.id, "mfa_failed", "staff", staff.staff_no, detail={"ip": request.remote_addr})
    db.session.commit()


def _locked(staff: Staff) -> bool:
    from config.database import now_local

    return bool(staff.locked_until and staff.locked_until > now_local())


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login_code() -> Any:
    found = _pending()
    if found is None or not found[0].totp_secret:
        flash(_("Please sign in again."), "info")
        return redirect(url_for(".login"))
    staff, p = found
    form = CodeForm()
    if form.validate_on_submit():
        from org import mfa
        from org.services import audit

        if _locked(staff):
            flash(_("Too many failed logins; try again later"), "danger")
            return render_template("auth/code.html", form=form), 401
        if mfa.verify(db.session, staff, form.code.data):
            audit(db.session, staff.id, "mfa_ok", "staff", staff.staff_no, detail={"ip": request.remote_addr})
            staff.failed_logins = 0
            db.session.commit()
            return _finish_login(staff, bool(p.get("remember")), str(p.get("next") or url_for("main.home")))
        _wrong_code(staff)
        flash(_("That code is wrong, expired or already used."), "danger")
        return render_template("auth/code.html", form=form), 401
    return render_template("auth/code.html", form=form)


@bp.route("/login/enrol", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login_enrol() -> Any:
    """Sign-in when a second factor is required and this person has none yet: set it up now."""
    found = _pending()
    if found is None or found[0].totp_secret:
        flash(_("Please sign in again."), "info")
        return redirect(url_for(".login"))
    staff, p = found
    from org import mfa
    from org.services import audit

    secret = p.get("secret") or mfa.new_secret()
    session[PENDING] = {**p, "secret": secret}
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        if mfa.enrol(db.session, staff, secret, form.code.data):
            audit(db.session, staff.id, "mfa_enrolled", "staff", staff.staff_no, detail={"ip": request.remote_addr})
            db.session.commit()
            flash(_("Two-step sign-in is on."), "success")
            return _finish_login(staff, bool(p.get("remember")), str(p.get("next") or url_for("main.home")))
        _wrong_code(staff)
        flash(_("That code is wrong, expired or already used."), "danger")
        status = 401
    uri = mfa.provisioning_uri(staff, secret)
    return render_template(
        "auth/enrol.html", form=form, qr=mfa.qr_svg(uri), key=mfa.grouped(secret), required=True
    ), status


class SecurityForm(FlaskForm):
    code = CodeForm.code
    action = StringField(validators=[DataRequired()])


@bp.route("/account/security", methods=["GET", "POST"])
@login_required
def security() -> Any:
    """Turn two-step sign-in on (scan, confirm a code) or off (a current code; not when required)."""
    from org import mfa
    from org.services import audit

    staff = db.session.get(Staff, current_user.staff.id)
    required = bool(current_app.config["SETTINGS"].mfa_required)
    form = SecurityForm()
    status = 200
    if form.validate_on_submit():
        if form.action.data == "enable" and not staff.totp_secret:
            secret = session.get("mfa_new_secret") or ""
            if secret and mfa.enrol(db.session, staff, secret, form.code.data):
                session.pop("mfa_new_secret", None)
                audit(db.session, staff.id, "mfa_enrolled", "staff", staff.staff_no)
                db.session.commit()
                flash(_("Two-step sign-in is on."), "success")
                return redirect(url_for(".security")), 303
            flash(_("That code is wrong, expired or already used."), "danger")
            status = 422
        elif form.action.data == "disable" and staff.totp_secret:
            if required:
                flash(_("Two-step sign-in is required for everyone here; it cannot be turned off."), "danger")
                status = 409
            elif mfa.verify(db.session, staff, form.code.data):
                staff.totp_secret, staff.totp_last_step = None, None
                audit(db.session, staff.id, "mfa_disabled", "staff", staff.staff_no)
                db.session.commit()
                flash(_("Two-step sign-in is off."), "warning")
                return redirect(url_for(".security")), 303
            else:
                db.session.rollback()
                flash(_("That code is wrong, expired or already used."), "danger")
                status = 422
    qr = key = None
    if not staff.totp_secret:
        secret = session.get("mfa_new_secret") or mfa.new_secret()
        session["mfa_new_secret"] = secret
        qr, key = mfa.qr_svg(mfa.provisioning_uri(staff, secret)), mfa.grouped(secret)
    return render_template(
        "auth/security.html", form=form, enrolled=bool(staff.totp_secret), required=required, qr=qr, key=key
    ), status


class LogoutForm(FlaskForm):
    pass


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    form = LogoutForm()
    if not form.validate_on_submit():
        abort(400)
    staff = db.session.get(Staff, current_user.staff.id)
    staff.session_epoch += 1  # every cookie of this person stops working
    from org.services import audit

    audit(db.session, staff.id, "logout", "staff", staff.staff_no, detail={"ip": request.remote_addr})
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in.")
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)

    @app.context_processor
    def _inject() -> dict[str, Any]:
        scope = current_scope() if current_user.is_authenticated else None
        # formdata=None: never parse the request here (an error page for a too-large upload renders this)
        return {"scope": scope, "logout_form": LogoutForm(formdata=None) if current_user.is_authenticated else None}
