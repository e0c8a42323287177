"""The logged-in user as Flask-Login sees it: a small read-only snapshot loaded per request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask_login import UserMixin

from mes.core.passwords import PasswordPolicy, must_change_password
from mes.store.models import User


@dataclass(frozen=True)
class SessionUser(UserMixin):
    """What views and templates need to know about the logged-in user."""

    id: str
    username: str
    full_name: str
    roles: frozenset[str]
    must_change_password: bool
    attested: bool
    session_generation: int

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
        session_generation=user.session_generation,
    )


def load(user_id: str) -> SessionUser | None:
    """Flask-Login's loader: the logged-in user, or None when the session must end.

    It ends when the user is locked or deactivated, or was locked, deactivated or had a
    password change since the session began (the session generation moved on).
    """
    from flask import session

    from mes.web import runtime

    with runtime().uow(read_only=True) as uow:
        user = uow.session.get(User, user_id)
        if user is None or not user.active or user.locked:
            return None
        if session.get("generation") != user.session_generation:
            return None
        return snapshot(user, uow.site.password_policy)
