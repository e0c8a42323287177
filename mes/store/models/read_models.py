"""Read models at the hub: each received batch's summary, critical values, milestones, usage.

Projections of the batch ledgers and review chains, kept in step by the hub's ingest and review
in the same transaction, and rebuilt exactly from the chains (:mod:`mes.store.read_models`), so
the network's pages (QA queue, board, turnaround, comparability) read indexed rows, never
ledgers. Times are UTC text as in the ledger entries.
"""

from __future__ import annotations

from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CheckConstraint, ForeignKey, Index
from sqlalchemy.types import Boolean, Float, Integer, String

from mes.core.batch import BatchStatus
from mes.core.critical import EVENT, RECIPE, Criticality
from mes.core.lookback import UsageKind
from mes.core.review import QaState
from mes.store.models.base import Base, known

MILESTONE_SOURCES = (RECIPE, EVENT)  # mes.core.critical.Milestone.source


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint(
        f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")", name=f"known_{column}"
    )


class BatchSummary(Base):
    """A received batch as the QA queue and the live board list it (projection).

    ``exceptions``: findings of the review by exception not yet signed "reviewed";
    ``blocking``: a finding blocks its release other than "the record is still arriving" (the
    record fails verification or its times cannot be true); ``open_deviations``: deviations not
    closed by QA; ``next_timer_at``: the next bound of a timer window of a phase not started
    (:func:`mes.core.summary.next_timer`); ``received_at``: when the hub last stored
    entries of it; ``demo``: demonstration data (its patient ID starts "DEMO-").
    """

    __tablename__ = "batch_summaries"
    __table_args__ = (
        known("status", BatchStatus),
        known("qa_state", QaState),
        CheckConstraint("open_deviations >= 0 AND exceptions >= 0", name="counts_not_negative"),
        Index("ix_batch_summaries_queue", "qa_state", "created_at"),
        Index("ix_batch_summaries_site", "site", "status"),
        Index("ix_batch_summaries_recipe", "recipe_code", "status"),
        Index("ix_batch_summaries_status", "status", "created_at"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    site: Mapped[str] = mapped_column(String(12))
    number: Mapped[str] = mapped_column(String(40))
    recipe_code: Mapped[str] = mapped_column(String(40))
    recipe_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    qa_state: Mapped[str] = mapped_column(String(16))
    current_phase: Mapped[str | None] = mapped_column(String(200), nullable=True)
    next_timer_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    open_deviations: Mapped[int] = mapped_column(Integer)
    exceptions: Mapped[int] = mapped_column(Integer)
    blocking: Mapped[bool] = mapped_column(Boolean)
    newest_entry_at: Mapped[str] = mapped_column(String(27))
    received_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    created_at: Mapped[str] = mapped_column(String(27))
    started_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    completed_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    decided_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    demo: Mapped[bool] = mapped_column(Boolean)
    # The review settings the exception count was computed with (mes.core.review.settings_digest):
    # another after a [review] change until ``mes network rebuild``.
    review_digest: Mapped[str] = mapped_column(String(16))


class ParameterResult(Base):
    """The current value of a critical numeric input of a received batch (projection).

    A corrected value replaces the row's value; ``parameter`` is "phase_id.value_id", the key
    followed across recipe versions (with the unit).
    """

    __tablename__ = "parameter_results"
    __table_args__ = (
        known("criticality", Criticality),
        # A chart's series in its order; at PostgreSQL it holds the chart's columns (index-only).
        Index(
            "ix_parameter_results_series",
            "recipe_code",
            "parameter",
            "recorded_at",
            "number",
            postgresql_include=["unit", "site", "batch_id", "value", "recipe_version"],
        ),
        Index("ix_parameter_results_site", "site"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    phase_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    value_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    site: Mapped[str] = mapped_column(String(12))
    recipe_code: Mapped[str] = mapped_column(String(40))
    recipe_version: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))
    parameter: Mapped[str] = mapped_column(String(97))
    label: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    criticality: Mapped[str] = mapped_column(String(8))
    value: Mapped[float] = mapped_column(Float)
    # When the value was first recorded: a correction keeps the point where it was in the series
    # (the charts and baselines order by it); ``corrected_at``: when it came to stand as it is.
    recorded_at: Mapped[str] = mapped_column(String(27))
    corrected_at: Mapped[str | None] = mapped_column(String(27), nullable=True)
    # The ledger entry the value stands on (batch_entries batch_id + seq, and its hash): checked
    # before a report is signed or a baseline frozen (a row changed behind the hub's back).
    entry_seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))
    demo: Mapped[bool] = mapped_column(Boolean)


class BatchMilestone(Base):
    """A point of a received batch's vein-to-vein timeline (projection).

    ``milestone``: a name of mes.core.critical.MILESTONES, or "up:<unit procedure id>" for the
    end of a unit procedure; ``source``: "recipe" (a datetime input's value) or "event" (the
    batch's own record, or the hub's release).
    """

    __tablename__ = "batch_milestones"
    __table_args__ = (
        _one_of("source", MILESTONE_SOURCES),
        Index("ix_batch_milestones_recipe", "recipe_code", "milestone"),
        Index("ix_batch_milestones_site", "site"),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    milestone: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(12))
    recipe_code: Mapped[str] = mapped_column(String(40))
    at: Mapped[str] = mapped_column(String(27))
    source: Mapped[str] = mapped_column(String(8))


class BatchUsage(Base):
    """One thing a received batch used: a lot, an instrument, a signer, its recipe version.

    A projection (:func:`mes.core.lookback.usage`); the look-back reads it by subject.

    ``identifier``: the lot number, equipment ID, user name or "CODE vN"; ``detail``: the
    lot's material code or the signer's printed name.
    """

    __tablename__ = "batch_usages"
    __table_args__ = (
        known("kind", UsageKind),
        # A look-back: every batch that used one subject (index-only at PostgreSQL).
        Index(
            "ix_batch_usages_subject",
            "kind",
            "identifier",
            postgresql_include=["batch_id", "detail"],
        ),
    )

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    detail: Mapped[str | None] = mapped_column(String(200), nullable=True)
    site: Mapped[str] = mapped_column(String(12))
