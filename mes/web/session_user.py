"""The logged-in user as Flask-Login sees it: a small read-only snapshot loaded per request."""

from __future__ import annotations

from dataclasses import dataclass

from flask_login import UserMixin

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

    def get_id(self) -> str:
        return self.id


def snapshot(user: User) -> SessionUser:
    """A snapshot of a user row."""
    return SessionUser(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        roles=user.role_names,
        must_change_password=user.must_change_password,
        attested=user.attested_at is not None,
    )


def load(user_id: str) -> SessionUser | None:
    """Flask-Login's loader: a deactivated or locked user is logged out at the next request."""
    from mes.web import runtime

    with runtime().uow() as uow:
        user = uow.session.get(User, user_id)
        if user is None or not user.active or user.locked:
            return None
        return snapshot(user)
