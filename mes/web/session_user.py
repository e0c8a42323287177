"""The logged-in user as Flask-Login sees it, found through the server-side session.

The browser's cookie carries only the session's random ID (``SESSION_KEY``); who is logged in,
whether the session is locked, and whether the user has signed in it are kept on the server
(:mod:`mes.services.sessions`) and judged there on every request (21 CFR 11.10(d)).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Request, g, session
from flask_login import UserMixin, current_user, logout_user

from mes.core.passwords import PasswordPolicy, must_change_password
from mes.services import sessions
from mes.services.sessions import User

SESSION_KEY = "session_id"


@dataclass(frozen=True)
class SessionUser(UserMixin):
    """What views and templates need to know about the logged-in user."""

    id: str
    username: str
    full_name: str
    roles: frozenset[str]
    must_change_password: bool
    attested: bool

    def get_id(self) -> str:
        return self.id


def snapshot(user: User, policy: PasswordPolicy) -> SessionUser:
    """A snapshot of a user row (whether a password change is due is decided now)."""
    return SessionUser(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        roles=user.role_names,
        must_change_password=must_change_password(
            user.must_change_password, user.password_changed_at, datetime.now(UTC), policy
        ),
        attested=user.attested_at is not None,
    )


def session_token() -> str | None:
    """This browser's session ID, if it has one."""
    token = session.get(SESSION_KEY)
    return token if isinstance(token, str) else None


def load(_request: Request) -> SessionUser | None:
    """Flask-Login's request loader: the session's user, or None when there is no open session.

    The session ends when it is unknown (logged out, ended by a lockout, deactivation or password
    change) or past its lifetime; it locks when idle past the timeout (see ``session_locked``).
    """
    from mes.web import is_user_activity, runtime

    g.session_locked = False
    g.session_signed = False
    g.session_signed_with = None
    g.session_signed_with = None
    token = session_token()
    if token is None:
        return None
    rt = runtime()
    with rt.uow() as uow:
        found = sessions.resume_session(
            uow,
            token,
            g.get("now") or datetime.now(UTC),
            rt.settings.session_policy,
            activity=is_user_activity(),
        )
        if found is None:
            session.pop(SESSION_KEY, None)
            return None
        g.session_locked = found.locked
        g.session_signed = found.signed
        g.session_signed_with = found.signed_with if found.signed else None
        return snapshot(found.user, uow.site.password_policy)


def session_locked() -> bool:
    """Whether this request's session is locked (inactivity or the lock button)."""
    if "session_locked" not in g:
        _ = current_user.is_authenticated  # loading the user judges the session
    return bool(g.get("session_locked"))


def start(token: str) -> None:
    """Carry a newly opened session's ID in this browser's cookie (a fresh cookie)."""
    session.clear()
    session[SESSION_KEY] = token
    g.pop("_login_user", None)  # Flask-Login loads the new session's user on next access


def end() -> None:
    """Forget the session in this browser (the server's row is ended by the caller)."""
    logout_user()
    session.clear()
    g.session_locked = False
    g.session_signed = False
