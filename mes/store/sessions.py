"""Logged-in sessions as stored: the writes that other services make in their own transaction."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from mes.store.models import WebSession


def delete_user_sessions(session: Session, user_id: str) -> None:
    """Delete every session of a user (the caller commits)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
