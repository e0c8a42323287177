"""Small helpers for views: the service context of the request, and who may see a page."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import abort, g, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from mes.core.access import Permission, allowed
from mes.core.throttle import source_of
from mes.services.context import Context


def service_context() -> Context:
    """Actor, terminal and server time of this request, as services take them."""
    terminal = g.get("terminal")
    return Context(
        at=g.now,
        user_id=current_user.id if current_user.is_authenticated else None,
        terminal=g.terminal_label,
        terminal_id=terminal["id"] if terminal else None,
        signed_with=session_signed_with(),
    )


def request_source() -> str:
    """The address refusals of this request are counted under (:func:`source_of`).

    The connection's peer: ``X-Forwarded-For`` counts only through the reverse proxies the
    site's ``proxy_hops`` names (Werkzeug's ProxyFix), never because a client sent it.
    """
    return source_of(request.remote_addr)


def first_signing_in_session() -> bool:
    """Whether the next signature is the first of this continuous session (11.200(a)(1)).

    The server-side session keeps whether the user signed in it; a new session, the lock and
    inactivity start over (11.200(a)(1)(ii)).
    """
    return not (current_user.is_authenticated and g.get("session_signed"))


def session_signed_with() -> str | None:
    """How the first signing of this continuous session identified the user (None before it).

    Later signings take that method's secret: the PIN after a badge, else the password.
    """
    if first_signing_in_session():
        return None
    return g.get("session_signed_with") or "password"


def requires(permission: Permission):
    """Only users whose roles grant ``permission`` see the page (the rule is in the core)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if not allowed(current_user.roles, permission):
                abort(403, f"You are not allowed to {permission.value}.")
            return view(*args, **kwargs)

        return wrapped

    return decorator
