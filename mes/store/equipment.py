"""Instruments and their logbooks as stored at a spoke."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.store.models import Batch, BatchEquipment, Equipment, EquipmentLogEntry


def instrument(session: Session, equipment_id: str, *, lock: bool = False) -> Equipment | None:
    """The instrument with this ID (locked for the transaction when ``lock``), or None."""
    return session.get(Equipment, equipment_id, with_for_update=lock or None)


def instruments(session: Session) -> list[Equipment]:
    """Every instrument, by class and ID."""
    return list(
        session.execute(
            select(Equipment).order_by(Equipment.equipment_class, Equipment.id)
        ).scalars()
    )


def batch_using(session: Session, equipment_id: str) -> str | None:
    """The number of the batch using the instrument in a phase in progress, if any."""
    return session.execute(
        select(Batch.number)
        .join(BatchEquipment, BatchEquipment.batch_id == Batch.id)
        .where(BatchEquipment.equipment_id == equipment_id, BatchEquipment.in_use.is_(True))
        .limit(1)
    ).scalar_one_or_none()


def batches_using(session: Session) -> dict[str, str]:
    """The number of the batch using each instrument in use now, by instrument ID."""
    return dict(
        session.execute(
            select(BatchEquipment.equipment_id, Batch.number)
            .join(Batch, Batch.id == BatchEquipment.batch_id)
            .where(BatchEquipment.in_use.is_(True))
        ).all()
    )


def append_log_entry(
    session: Session,
    *,
    equipment_id: str,
    at: datetime,
    action: str,
    batch_number: str | None,
    phase_id: str | None,
    by_username: str,
    by_name: str,
    detail: str,
) -> None:
    """Append one line to an instrument's logbook."""
    session.add(
        EquipmentLogEntry(
            equipment_id=equipment_id,
            at=at,
            action=action,
            batch_number=batch_number,
            phase_id=phase_id,
            by_username=by_username,
            by_name=by_name,
            detail=detail,
        )
    )


def log_entries(session: Session, equipment_id: str) -> list[EquipmentLogEntry]:
    """An instrument's logbook, newest first."""
    return list(
        session.execute(
            select(EquipmentLogEntry)
            .where(EquipmentLogEntry.equipment_id == equipment_id)
            .order_by(EquipmentLogEntry.id.desc())
        ).scalars()
    )


def usable_instrument(session: Session, equipment_class: str, on: date) -> str | None:
    """The first instrument of the class (by ID) in service, clean and calibrated past ``on``."""
    return session.execute(
        select(Equipment.id)
        .where(
            Equipment.equipment_class == equipment_class,
            Equipment.status == "in_service",
            Equipment.clean.is_(True),
            Equipment.calibration_due > on,
        )
        .order_by(Equipment.id)
    ).scalar()
