"""Look-backs QA opened at the hub: the subject (what is suspect) and why.

A GMP record, append-only (triggers in migration 0018); opening one is an entry of the hub's
audit trail. The dispositions of its batches are entries of each batch's review chain
(:mod:`mes.core.lookback`), not rows here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mes.core.lookback import UsageKind
from mes.store.models.base import Base, UTCDateTime, known


class LookBack(Base):
    """A look-back opened by QA on one subject (a lot, an instrument, an operator, a recipe)."""

    __tablename__ = "lookbacks"
    __table_args__ = (
        known("subject_kind", UsageKind),
        Index("ix_lookbacks_opened_at", "opened_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(2000))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
