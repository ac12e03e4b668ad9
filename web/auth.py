"""Login, logout, the current user's scope and role checks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, session, url_for
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
                abort(403)
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


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
            flash(_(str(exc)), "danger")
            return render_template("auth/login.html", form=form), 401
        db.session.commit()
        session.clear()
        login_user(LoginUser(staff), remember=form.remember.data)
        target = request.args.get("next") or ""
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("main.home")
        return redirect(target)
    return render_template("auth/login.html", form=form)


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
