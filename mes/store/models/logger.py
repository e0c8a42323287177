"""Temperature logger files as received (the evidence behind a ``logger_imported`` entry).

Content-addressed by SHA-256: the batch ledger's entry names the file by its hash, so the same
file uploaded twice is one row, and a row that no longer hashes to its key is detectably
altered. Append-only (triggers in migration 0015): a file received is never changed or deleted.
Kept in the database, not under the instance folder: it is written in the same transaction as
its ledger entry (a refused import leaves nothing), backed up with the database, and never
readable by other users of the host.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mes.core.logger import MAX_BYTES
from mes.store.models.base import Base, UTCDateTime


class LoggerFile(Base):
    """One logger file, byte for byte as uploaded, keyed by its SHA-256."""

    __tablename__ = "logger_files"
    __table_args__ = (CheckConstraint(f"size > 0 AND size <= {MAX_BYTES}", name="size_accepted"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column()
    content: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
