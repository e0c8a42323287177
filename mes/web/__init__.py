"""Web adapter: thin views over the services; the role decides which blueprints are mounted.

Every route needs a logged-in user except the allow-list ``PUBLIC_ENDPOINTS`` (21 CFR 11.10(d)).
A session idle for longer than the site's timeout is locked and asks for the password again
(keeping the page the user was on); the lock also ends the "continuous session" for signatures
(11.200(a)(1)(ii)).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, jsonify, redirect, render_template, request, url_for
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mes import __version__
from mes.core.access import ROLE_TITLES, Permission, allowed
from mes.core.canonical import strict_loads
from mes.core.clock import local_text, parse_utc_text
from mes.core.errors import MesError
from mes.core.esign import MEANING_STATEMENTS, Meaning, required_components
from mes.services.runtime import Runtime
from mes.web import session_user, terminal_binding
from mes.web.helpers import first_signing_in_session
from mes.web.rendering import markdown
from mes.web.session_user import session_locked

# The recipe format's JSON Schema is public: authors' editors fetch it without logging in.
PUBLIC_ENDPOINTS = frozenset({"static", "common.login", "common.health", "authoring.schema"})
# A locked session may only unlock, log out, or lock (the page's idle timer may post once the
# server has already locked it).
UNLOCK_ENDPOINTS = frozenset({"common.unlock", "common.logout", "common.lock"})
PASSWORD_CHANGE_ENDPOINTS = frozenset({"common.change_password", "common.logout", "common.lock"})
# Pages poll these by themselves: a poll is not the user's activity, so it never keeps an idle
# session from locking.
POLL_ENDPOINTS = frozenset({"network.alerts"})

csrf = CSRFProtect()
login_manager = LoginManager()


def blueprints_by_role() -> dict[str, list[Any]]:
    """Which blueprints each role mounts (later issues add operator, QA, API)."""
    from mes.web.admin.views import bp as admin
    from mes.web.api.views import bp as api
    from mes.web.authoring.views import bp as authoring
    from mes.web.common.views import bp as common
    from mes.web.installed.views import bp as installed
    from mes.web.masters.views import bp as masters
    from mes.web.network.views import bp as network
    from mes.web.operator.views import bp as operator
    from mes.web.qa.views import bp as qa
    from mes.web.sync.views import bp as sync

    return {
        "hub": [common, admin, authoring, api, network, qa],
        "spoke": [common, admin, installed, operator, masters, sync],
    }


class MesSessionInterface(SecureCookieSessionInterface):
    """Session cookies are marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def is_user_activity() -> bool:
    """Whether this request is the user's own activity, which keeps the session from locking.

    Public pages, a page's own polling, the sync API and unknown addresses are not.
    """
    endpoint = request.endpoint
    return (
        endpoint is not None
        and endpoint not in PUBLIC_ENDPOINTS
        and endpoint not in POLL_ENDPOINTS
        and request.blueprint != "api"
    )


def runtime() -> Runtime:
    """The instance this app serves."""
    from flask import current_app

    return current_app.extensions["mes"]


API_PREFIX = "/api/"

# The stable ``code`` of an API error that no rule of ours raised (routing, size, a bug).
HTTP_ERROR_CODES = {
    400: "invalid-input",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    500: "internal-error",
}
HTTP_WHAT_TO_DO = {
    404: "Check the address: the API's operations are listed in /api/v1/openapi.json.",
    413: "Send a smaller request: the hub accepts at most 2 MB per request.",
    500: "Nothing was saved. Try again; if it happens again, tell the hub administrator the "
    "time it happened.",
}


def is_api_request() -> bool:
    """A call of the sync API (JSON errors with a stable code, never a page)."""
    return request.path.startswith(API_PREFIX)


def error_code(name: str) -> str:
    """A stable machine-readable code from an error's name: ``NotFound`` → ``not-found``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return "-".join(spaced.lower().split())


def api_error_response(
    status: int, error: str, what_to_do: str, code: str, **extra: Any
) -> tuple[Response, int]:
    """The API's one error body: the reason, what to do about it, and a stable code."""
    return jsonify({"error": error, "what_to_do": what_to_do, "code": code, **extra}), status


def wants_json() -> bool:
    """API clients get JSON errors, browsers get pages."""
    accept = request.accept_mimetypes
    explicit_json = accept["application/json"] > accept["text/html"]  # */* counts as both
    return is_api_request() or explicit_json


def error_response(status: int, title: str, message: str) -> tuple[Response | str, int]:
    """A readable 4xx/5xx answer: JSON for API clients, a page for people (never a traceback).

    Under ``/api/`` the JSON is the API's error body (``error``, ``what_to_do``, ``code``), as
    the OpenAPI document describes it; other JSON clients get ``error`` and ``message``.
    """
    if is_api_request():
        return api_error_response(
            status,
            f"{title}: {message}" if message else title,
            HTTP_WHAT_TO_DO.get(status, "Check the request against /api/v1/openapi.json."),
            HTTP_ERROR_CODES.get(status) or error_code(title),
        )
    if wants_json():
        return jsonify({"error": title, "message": message}), status
    return render_template("error.html", status=status, title=title, message=message), status


