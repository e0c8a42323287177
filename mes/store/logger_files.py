"""Logger files as received: kept once per SHA-256, read back by it (see models/logger.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mes.store.models import LoggerFile


def keep_file(session: Session, sha256: str, content: bytes, at: datetime) -> None:
    """Add the file unless a file with this hash is kept already (the same bytes)."""
    if session.get(LoggerFile, sha256) is None:
        session.add(LoggerFile(sha256=sha256, size=len(content), content=content, received_at=at))
        session.flush()


def file_content(session: Session, sha256: str) -> bytes | None:
    """The bytes of the file with this hash, or None when none is kept here."""
    row = session.get(LoggerFile, sha256)
    return None if row is None else bytes(row.content)
