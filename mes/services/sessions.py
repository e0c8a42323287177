"""Logged-in sessions kept on the server (21 CFR 11.10(d), 11.200(a)(1), 11.300(d)).

The browser holds only a random session ID; the server keeps its SHA-256 with the user, the
terminal, when it was opened and last used, whether it is locked, and whether the user has signed
in it. So logging out, the lock button and the inactivity lock hold for every copy of the cookie,
an absolute lifetime ends every session, and a password change, deactivation or lockout ends all
the user's sessions in the transaction that changes the user
(:func:`mes.services.users.end_sessions`).

Session rows are session state, not GMP data: they are deleted when the session ends. Logins,
failed attempts and lockouts are in the audit trail (:mod:`mes.services.users`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mes.core.sessions import (
    SessionPolicy,
    SessionState,
    needs_touch,
    new_session_token,
    session_state,
    token_digest,
)
from mes.services import esign
from mes.services.context import Context
from mes.store import sessions as session_store
from mes.store import users as user_store
from mes.store.models import User as User  # the row resumed sessions carry (for annotations)
from mes.store.models import WebSession
from mes.store.uow import UnitOfWork


@dataclass(frozen=True)
class OpenSession:
    """A session as a request finds it: whose, locked or not, signed in or not."""

    user: User
    locked: bool
    signed: bool
    signed_with: str | None = None  # how the session's first signing identified the user


def open_session(uow: UnitOfWork, ctx: Context, policy: SessionPolicy) -> str:
    """Open a session for the user who just authenticated; returns the ID for the cookie.

    Sessions of any user past their absolute lifetime are purged here, so abandoned sessions do
    not pile up.
    """
    if ctx.user_id is None:
        raise ValueError("a session belongs to a user")
    token = new_session_token()
    session_store.delete_sessions_opened_before(uow.session, ctx.at - policy.lifetime)
    session_store.add_web_session(
        uow.session,
        digest=token_digest(token),
        user_id=ctx.user_id,
        terminal=ctx.terminal or "unknown",
        terminal_id=ctx.terminal_id,
        at=ctx.at,
    )
    uow.commit()
    return token


def resume_session(
    uow: UnitOfWork, token: str, at: datetime, policy: SessionPolicy, *, activity: bool
) -> OpenSession | None:
    """The session behind a request's session ID, judged now; None when there is none (any more).

    11.10(d): a session past its lifetime, or whose user is deactivated or locked, is deleted; one
    idle past the timeout is locked and its continuous signing session ends (11.200(a)(1)(ii)).
    ``activity``: the request is the user's own (not a page's poll): it keeps the session open.
    """
    digest = token_digest(token)
    with uow.reader() as reader:  # most requests only read: no write lock (SQLite: one writer)
        row = session_store.web_session(reader.session, digest)
        user = user_store.user(reader.session, row.user_id) if row is not None else None
    if row is None:
        return None
    state = session_state(
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        locked=row.locked,
        now=at,
        policy=policy,
    )
    if user is None or not user.active or user.locked or state is SessionState.EXPIRED:
        session_store.delete_web_session(uow.session, digest)
        uow.commit()
        return None
    locked, signed, signed_with = row.locked, row.signed, row.signed_with
    if state is SessionState.LOCKED and not row.locked:
        locked, signed, signed_with = True, False, None
        _set(uow, digest, locked=True, signed=False, signed_with=None)
        uow.commit()
    elif state is SessionState.OPEN and activity and needs_touch(row.last_seen_at, at, policy):
        _set(uow, digest, last_seen_at=at)
        uow.commit()
    return OpenSession(user=user, locked=locked, signed=signed, signed_with=signed_with)


def find_session(uow: UnitOfWork, token: str) -> WebSession | None:
    """The stored session of this ID, as it is (nothing judged, nothing written)."""
    return session_store.web_session(uow.session, token_digest(token))


def lock_session(uow: UnitOfWork, token: str) -> None:
    """Lock the session (the lock button, or the page's idle timer); signing starts over."""
    _set(uow, token_digest(token), locked=True, signed=False, signed_with=None)
    uow.commit()


def unlock_session(
    uow: UnitOfWork,
    ctx: Context,
    token: str,
    password: str,
    clock: Callable[[], datetime] | None = None,
    method: str = "password",
) -> None:
    """Unlock a locked session with the logged-in user's password or PIN (``method``).

    A wrong one counts toward the same lockout (see :func:`esign.reauthenticate`).

    ``clock``: the time after the password check, from which the session is idle again (the
    check takes a while; without it, ``ctx.at``).
    """
    esign.reauthenticate(uow, ctx, password, method)
    # A signature that raced the lock may have marked the session signed after the lock cleared
    # it: the first signing after an unlock needs every component again (11.200(a)(1)(ii)).
    _set(
        uow,
        token_digest(token),
        locked=False,
        signed=False,
        signed_with=None,
        last_seen_at=clock() if clock else ctx.at,
    )
    uow.commit()


def mark_signed(uow: UnitOfWork, token: str, method: str = "password") -> None:
    """The user signed in this session: later signings need the secret only (11.200(a)(1)(i)).

    ``method``: how this first signing identified the user (a :class:`SigningMethod` value):
    later signings take the password after a user ID, the PIN after a badge.
    """
    # Not once locked: a lock between the signature and this holds.
    session_store.mark_web_session_signed(uow.session, token_digest(token), method)
    uow.commit()


def end_session(uow: UnitOfWork, token: str) -> None:
    """Log out: the session is gone, for every copy of its cookie."""
    session_store.delete_web_session(uow.session, token_digest(token))
    uow.commit()


def _set(uow: UnitOfWork, digest: str, **values: object) -> None:
    # A plain UPDATE: a session deleted meanwhile (logout elsewhere) matches no row, which is fine.
    session_store.update_web_session(uow.session, digest, **values)
