"""Batch execution (spoke): the ledger, its projections, the review chain and the disposition.

``batch_entries`` is the ledger (append-only); the other batch tables are its projections, kept
in step in the same transaction and rebuilt exactly by replaying the ledger. Times in the
projections are UTC text exactly as in the ledger entries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.schema import CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.types import JSON, Boolean, Integer, String, Text

from mes.core.audit import Actor
from mes.core.batch import BatchStatus, DeviationStatus, PhaseStatus
from mes.core.entry import EntryBody
from mes.core.review import Decision
from mes.store.models.base import Base, SealedColumns, known


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
        known("status", BatchStatus),
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


class _ChainRow(SealedColumns):
    """The columns of a hash-chained entry of a batch (see mes.core.entry), one chain a batch."""

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    prev: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        """Both chain tables: entries from 1, and one entry after each (prev) in a batch."""
        return (
            CheckConstraint("seq >= 1", name="seq_positive"),
            UniqueConstraint("batch_id", "prev", name=f"uq_{cls.__tablename__}_batch_prev"),
        )

    def body(self) -> dict[str, Any]:
        """The entry's content exactly as it was hashed and signed."""
        return chain_body(self).as_dict()


# How the columns of a chained entry hold its body (mes.core.entry.EntryBody).
_SAME_NAME = ("seq", "prev", "at", "site", "terminal", "kind", "payload")
_ACTOR = {"actor_id": "user_id", "actor_username": "username", "actor_name": "name"}


def chain_body(row: Any) -> EntryBody:
    """The body of a chained entry from its columns (a row of either chain table, or its object)."""
    actor = Actor(**{field: getattr(row, column) for column, field in _ACTOR.items()})
    return EntryBody(
        batch=row.batch_id, actor=actor, **{name: getattr(row, name) for name in _SAME_NAME}
    )


def chain_columns(body: EntryBody) -> dict[str, Any]:
    """The columns of either chain table that hold ``body`` (the inverse of :func:`chain_body`)."""
    columns = {name: getattr(body, name) for name in _SAME_NAME}
    columns.update({column: getattr(body.actor, field) for column, field in _ACTOR.items()})
    return {"batch_id": body.batch, **columns}


class BatchEntry(_ChainRow, Base):
    """One entry of a batch's ledger (append-only; see mes.core.batch)."""

    __tablename__ = "batch_entries"


class BatchReviewEntry(_ChainRow, Base):
    """One entry of a batch's review chain, sealed by the hub (append-only; mes.core.review)."""

    __tablename__ = "batch_review_entries"


class BatchReview(Base):
    """A batch's disposition as its review chain says (projection; both hub and spoke)."""

    __tablename__ = "batch_reviews"
    __table_args__ = (
        known("decision", Decision, nullable=True),
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
    __table_args__ = (known("status", PhaseStatus),)

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
        known("status", DeviationStatus),
        Index("ix_deviations_batch", "batch_id"),
        Index("ix_deviations_status", "status"),
        Index("ix_deviations_status_raised_at", "status", "raised_at"),  # the network's alerts
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    number: Mapped[int] = mapped_column(Integer)
    phase_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    value_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[str] = mapped_column(String(27))
    raised_by: Mapped[str] = mapped_column(String(32))
    acknowledged_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    entry_seq: Mapped[int] = mapped_column(Integer)
