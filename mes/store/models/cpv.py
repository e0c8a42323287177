"""Continued process verification at the hub: frozen baselines, margins, trends, dispositions.

GMP records, append-only (triggers in migration 0012): a later baseline or margin supersedes an
earlier one as a new row; a trend is detected once (unique by recipe, parameter, scope, rule and
its first batch) and gets at most one disposition, signed by QA. Each signature is an entry of
the hub's audit trail (``signature_seq``). A parameter is followed by its key
(``phase_id.value_id``) and unit; ``unit`` is '' for a number without one.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CheckConstraint

from mes.core.trends import Disposition
from mes.store.models.base import Base, UTCDateTime, known


class CpvBaseline(Base):
    """Control limits QA froze for a parameter of a recipe code: the first N batches of a period."""

    __tablename__ = "cpv_baselines"
    __table_args__ = (
        CheckConstraint("period_to >= period_from", name="period_in_order"),
        CheckConstraint("batches >= 2", name="enough_batches"),
        CheckConstraint("sigma >= 0", name="sigma_not_negative"),
        Index("ix_cpv_baselines_series", "recipe_code", "parameter", "unit", "frozen_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipe_code: Mapped[str] = mapped_column(String(40))
    parameter: Mapped[str] = mapped_column(String(130))
    unit: Mapped[str] = mapped_column(String(40))
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    batches: Mapped[int] = mapped_column(Integer)
    first_number: Mapped[str] = mapped_column(String(40))
    last_number: Mapped[str] = mapped_column(String(40))
    centre: Mapped[float] = mapped_column(Float)
    sigma: Mapped[float] = mapped_column(Float)
    lcl: Mapped[float] = mapped_column(Float)
    ucl: Mapped[float] = mapped_column(Float)
    mr_centre: Mapped[float] = mapped_column(Float)
    mr_ucl: Mapped[float] = mapped_column(Float)
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    frozen_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    signature_seq: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class CpvMargin(Base):
    """The equivalence margin QA set for a parameter: the largest site-vs-network difference."""

    __tablename__ = "cpv_margins"
    __table_args__ = (
        CheckConstraint("margin > 0", name="margin_positive"),
        Index("ix_cpv_margins_series", "recipe_code", "parameter", "unit", "set_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipe_code: Mapped[str] = mapped_column(String(40))
    parameter: Mapped[str] = mapped_column(String(130))
    unit: Mapped[str] = mapped_column(String(40))
    margin: Mapped[float] = mapped_column(Float)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())
    set_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    signature_seq: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(2000))


class CpvTrend(Base):
    """A signal of the control-chart rules, kept as a trend for QA to assess."""

    __tablename__ = "cpv_trends"
    __table_args__ = (
        UniqueConstraint(
            "recipe_code",
            "parameter",
            "scope",
            "rule",
            "first_batch_id",
            name="uq_cpv_trends_signal",
        ),
        Index("ix_cpv_trends_detected_at", "detected_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipe_code: Mapped[str] = mapped_column(String(40))
    parameter: Mapped[str] = mapped_column(String(130))
    unit: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(12))  # a site code, or "network"
    rule: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(10))
    first_batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    last_batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    first_number: Mapped[str] = mapped_column(String(40))
    last_number: Mapped[str] = mapped_column(String(40))
    words: Mapped[str] = mapped_column(String(1000))
    provisional: Mapped[bool] = mapped_column(Boolean)  # judged against provisional limits
    baseline_id: Mapped[str | None] = mapped_column(ForeignKey("cpv_baselines.id"), nullable=True)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CpvDisposition(Base):
    """QA's signed assessment of a trend: no action, a deviation at the site, or a CAPA."""

    __tablename__ = "cpv_dispositions"
    __table_args__ = (
        known("disposition", Disposition),
        CheckConstraint(
            "disposition = 'no_action' OR reference IS NOT NULL", name="reference_given"
        ),
    )

    trend_id: Mapped[str] = mapped_column(ForeignKey("cpv_trends.id"), primary_key=True)
    disposition: Mapped[str] = mapped_column(String(12))
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str] = mapped_column(String(4000))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    signature_seq: Mapped[int] = mapped_column(Integer)
