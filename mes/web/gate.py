"""Who gets in: sessions, login, CSRF, the request gate and the browser's security headers.

Every route needs a logged-in user except the allow-list ``PUBLIC_ENDPOINTS`` (21 CFR 11.10(d)).
A session idle for longer than the site's timeout is locked and asks for the password again
(keeping the page the user was on); the lock also ends the "continuous session" for signatures
(11.200(a)(1)(ii)). A user whose password must change goes nowhere else first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Flask, Response, g, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from mes.services.runtime import Runtime
from mes.web import session_user, terminal_binding
from mes.web.errors import error_response, wants_json
from mes.web.session_user import session_locked

# The recipe format's JSON Schema is public: authors' editors fetch it without logging in.
PUBLIC_ENDPOINTS = frozenset({"static", "common.login", "common.health", "authoring.schema"})
# A locked session may only unlock, log out, or lock (the page's idle timer may post once the
# server has already locked it).
UNLOCK_ENDPOINTS = frozenset({"common.unlock", "common.logout", "common.lock"})
PASSWORD_CHANGE_ENDPOINTS = frozenset({"common.change_password", "common.logout", "common.lock"})
# Pages poll these by themselves: a poll is not the user's activity, so it never keeps an idle
# session from locking.
POLL_ENDPOINTS = frozenset({"network.alerts", "network.board_json"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)

csrf = CSRFProtect()
login_manager = LoginManager()


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


def safe_next(target: str | None) -> str | None:
    """Only local paths may be redirect targets (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def init_sessions(app: Flask) -> None:
    """Server-side sessions named by a cookie; Flask-Login reads the user from them; CSRF."""
    app.session_interface = MesSessionInterface()
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "common.login"
    # The user comes from the server-side session named by the cookie (mes.services.sessions);
    # the cookie holds no user ID, so Flask-Login's own session protection has nothing to guard.
    login_manager.session_protection = None
    login_manager.request_loader(session_user.load)


def init_gate(app: Flask, rt: Runtime) -> None:
    """Before every request: the server time, the terminal, and whether the user may pass."""

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
                return error_response(  # type: ignore[return-value]
                    401, "Session locked", "Unlock the session with your password."
                )
            return redirect(url_for("common.unlock", next=_return_path()))
        if (
            current_user.must_change_password
            and not session_locked()  # unlock first: else unlock and change redirect in a loop
            and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS
        ):
            return redirect(url_for("common.change_password", next=_return_path()))
        return None


def init_security_headers(app: Flask) -> None:
    """No sniffing, no framing, same-origin referrers, a strict CSP; no caching of user pages."""

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if current_user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _return_path() -> str:
    """Where to come back to after login or unlock: the page itself, or for a form the page it was on."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    return safe_next(urlsplit(request.referrer or "").path) or url_for("common.home")
