"""The site's audit chain and the heads of every hash chain (see mes.core.audit, mes.core.heads)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CheckConstraint, Index
from sqlalchemy.types import JSON, Integer, String, Text

from mes.core.audit import EntryKind
from mes.store.models.base import Base, SealedColumns, known


class ChainHead(Base):
    """The last entry of each hash chain; its row lock serialises appends."""

    __tablename__ = "chain_heads"
    __table_args__ = (CheckConstraint("last_seq >= 0", name="seq_not_negative"),)

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The site's signature of the head as it moved (mes.core.heads): a rewritten row fails it.
    at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    signature: Mapped[str | None] = mapped_column(String(100), nullable=True)


class AuditEntry(SealedColumns, Base):
    """One entry of the site's audit chain (append-only; see mes.core.audit)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        known("kind", EntryKind),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("ix_audit_entries_record", "record_type", "record_id"),
        Index("ix_audit_entries_actor_at", "actor_username", "at"),
        Index("ix_audit_entries_at", "at"),
    )

    prev: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(200))
    old: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    def body(self) -> dict[str, Any]:
        """The entry's content exactly as it was hashed and signed."""
        return {
            "seq": self.seq,
            "prev": self.prev,
            "at": self.at,
            "site": self.site,
            "terminal": self.terminal,
            "actor": {
                "user_id": self.actor_id,
                "username": self.actor_username,
                "name": self.actor_name,
            },
            "kind": self.kind,
            "action": self.action,
            "record": {"type": self.record_type, "id": self.record_id},
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
        }