def safe_next(target: str | None) -> str | None:
    """Only local paths may be redirect targets (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


class StrictJSONProvider(DefaultJSONProvider):
    """Request bodies are read as the sync API's JSON is: absurd nesting is malformed JSON.

    Flask's ``get_json(silent=True)`` answers None for a ``ValueError`` but lets a
    ``RecursionError`` (100,000 nested brackets) through as a 500.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s)


def init_web(app: Flask, rt: Runtime) -> None:
    """Wire sessions, login, CSRF, the request gate, error pages and the role's blueprints."""
    app.extensions["mes"] = rt
    app.json = StrictJSONProvider(app)
    app.session_interface = MesSessionInterface()
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "common.login"
    # The user comes from the server-side session named by the cookie (mes.services.sessions);
    # the cookie holds no user ID, so Flask-Login's own session protection has nothing to guard.
    login_manager.session_protection = None
    login_manager.request_loader(session_user.load)
    for blueprint in blueprints_by_role()[rt.settings.role]:
        app.register_blueprint(blueprint)
        if blueprint.name == "api":
            csrf.exempt(blueprint)  # spokes sign each request; there is no browser session

    @app.before_request
    def gate() -> Response | None:
        g.now = datetime.now(UTC)
        terminal_binding.resolve(rt)
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if request.blueprint == "api":
            return (
                None  # each API view authenticates the spoke's signature (or the enrollment code)
            )
        if not current_user.is_authenticated:  # the server-side session is judged here
            return redirect(url_for("common.login", next=_return_path()))
        if session_locked() and request.endpoint not in UNLOCK_ENDPOINTS:
            if wants_json():
                return error_response(
                    401, "Session locked", "Unlock the session with your password."
                )  # type: ignore[return-value]
            return redirect(url_for("common.unlock", next=_return_path()))
        if (
            current_user.must_change_password
            and not session_locked()  # unlock first: else unlock and change redirect in a loop
            and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS
        ):
            return redirect(url_for("common.change_password", next=_return_path()))
        return None

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'",
        )
        if current_user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_template_filter(parse_utc_text, "utc")
    app.add_template_filter(plain_value, "plain")
    app.add_template_filter(markdown, "markdown")

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        return {
            "site": rt.site,
            "version": __version__,
            "terminal": g.get("terminal"),
            "timeout_seconds": rt.settings.session_timeout_seconds,
            "session_locked": session_locked(),
            "local_time": lambda at: local_text(at, rt.site.time_zone),
            "can": lambda permission: (
                current_user.is_authenticated
                and allowed(current_user.roles, Permission(permission))
            ),
            "role_titles": ROLE_TITLES,
            "meaning_statements": MEANING_STATEMENTS,
            "Meaning": Meaning,
            "esign_components": required_components(first_signing_in_session()),
        }

    @app.errorhandler(MesError)
    def mes_error(err: MesError) -> tuple[Response | str, int]:
        if is_api_request():
            code = getattr(err, "code", None) or error_code(type(err).__name__)
            return api_error_response(err.http_status, err.message, err.what_to_do, code)
        return error_response(err.http_status, type(err).__name__, str(err))

    @app.errorhandler(CSRFError)
    def csrf_error(err: CSRFError) -> tuple[Response | str, int]:
        return error_response(
            400,
            "Form expired",
            "The form was stale or not from this site; nothing was saved. "
            "Go back, reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> tuple[Response | str, int]:
        if is_api_request() and isinstance(err, MethodNotAllowed) and err.valid_methods:
            allowed_methods = ", ".join(sorted(err.valid_methods))
            response, status = api_error_response(
                405,
                f"{err.name}: {err.description}",
                f"Use {allowed_methods} for this address (see /api/v1/openapi.json).",
                HTTP_ERROR_CODES[405],
            )
            response.headers["Allow"] = allowed_methods  # RFC 9110 15.5.6
            return response, status
        return error_response(err.code or 500, err.name, err.description or "")

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> tuple[Response | str, int]:
        app.logger.exception("unexpected error")
        return error_response(
            500,
            "Internal error",
            "Something went wrong on the server; nothing was saved. Try again, and if it "
            "happens again tell your administrator the time it happened.",
        )


def _return_path() -> str:
    """Where to come back to after login or unlock: the page itself, or for a form the page it was on."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    return safe_next(urlsplit(request.referrer or "").path) or url_for("common.home")


def plain_value(value: Any) -> str:
    """A stored value as people read it: yes/no, lists joined, empty as a dash."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain_value(v) for v in value)
    return str(value)
