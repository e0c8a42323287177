"""User accounts as stored: users, roles, earlier password and PIN hashes, and badges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from mes.store.models import Badge, PasswordHistory, PinHistory, User, WebSession


def user(session: Session, user_id: str | None, *, lock: bool = False) -> User | None:
    """The user with this ID (its row locked for the transaction when ``lock``), or None."""
    if user_id is None:
        return None
    return session.get(User, user_id, with_for_update=lock or None)


def lock_user(session: Session, user_id: str) -> None:
    """Lock the user's row for the rest of the transaction."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


def user_named(session: Session, username: str) -> User | None:
    """The user with this user ID (the name they log in with), or None."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def username_taken(session: Session, username: str) -> bool:
    """Whether a user with this user ID exists or ever existed (users are never deleted)."""
    return session.execute(select(User.id).where(User.username == username)).first() is not None


def password_hash_of(session: Session, user_id: str) -> str | None:
    """The user's stored password hash, or None when there is no such user."""
    return session.execute(
        select(User.password_hash).where(User.id == user_id)
    ).scalar_one_or_none()


def password_hash_named(session: Session, username: str) -> str | None:
    """The stored password hash of the user with this user ID, or None."""
    return session.execute(
        select(User.password_hash).where(User.username == username)
    ).scalar_one_or_none()


def keep_password_hash(session: Session, user_id: str, password_hash: str, at: datetime) -> None:
    """Remember a password the user set (its hash), so it is not reused."""
    session.add(PasswordHistory(user_id=user_id, password_hash=password_hash, set_at=at))


def earlier_password_hashes(session: Session, user_id: str, depth: int) -> list[str]:
    """The hashes of the user's last ``depth`` passwords, newest first."""
    return _newest_hashes(session, PasswordHistory.password_hash, user_id, depth)


def _newest_hashes(
    session: Session, hashes: InstrumentedAttribute[str], user_id: str, depth: int
) -> list[str]:
    """``hashes`` (a history table's hash column) of the user's last ``depth`` rows, newest first."""
    history = hashes.class_
    return list(
        session.execute(
            select(hashes)
            .where(history.user_id == user_id)
            .order_by(history.id.desc())
            .limit(depth)
        ).scalars()
    )


def all_users(session: Session) -> list[User]:
    """Every user ever created, active first, by user ID."""
    return list(session.execute(select(User).order_by(User.active.desc(), User.username)).scalars())


def pin_hash_of(session: Session, user_id: str) -> str | None:
    """The user's stored PIN hash, or None (no such user, or no PIN set)."""
    return session.execute(select(User.pin_hash).where(User.id == user_id)).scalar_one_or_none()


def keep_pin_hash(session: Session, user_id: str, pin_hash: str, at: datetime) -> None:
    """Remember a PIN the user set (its hash), so it is not reused."""
    session.add(PinHistory(user_id=user_id, pin_hash=pin_hash, set_at=at))


def earlier_pin_hashes(session: Session, user_id: str, depth: int) -> list[str]:
    """The hashes of the user's last ``depth`` PINs, newest first."""
    return _newest_hashes(session, PinHistory.pin_hash, user_id, depth)


def active_badge_with(session: Session, code_hash: str) -> Badge | None:
    """The enrolled, unrevoked badge whose code has this SHA-256, or None."""
    return session.execute(
        select(Badge).where(Badge.code_hash == code_hash, Badge.revoked_at.is_(None))
    ).scalar_one_or_none()


def active_badge_of(session: Session, user_id: str) -> Badge | None:
    """The user's enrolled, unrevoked badge, or None."""
    return session.execute(
        select(Badge).where(Badge.user_id == user_id, Badge.revoked_at.is_(None))
    ).scalar_one_or_none()


def badge_holder(session: Session, code_hash: str) -> tuple[str, str | None] | None:
    """(user ID, PIN hash) of the holder of the active badge with this code hash, or None."""
    row = session.execute(
        select(User.username, User.pin_hash)
        .join(Badge, Badge.user_id == User.id)
        .where(Badge.code_hash == code_hash, Badge.revoked_at.is_(None))
    ).first()
    return (row[0], row[1]) if row is not None else None


def add_badge(session: Session, badge: Badge) -> None:
    """Enroll a badge (the caller checked that its code and its user have no active one)."""
    session.add(badge)


def forget_badge_signings(session: Session, user_id: str) -> None:
    """Sessions of the user whose first signing was by badge sign in full again (revoked badge)."""
    session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.signed_with == "badge_pin")
        .values(signed=False, signed_with=None)
    )
