"""Logged-in sessions as stored (only the SHA-256 of each session ID is kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from mes.store.models import WebSession


def web_session(session: Session, digest: str) -> WebSession | None:
    """The stored session with this ID digest, or None."""
    return session.get(WebSession, digest)


def add_web_session(
    session: Session,
    *,
    digest: str,
    user_id: str,
    terminal: str,
    terminal_id: str | None,
    at: datetime,
) -> None:
    """Keep a newly opened session: open, not locked, not yet signed in."""
    session.add(
        WebSession(
            id_hash=digest,
            user_id=user_id,
            terminal=terminal,
            terminal_id=terminal_id,
            created_at=at,
            last_seen_at=at,
            locked=False,
            signed=False,
        )
    )


def delete_sessions_opened_before(session: Session, before: datetime) -> None:
    """Delete every session opened before ``before`` (past its lifetime)."""
    session.execute(delete(WebSession).where(WebSession.created_at < before))


def delete_web_session(session: Session, digest: str) -> None:
    """Delete one session (logout, or judged ended)."""
    session.execute(delete(WebSession).where(WebSession.id_hash == digest))


def update_web_session(session: Session, digest: str, **values: object) -> None:
    """Change a session's columns; a session deleted meanwhile matches no row, which is fine."""
    session.execute(update(WebSession).where(WebSession.id_hash == digest).values(**values))


def mark_web_session_signed(session: Session, digest: str, method: str = "password") -> None:
    """The user signed in the session, by ``method`` (not once locked: a lock between holds)."""
    session.execute(
        update(WebSession)
        .where(WebSession.id_hash == digest, WebSession.locked.is_(False))
        .values(signed=True, signed_with=method)
    )


def delete_user_sessions(session: Session, user_id: str) -> None:
    """Delete every session of a user (the caller commits)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
