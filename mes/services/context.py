"""Who acts, where and when: passed explicitly into every service call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mes.core.access import Permission, require
from mes.core.audit import Actor
from mes.core.errors import (
    AccountDeactivated,
    AccountLocked,
    NotAuthorised,
    PasswordChangeRequired,
)
from mes.core.passwords import must_change_password
from mes.store import users
from mes.store.models import User
from mes.store.uow import UnitOfWork


@dataclass(frozen=True)
class Context:
    """Who acts, from which terminal, at what server time.

    ``user_id`` None means the server's command line; ``terminal`` is the label recorded in
    every entry; ``terminal_id`` is the registered terminal the browser is bound to, if any;
    ``signed_with``: how the first signing of the continuous session identified the user
    (:class:`mes.core.esign.SigningMethod` value; None before it), so that later signings take
    that method's secret (11.200(a)(1)(i)). ``in_session_of``: when a witness signs in place
    (:func:`mes.services.esign.witness_context`), ``user_id`` is the witness and this is the
    logged-in user of the session it was given in.
    """

    at: datetime
    user_id: str | None
    terminal: str | None
    terminal_id: str | None = None
    signed_with: str | None = None
    in_session_of: str | None = None

    @classmethod
    def command_line(cls, at: datetime, os_user: str, host: str) -> Context:
        """The ``mes`` command run on the server: shell access there is administration."""
        return cls(at=at, user_id=None, terminal=f"command line {os_user}@{host}")


def acting_user(uow: UnitOfWork, ctx: Context, *, changing_password: bool = False) -> User:
    """The logged-in user behind ``ctx``, who must be able to act now.

    Still active, not locked, and — unless the call is the password change itself — not due to
    change their password (after an administrator's reset, or at expiry).
    """
    if ctx.user_id is None:
        raise NotAuthorised("This action needs a logged-in user.", what_to_do="Log in first.")
    user = users.user(uow.session, ctx.user_id)
    if user is None:
        raise NotAuthorised("Your session names an unknown user.", what_to_do="Log in again.")
    ensure_account_usable(user)
    if not changing_password and must_change_password(
        user.must_change_password, user.password_changed_at, ctx.at, uow.site.password_policy
    ):
        raise PasswordChangeRequired(
            "You must change your password before you continue.",
            what_to_do="Choose a new password.",
        )
    return user


def ensure_account_usable(user: User) -> None:
    """A deactivated or locked account can neither act nor authenticate (11.10(d), 11.300(d))."""
    if not user.active:
        raise AccountDeactivated(
            f"The account {user.username} is deactivated.", what_to_do="Ask an administrator."
        )
    if user.locked:
        raise AccountLocked(
            f"The account {user.username} is locked.",
            what_to_do="Ask an administrator to unlock it.",
        )


def authorise(uow: UnitOfWork, ctx: Context, permission: Permission) -> Actor:
    """The authority check of a service (21 CFR 11.10(g)); returns the actor to record.

    The server's command line acts as the system (only administrators have a shell there).
    """
    if ctx.user_id is None:
        return system_actor(ctx)
    user = acting_user(uow, ctx)
    require(user.role_names, permission)
    return actor_of(user)


def actor_of(user: User) -> Actor:
    """The user as recorded in entries."""
    return Actor(user_id=user.id, username=user.username, name=user.full_name)


def system_actor(ctx: Context) -> Actor:
    """The instance itself, acting from the server's command line."""
    return Actor(user_id=None, username="system", name=f"System ({ctx.terminal})")
