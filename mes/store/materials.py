"""Materials and their lots as stored at a spoke."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.store.models import BatchMaterial, Material, MaterialLot


def material(session: Session, code: str) -> Material | None:
    """The registered material with this code, or None."""
    return session.get(Material, code)


def materials(session: Session) -> list[Material]:
    """Every registered material, by code."""
    return list(session.execute(select(Material).order_by(Material.code)).scalars())


def lot(session: Session, lot_number: str, *, lock: bool = False) -> MaterialLot | None:
    """The lot with this number, whatever its case (locked when ``lock``), or None."""
    query = select(MaterialLot).where(func.lower(MaterialLot.lot_number) == lot_number.lower())
    return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


def lot_number_taken(session: Session, lot_number: str) -> bool:
    """Whether a lot with this number (whatever its case) is registered."""
    return (
        session.execute(
            select(MaterialLot.id).where(func.lower(MaterialLot.lot_number) == lot_number.lower())
        ).first()
        is not None
    )


def lot_with_material(session: Session, lot_number: str) -> tuple[MaterialLot, Material] | None:
    """The lot with this number (whatever its case) and its material, or None."""
    row = session.execute(
        select(MaterialLot, Material)
        .join(Material, Material.code == MaterialLot.material_code)
        .where(func.lower(MaterialLot.lot_number) == lot_number.lower())
    ).first()
    return (row[0], row[1]) if row is not None else None


def lots_with_use(session: Session) -> list[tuple[MaterialLot, Material, int]]:
    """Every lot with its material and how many batch phases used it, by material and expiry."""
    uses = (
        select(BatchMaterial.lot_number, func.count().label("n"))
        .group_by(BatchMaterial.lot_number)
        .subquery()
    )
    rows = session.execute(
        select(MaterialLot, Material, uses.c.n)
        .join(Material, Material.code == MaterialLot.material_code)
        .outerjoin(uses, uses.c.lot_number == MaterialLot.lot_number)
        .order_by(MaterialLot.material_code, MaterialLot.expiry)
    ).all()
    return [(lot, material, n or 0) for lot, material, n in rows]


def released_lot(session: Session, code: str, on: date) -> str | None:
    """The first released lot of ``code`` (by number) not expired on ``on``."""
    return session.execute(
        select(MaterialLot.lot_number)
        .where(
            MaterialLot.material_code == code,
            MaterialLot.status == "released",
            MaterialLot.expiry > on,
        )
        .order_by(MaterialLot.lot_number)
    ).scalar()
