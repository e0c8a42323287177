"""Hub ↔ spoke sync: spokes and their enrollment, nonces, the outbox, the sync log, receipts, anchors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CheckConstraint, ForeignKey, Index
from sqlalchemy.types import JSON, Boolean, Float, Integer, String, Text

from mes.core.keys import SitePublicKey
from mes.core.site import SpokeStatus
from mes.core.sync import OutboxState, SyncOutcome
from mes.store.models.base import Base, UTCDateTime, known


class Spoke(Base):
    """At the hub: a spoke site, its pinned public key and whether it may push (never deleted)."""

    __tablename__ = "spokes"
    __table_args__ = (known("status", SpokeStatus),)

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    public_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Its clock as last measured from a signed request: timestamp minus the hub's receipt time.
    clock_offset_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    clock_measured_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def public_key(self) -> SitePublicKey | None:
        """The key the spoke enrolled with (None before enrollment)."""
        if self.public_key_pem is None:
            return None
        return SitePublicKey.from_pem(self.public_key_pem.encode("ascii"))


class EnrollmentCode(Base):
    """At the hub: a one-time enrollment code for a spoke (only its SHA-256 is kept)."""

    __tablename__ = "enrollment_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    spoke_code: Mapped[str] = mapped_column(ForeignKey("spokes.code"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SyncNonce(Base):
    """At the hub: request nonces seen within the clock-skew window (replays are refused).

    Kept in the database, not in a process, so every worker of the hub refuses a replay.
    """

    __tablename__ = "sync_nonces"
    __table_args__ = (Index("ix_sync_nonces_seen_at", "seen_at"),)

    site: Mapped[str] = mapped_column(String(12), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RefusalWindow(Base):
    """Refused anonymous attempts of one kind from one source in the current window.

    Not a GMP record: a counter (see :mod:`mes.core.throttle`), updated in place and deleted
    once its window has been summarised in the audit trail or the sync log. In the database, not
    in a process, so every worker counts the same attempts.
    """

    __tablename__ = "refusal_windows"
    __table_args__ = (Index("ix_refusal_windows_started", "started"),)

    attempt: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    started: Mapped[datetime] = mapped_column(UTCDateTime())
    refused: Mapped[int] = mapped_column(Integer)
    turned_away: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON)


class HubLink(Base):
    """At a spoke: the hub it enrolled with (one row)."""

    __tablename__ = "hub_link"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hub_url: Mapped[str] = mapped_column(String(500))
    hub_code: Mapped[str] = mapped_column(String(12))
    hub_key_id: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SyncOutbox(Base):
    """At a spoke: per batch, how far the hub has acknowledged its ledger (the outbox mark).

    Written in the same transaction as every ledger entry (the outbox pattern), so nothing
    recorded can be missed; the mark moves only when the hub answers with the entry's hash.
    """

    __tablename__ = "sync_outbox"
    __table_args__ = (
        known("state", OutboxState),
        CheckConstraint("acked_seq >= 0 AND acked_seq <= last_seq", name="acked_within"),
        Index("ix_sync_outbox_pending", "pending"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    acked_seq: Mapped[int] = mapped_column(Integer, default=0)
    acked_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pending: Mapped[bool] = mapped_column(Boolean)
    priority: Mapped[bool] = mapped_column(Boolean, default=False)  # a deviation waits in it
    state: Mapped[str] = mapped_column(String(16))
    refusal: Mapped[str | None] = mapped_column(Text, nullable=True)
    refusal_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SyncEvent(Base):
    """Both sides: what sync did and what it refused, with the reason (append-only)."""

    __tablename__ = "sync_events"
    __table_args__ = (
        known("outcome", SyncOutcome),
        Index("ix_sync_events_at", "at"),
        Index("ix_sync_events_batch", "batch_id"),
        # The network page: each spoke's last accepted ingest, and the newest refusals.
        Index("ix_sync_events_action_outcome_peer_at", "action", "outcome", "peer", "at"),
        Index("ix_sync_events_outcome_id", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(24))  # push, ingest, install, enroll, import…
    peer: Mapped[str | None] = mapped_column(String(12), nullable=True)
    via: Mapped[str] = mapped_column(String(12))  # network or file
    batch_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    item: Mapped[str | None] = mapped_column(String(200), nullable=True)
    first_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(12))
    code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class HubReceipt(Base):
    """At a spoke: the hub's signed acknowledgement of a batch head (append-only).

    The hub signed ``ack_message(site, batch, last_seq, last_hash, nonce)`` with its key: the
    spoke's receipt that its ledger reached this entry, which a database superuser at the spoke
    cannot forge (mes.core.heads).
    """

    __tablename__ = "hub_receipts"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_hash: Mapped[str] = mapped_column(String(64))
    hub: Mapped[str] = mapped_column(String(12))
    nonce: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[str] = mapped_column(String(27))


class AnchoredHead(Base):
    """Both sides: a signed audit-chain head kept outside its own site (append-only).

    At the hub: each spoke's signed audit head with the hub's countersignature. At a spoke: its
    own head as the hub countersigned it, and the hub's signed audit head as last seen.
    """

    __tablename__ = "anchored_heads"
    __table_args__ = (Index("ix_anchored_heads_chain_seq", "chain", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(27))
    signature: Mapped[str] = mapped_column(String(100))
    countersigned_by: Mapped[str | None] = mapped_column(String(12), nullable=True)
    countersigned_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    countersignature: Mapped[str | None] = mapped_column(String(100), nullable=True)
    kept_at: Mapped[str] = mapped_column(String(27))
