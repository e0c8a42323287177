"""Badges and PINs: enrolling and revoking badges, setting PINs (21 CFR 11.200(a)(1), 11.300).

The badge is the identification code, the PIN the password that goes with it. An administrator
enrolls a badge to someone else (never to themselves, as with roles) by scanning it; a lost
badge is revoked, with the reason, and stops identifying anyone at once (11.300(c)). The user
sets their own PIN (after their password), or an administrator sets it from the server's
command line. Every change is an audit entry on the user; neither the code nor the PIN appears
in one (only the badge's hint).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mes.core.access import Permission, check_not_own_access
from mes.core.audit import EntryKind, require_reason
from mes.core.errors import AccountDeactivated, InvalidInput
from mes.core.passwords import password_matches
from mes.core.pins import badge_digest, badge_hint, check_new_pin, hash_pin, pin_matches
from mes.services.context import Context, acting_user, actor_of, authorise
from mes.services.ids import new_id
from mes.services.users import count_failure, find_user, record_user_entry
from mes.store import users as user_store
from mes.store.models import Badge, User
from mes.store.uow import UnitOfWork


class BadgeTaken(InvalidInput):
    """The badge scanned is already enrolled (11.300(a): each badge identifies one person)."""

    http_status = 409


@dataclass(frozen=True)
class BadgeShown:
    """A user's active badge as the administration page shows it (never the code)."""

    hint: str
    enrolled_at: datetime


def user_by_badge(uow: UnitOfWork, badge: str) -> User | None:
    """The user whose active (enrolled, unrevoked) badge this code is, or None.

    A malformed code identifies nobody (None), as an unknown one does.
    """
    try:
        digest = badge_digest(badge)
    except InvalidInput:
        return None
    found = user_store.active_badge_with(uow.session, digest)
    return user_store.user(uow.session, found.user_id) if found is not None else None


def badge_of(uow: UnitOfWork, user: User) -> BadgeShown | None:
    """The user's active badge (its hint and when it was enrolled), or None."""
    found = user_store.active_badge_of(uow.session, user.id)
    return BadgeShown(found.hint, found.enrolled_at) if found is not None else None


def enroll_badge(uow: UnitOfWork, ctx: Context, username: str, badge: str) -> str:
    """Enroll a scanned badge to an active user; returns its hint.

    11.300(a): a badge already enrolled (to anyone) is refused; a user has one active badge
    (revoke the old one first). Nobody enrolls their own badge (11.10(g), as with roles).
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    user = find_user(uow, username)
    check_not_own_access(ctx.user_id, user.id, "badge")
    if not user.active:
        raise AccountDeactivated(f"{user.username} is deactivated: a badge cannot be enrolled.")
    digest, hint = badge_digest(badge), badge_hint(badge)
    user_store.lock_user(uow.session, user.id)
    if user_store.active_badge_with(uow.session, digest) is not None:
        raise BadgeTaken(
            "This badge is already enrolled (a badge identifies one person only).",
            what_to_do="Scan another badge, or revoke this one first where it is enrolled.",
        )
    current = user_store.active_badge_of(uow.session, user.id)
    if current is not None:
        raise InvalidInput(
            f"{user.username} already has badge {current.hint}.",
            what_to_do=f"Revoke it first (mes user badge {user.username} --revoke --reason …).",
        )
    user_store.add_badge(
        uow.session,
        Badge(
            id=new_id(),
            user_id=user.id,
            code_hash=digest,
            hint=hint,
            enrolled_at=ctx.at,
            enrolled_by=ctx.user_id,
        ),
    )
    uow.flush()
    record_user_entry(
        uow, ctx, actor, "badge enrolled", user, new={"badge": hint}, kind=EntryKind.SECURITY
    )
    uow.commit()
    return hint


def revoke_badge(uow: UnitOfWork, ctx: Context, username: str, reason: str) -> str:
    """Revoke a user's active badge (lost, stolen, damaged), with the reason; returns its hint.

    11.300(c): it stops identifying anyone at once — a login or signing with it is refused, and
    the user's sessions that signed by badge take both components again. Audited.
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    reason = require_reason(reason, "revoke a badge")
    user = find_user(uow, username)
    user_store.lock_user(uow.session, user.id)
    current = user_store.active_badge_of(uow.session, user.id)
    if current is None:
        raise InvalidInput(f"{user.username} has no active badge.", what_to_do="Nothing to revoke.")
    current.revoked_at = ctx.at
    current.revoke_reason = reason
    user_store.forget_badge_signings(uow.session, user.id)
    record_user_entry(
        uow,
        ctx,
        actor,
        "badge revoked",
        user,
        new={"badge": current.hint},
        reason=reason,
        kind=EntryKind.SECURITY,
    )
    uow.commit()
    return current.hint


def _store_pin(uow: UnitOfWork, ctx: Context, user: User, pin: str) -> None:
    """Check the PIN against the rules and the user's last PINs, then keep its hash."""
    policy = uow.site.password_policy
    check_new_pin(
        pin, user_store.earlier_pin_hashes(uow.session, user.id, policy.history_depth), policy
    )
    user.pin_hash = hash_pin(pin)
    user.pin_changed_at = ctx.at
    uow.flush()
    user_store.keep_pin_hash(uow.session, user.id, user.pin_hash, ctx.at)


def set_pin(uow: UnitOfWork, ctx: Context, password: str, new_pin: str) -> None:
    """The logged-in user sets or changes their PIN, confirming it with their password.

    A wrong password counts toward lockout (11.300(d)); the PIN rules and history apply
    (:func:`mes.core.pins.check_new_pin`).
    """
    user = acting_user(uow, ctx)
    if not password_matches(user.password_hash, password):
        count_failure(uow, ctx, user, "PIN change failed")
    if pin_matches(user.pin_hash, new_pin):
        raise InvalidInput("The new PIN must differ from the current one.")
    _store_pin(uow, ctx, user, new_pin)
    user.failed_attempts = 0
    record_user_entry(
        uow, ctx, actor_of(user), "PIN changed", user, new=None, kind=EntryKind.SECURITY
    )
    uow.commit()


def set_pin_for(uow: UnitOfWork, ctx: Context, username: str, pin: str) -> None:
    """An administrator sets a user's PIN (server command line), the rules and history applying.

    Audited as a security event; the PIN itself is never recorded.
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    user = find_user(uow, username)
    check_not_own_access(ctx.user_id, user.id, "PIN (set it on your account page)")
    if not user.active:
        raise AccountDeactivated(f"{user.username} is deactivated.")
    _store_pin(uow, ctx, user, pin)
    record_user_entry(uow, ctx, actor, "PIN set", user, new=None, kind=EntryKind.SECURITY)
    uow.commit()
