"""Tables of the site database.

CHECK constraints mirror the core's enums; triggers (in the migrations) make GMP tables
append-only. The schema is created and changed only by Alembic migrations.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from mes.core.access import Role
from mes.core.audit import EntryKind
from mes.core.clock import as_utc
from mes.core.keys import SitePublicKey
from mes.core.lifecycle import VersionState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store UTC."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return UTC-aware datetimes."""
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    """Declarative base with a global naming convention for constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A person with a user ID. Never deleted, never renamed, never given to someone else."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("failed_attempts >= 0", name="failed_attempts_not_negative"),
        CheckConstraint("username = lower(username)", name="username_lower_case"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    attested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> frozenset[str]:
        """The roles the user holds now."""
        return frozenset(r.role for r in self.roles)


class WebSession(Base):
    """A logged-in browser session, kept on the server (only its ID is in the browser's cookie).

    Session state, not GMP data: a row is deleted when the session ends (logout, lifetime, the
    user's password change, deactivation or lockout); logins and lockouts are in the audit trail.
    ``id_hash`` is the SHA-256 of the session ID, so a reader of the database cannot use it.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (CheckConstraint("last_seen_at >= created_at", name="seen_after_created"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    terminal: Mapped[str] = mapped_column(String(200))
    terminal_id: Mapped[str | None] = mapped_column(ForeignKey("terminals.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    # 11.200(a)(1): the user has signed in this continuous session (later signings: password only).
    signed: Mapped[bool] = mapped_column(Boolean, default=False)


class UserRole(Base):
    """A role held by a user (current state; every grant and removal is in the audit trail)."""

    __tablename__ = "user_roles"
    __table_args__ = (CheckConstraint(_in("role", [r.value for r in Role]), name="known_role"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    user: Mapped[User] = relationship(back_populates="roles")


class PasswordHistory(Base):
    """Every password hash a user has had (append-only), for the history rule."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrainingRecord(Base):
    """A qualification for a procedure, or its withdrawal (append-only)."""

    __tablename__ = "training_records"
    __table_args__ = (
        CheckConstraint(
            "expires_on IS NULL OR expires_on >= qualified_on", name="expiry_after_qualification"
        ),
        Index("ix_training_records_user_procedure", "user_id", "procedure"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    procedure: Mapped[str] = mapped_column(String(200))
    qualified_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class Terminal(Base):
    """A registered workstation of this site (21 CFR 11.10(h)). Never deleted."""

    __tablename__ = "terminals"
    __table_args__ = (UniqueConstraint("site", "name", name="uq_terminals_site_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registered_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)


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


class AuditEntry(Base):
    """One entry of the site's audit chain (append-only; see mes.core.audit)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        CheckConstraint(_in("kind", [k.value for k in EntryKind]), name="known_kind"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("ix_audit_entries_record", "record_type", "record_id"),
        Index("ix_audit_entries_actor_at", "actor_username", "at"),
        Index("ix_audit_entries_at", "at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    prev: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[str] = mapped_column(String(27))  # UTC text exactly as hashed
    site: Mapped[str] = mapped_column(String(12))
    terminal: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_username: Mapped[str] = mapped_column(String(32))
    actor_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(200))
    old: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    signature: Mapped[str] = mapped_column(String(100))

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


# --- master recipes ------------------------------------------------------------------------


class RecipeVersion(Base):
    """A master-recipe version at the hub: its content (immutable once in review) and state.

    The state and who signed are projections; the signatures and every transition are entries
    of the audit chain. Never deleted; a trigger refuses content changes outside draft.
    """

    __tablename__ = "recipe_versions"
    __table_args__ = (
        UniqueConstraint("recipe_code", "version", name="uq_recipe_versions_code_version"),
        CheckConstraint(_in("status", [s.value for s in VersionState]), name="known_status"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_recipe_versions_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipe_code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    product_code: Mapped[str] = mapped_column(String(40))
    product_name: Mapped[str] = mapped_column(String(200))
    modality: Mapped[str] = mapped_column(String(40))
    change_reason: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    compiled: Mapped[str] = mapped_column(Text)  # RFC 8785 canonical JSON, exactly as hashed
    source_name: Mapped[str] = mapped_column(String(200))
    source_text: Mapped[str] = mapped_column(Text)  # the YAML as imported
    status: Mapped[str] = mapped_column(String(16), default=VersionState.DRAFT.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    authored_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    effective_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RecipePublication(Base):
    """A signed bundle the hub published for some sites (append-only)."""

    __tablename__ = "recipe_publications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("recipe_versions.id"), index=True)
    sites: Mapped[list[str]] = mapped_column(JSON)
    bundle_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # The JWS exactly as signed, served to the spokes it targets (None: published before 0004).
    token: Mapped[str | None] = mapped_column(Text, nullable=True)


class InstalledRecipe(Base):
    """A hub-signed recipe version verified and installed at a spoke (append-only).

    Only installed versions can start batches; ``bundle`` keeps the JWS exactly as received,
    so the hub's signature can be checked again at any time.
    """

    __tablename__ = "installed_recipes"
    __table_args__ = (
        UniqueConstraint("recipe_code", "version", name="uq_installed_recipes_code_version"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipe_code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    compiled: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[date] = mapped_column(Date)
    bundle: Mapped[str] = mapped_column(Text)
    bundle_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hub_key_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[str] = mapped_column(String(27))
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    installed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)


# --- batch execution (spoke) --------------------------------------------------------------
# ``batch_entries`` is the ledger (append-only); the other batch tables are its projections,
# kept in step in the same transaction and rebuilt exactly by replaying the ledger.
# Times in the projections are UTC text exactly as in the ledger entries.

BATCH_STATUSES = ["created", "in_progress", "on_hold", "complete", "aborted"]
PHASE_STATUSES = ["locked", "ready", "in_progress", "performed", "verified", "skipped"]
DEVIATION_STATUSES = ["open", "acknowledged"]
LOT_STATUSES = ["quarantine", "released", "rejected"]
EQUIPMENT_STATUSES = ["in_service", "out_of_service"]


class Counter(Base):
    """A named sequence (e.g. batch numbers of a site and year); its row lock serialises takers."""

    __tablename__ = "counters"
    __table_args__ = (CheckConstraint("value >= 0", name="value_not_negative"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Batch(Base):
    """A batch (one patient's therapy): current state, projected from its ledger."""

    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint(_in("status", BATCH_STATUSES), name="known_status"),
        Index("ix_batches_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    site: Mapped[str] = mapped_column(String(12))
    recipe_code: Mapped[str] = mapped_column(String(40))
    recipe_version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    installed_recipe_id: Mapped[str | None] = mapped_column(
        ForeignKey("installed_recipes.id"), nullable=True
    )
    chain_of_identity: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String(27))
    created_by: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    completed_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    # This site's signature of the head as it moved (mes.core.heads).
    head_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    head_signature: Mapped[str | None] = mapped_column(String(100), nullable=True)


class _ChainRow:
    """The columns of a hash-chained entry of a batch (see mes.core.ledger)."""

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    prev: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(27))
    site: Mapped[str] = mapped_column(String(12))
    terminal: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_username: Mapped[str] = mapped_column(String(32))
    actor_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    signature: Mapped[str] = mapped_column(String(100))
    batch_id: str

    def body(self) -> dict[str, Any]:
        """The entry's content exactly as it was hashed and signed."""
        return {
            "batch": self.batch_id,
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
            "payload": self.payload,
        }


class BatchEntry(_ChainRow, Base):
    """One entry of a batch's ledger (append-only; see mes.core.batch)."""

    __tablename__ = "batch_entries"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        UniqueConstraint("batch_id", "prev", name="uq_batch_entries_batch_prev"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)


class BatchReviewEntry(_ChainRow, Base):
    """One entry of a batch's review chain, sealed by the hub (append-only; mes.core.review)."""

    __tablename__ = "batch_review_entries"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        UniqueConstraint("batch_id", "prev", name="uq_batch_review_entries_batch_prev"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)


class BatchReview(Base):
    """A batch's disposition as its review chain says (projection; both hub and spoke)."""

    __tablename__ = "batch_reviews"
    __table_args__ = (
        CheckConstraint(
            "decision IS NULL OR decision IN ('released', 'rejected')", name="known_decision"
        ),
        Index("ix_batch_reviews_decision", "decision"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    decision: Mapped[str | None] = mapped_column(String(12), nullable=True)
    decided_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    # This site's signature of the head as it moved (mes.core.heads).
    head_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    head_signature: Mapped[str | None] = mapped_column(String(100), nullable=True)


class BatchPhase(Base):
    """A phase of a batch: its state and who performed and verified it (projection)."""

    __tablename__ = "batch_phases"
    __table_args__ = (CheckConstraint(_in("status", PHASE_STATUSES), name="known_status"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    phase_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    performed_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    performed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    verified_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    verified_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    needs_verification: Mapped[bool] = mapped_column(Boolean)
    earliest_start: Mapped[str | None] = mapped_column(String(27), nullable=True)
    latest_start: Mapped[str | None] = mapped_column(String(27), nullable=True)
    corrections: Mapped[int] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(Boolean)  # what operators work on now (the board)
    last_seq: Mapped[int] = mapped_column(Integer)


class BatchValue(Base):
    """The current value of an input or calculation of a batch phase (projection)."""

    __tablename__ = "batch_values"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    phase_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    value_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    status: Mapped[str | None] = mapped_column(String(8), nullable=True)
    entry_seq: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[str] = mapped_column(String(27))
    recorded_by: Mapped[str] = mapped_column(String(32))
    corrections: Mapped[int] = mapped_column(Integer)


class BatchMaterial(Base):
    """The lot used for a material of a batch phase (projection; genealogy)."""

    __tablename__ = "batch_materials"
    __table_args__ = (Index("ix_batch_materials_lot", "lot_number"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    phase_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    material_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    lot_number: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Any] = mapped_column(JSON)
    unit: Mapped[str] = mapped_column(String(20))
    entry_seq: Mapped[int] = mapped_column(Integer)


class BatchEquipment(Base):
    """The instrument used in an equipment slot of a batch phase (projection)."""

    __tablename__ = "batch_equipment"
    __table_args__ = (Index("ix_batch_equipment_equipment", "equipment_id", "in_use"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    phase_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    equipment_id: Mapped[str] = mapped_column(String(40))
    entry_seq: Mapped[int] = mapped_column(Integer)
    in_use: Mapped[bool] = mapped_column(Boolean)


class Deviation(Base):
    """A deviation raised in a batch (projection; the workflow lives in the batch ledger)."""

    __tablename__ = "deviations"
    __table_args__ = (
        CheckConstraint(_in("status", DEVIATION_STATUSES), name="known_status"),
        Index("ix_deviations_batch", "batch_id"),
        Index("ix_deviations_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    number: Mapped[int] = mapped_column(Integer)
    phase_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    value_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[str] = mapped_column(String(27))
    raised_by: Mapped[str] = mapped_column(String(32))
    acknowledged_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    entry_seq: Mapped[int] = mapped_column(Integer)


# --- materials and equipment masters (site) ----------------------------------------------


class Material(Base):
    """A material the site uses (code as in the recipes). Never deleted."""

    __tablename__ = "materials"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MaterialLot(Base):
    """A received lot of a material; status changes are signed by QA. Never deleted."""

    __tablename__ = "material_lots"
    __table_args__ = (CheckConstraint(_in("status", LOT_STATUSES), name="known_status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lot_number: Mapped[str] = mapped_column(String(64), unique=True)
    material_code: Mapped[str] = mapped_column(ForeignKey("materials.code"), index=True)
    expiry: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Equipment(Base):
    """An instrument of the site: class, location, status, cleaning, calibration. Never deleted."""

    __tablename__ = "equipment"
    __table_args__ = (
        CheckConstraint(_in("status", EQUIPMENT_STATUSES), name="known_status"),
        Index("ix_equipment_class", "equipment_class"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    equipment_class: Mapped[str] = mapped_column(String(48))
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    clean: Mapped[bool] = mapped_column(Boolean)
    calibration_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EquipmentLogEntry(Base):
    """One line of an instrument's logbook: use, cleaning, calibration, status (append-only)."""

    __tablename__ = "equipment_log"
    __table_args__ = (Index("ix_equipment_log_equipment", "equipment_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    equipment_id: Mapped[str] = mapped_column(ForeignKey("equipment.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(40))
    batch_number: Mapped[str | None] = mapped_column(String(40), nullable=True)
    phase_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    by_username: Mapped[str] = mapped_column(String(32))
    by_name: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)


# --- hub ↔ spoke sync -----------------------------------------------------------------------

SPOKE_STATUSES = ["awaiting_enrollment", "active", "suspended", "revoked"]
OUTBOX_STATES = ["pending", "synced", "refused"]
SYNC_OUTCOMES = ["accepted", "duplicate", "refused"]


class Spoke(Base):
    """At the hub: a spoke site, its pinned public key and whether it may push (never deleted)."""

    __tablename__ = "spokes"
    __table_args__ = (CheckConstraint(_in("status", SPOKE_STATUSES), name="known_status"),)

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
        CheckConstraint(_in("state", OUTBOX_STATES), name="known_state"),
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
        CheckConstraint(_in("outcome", SYNC_OUTCOMES), name="known_outcome"),
        Index("ix_sync_events_at", "at"),
        Index("ix_sync_events_batch", "batch_id"),
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
