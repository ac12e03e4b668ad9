"""The web application: factory, blueprints, JSON API and CLI.

``create_app(overrides)`` reads :class:`config.settings.Settings`, configures the database and
Celery, initialises the extensions and registers every blueprint and CLI group explicitly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, g, request, session
from flask_openapi3 import Info, OpenAPI
from flask_talisman import Talisman

from config.celery import make_celery
from config.database import db
from config.settings import Settings
from web.extensions import babel, csrf, limiter, login_manager

LOCALES = ("zh_CN", "en")

#: Strict content security policy: no inline scripts or styles, nothing from outside.
CSP = {
    "default-src": "'self'",
    "img-src": ["'self'", "data:"],
    "style-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def create_app(overrides: dict[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """Build the Flask app for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    app = OpenAPI(
        __name__,
        info=Info(title="campaignflow API", version="1", description="Campaigns, task queues, verified results."),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        doc_prefix="/api/docs",
        instance_path=str(settings.instance_dir),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=10),
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    if overrides:
        app.config.update(overrides)

    db.configure(settings.database_url)
    app.teardown_appcontext(lambda exc: db.session.remove())
    if settings.proxy_hops:  # behind N trusted proxies: their X-Forwarded-For/-Proto give the client
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    @app.after_request
    def _swagger_csp(response: Any) -> Any:
        # the bundled Swagger UI page carries inline scripts; everything else keeps the strict policy
        if request.path.startswith("/api/docs"):
            response.headers.pop("Content-Security-Policy", None)
        return response

    Talisman(
        app,
        force_https=False,  # TLS ends at the proxy; set CAMPAIGNFLOW_SECURE_COOKIES=1 behind HTTPS
        session_cookie_secure=settings.secure_cookies,
        strict_transport_security=settings.secure_cookies,
        content_security_policy=CSP,
        frame_options="DENY",
        referrer_policy="same-origin",
    )
    limiter.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=lambda: settings.timezone)
    app.extensions["celery"] = make_celery(settings)
    from workflow import poison

    app.extensions["celery"].job_guard = poison  # cap redeliveries of jobs that kill their worker

    from web import auth, errors, filters, health, nav, views
    from web.api import register_api
    from web.campaigns import bp as campaigns_bp
    from web.cli import register_cli

    auth.init_app(app)
    errors.init_app(app)
    filters.init_app(app)
    nav.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(campaigns_bp)
    _register_domain_blueprints(app)
    register_api(app)
    register_cli(app)

    @app.before_request
    def _fresh_request_state() -> None:
        # `g` belongs to the app context; when a test (or a CLI command) keeps one app context
        # across requests, per-request caches (current user, scope) must not leak between them.
        for name in list(vars(g)):
            delattr(g, name)

    @app.before_request
    def _remember_locale() -> None:
        if "lang" in request.args and request.args["lang"] in LOCALES:
            session["lang"] = request.args["lang"]
        g.locale = select_locale()

    return app


def _register_domain_blueprints(app: Flask) -> None:
    """Blueprints of the areas built later register here (one per area)."""
    import importlib

    for module in (
        "web.customers",
        "web.org",
        "web.queue",
        "web.checks",
        "web.appraisal",
        "web.bounties",
        "web.campaign_dashboard",
        "web.campaign_staff",
        "web.campaign_editor",
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.init_app(app)


def select_locale() -> str:
    """The user's setting, then the session's choice, then the browser, then zh_CN."""
    from flask_login import current_user

    if getattr(current_user, "is_authenticated", False) and current_user.staff.locale in LOCALES:
        return str(current_user.staff.locale)
    if session.get("lang") in LOCALES:
        return str(session["lang"])
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"]) if request else None
    if best in ("zh_CN", "zh"):
        return "zh_CN"
    if best == "en":
        return "en"
    from flask import current_app

    return str(current_app.config["BABEL_DEFAULT_LOCALE"])
