"""Materials, their lots and the site's equipment with its logbook (masters of the site)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import ForeignKey, Index
from sqlalchemy.types import Boolean, Date, Integer, String, Text

from mes.core.equipment import EquipmentStatus
from mes.core.materials import LotStatus
from mes.store.models.base import Base, UTCDateTime, known


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
    __table_args__ = (known("status", LotStatus),)

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
        known("status", EquipmentStatus),
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
