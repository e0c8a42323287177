"""Materials and their lots at a site: registration, and QA's signed status decisions.

A lot arrives in quarantine; only QA releases (or rejects, or quarantines again) it, each with
an e-signature and a reason. Operators scan lots in batch phases; the batch rules refuse a lot
that is not released or has expired (:mod:`mes.core.batch`). Every change is an audit entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from mes.core.access import Permission, Role
from mes.core.audit import require_reason
from mes.core.batch import LotInfo
from mes.core.errors import InvalidInput, NotFound
from mes.core.esign import Meaning
from mes.core.materials import LotStatus
from mes.core.text import identifier, one_line
from mes.core.units import is_known_unit
from mes.services.audit import record_entry
from mes.services.context import Context, authorise
from mes.services.esign import Credentials, sign_record
from mes.services.ids import new_id
from mes.store import materials as store
from mes.store.models import Material, MaterialLot
from mes.store.uow import UnitOfWork

MATERIAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}$")
LOT_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
STATUS_MEANINGS = {
    LotStatus.RELEASED: Meaning.RELEASED,
    LotStatus.REJECTED: Meaning.REJECTED,
    LotStatus.QUARANTINE: Meaning.QUARANTINED,
}
LOT_RECORD_TYPE = "material-lot"


def _code(code: str) -> str:
    how = "Use capital letters, digits and '-', as in the recipes (e.g. MAT-TS520)."
    return identifier(code, MATERIAL_CODE, "a material code", how, case=str.upper)


def _lot_number(lot_number: str) -> str:
    how = "Use letters, digits and . _ / - (up to 64), as on the supplier's label."
    return identifier(lot_number, LOT_NUMBER, "a lot number", how)


def add_material(uow: UnitOfWork, ctx: Context, *, code: str, name: str, unit: str) -> Material:
    """Register a material (its code as the recipes name it)."""
    actor = authorise(uow, ctx, Permission.MANAGE_MATERIALS)
    code = _code(code)
    name = one_line(name, "The material's name")
    if not 1 <= len(name) <= 200:
        raise InvalidInput("A material needs a name (up to 200 characters).")
    if not is_known_unit(unit):
        raise InvalidInput(
            f"'{unit}' is not a unit the recipes use.", what_to_do="Use e.g. each, vial, mL, set."
        )
    if store.material(uow.session, code) is not None:
        raise InvalidInput(f"Material {code} is already registered.")
    material = Material(code=code, name=name, unit=unit, created_at=ctx.at)
    uow.add(material)
    uow.flush()
    record_entry(
        uow, ctx, actor, "material registered", "material", code,
        new={"code": code, "name": name, "unit": unit},
    )  # fmt: skip
    uow.commit()
    return material


def add_lot(
    uow: UnitOfWork, ctx: Context, *, material_code: str, lot_number: str, expiry: date
) -> MaterialLot:
    """Receive a lot of a registered material: it starts in quarantine until QA releases it."""
    actor = authorise(uow, ctx, Permission.MANAGE_MATERIALS)
    code = _code(material_code)
    number = _lot_number(lot_number)
    if store.material(uow.session, code) is None:
        raise NotFound(
            f"Material {code} is not registered.", what_to_do="Register the material first."
        )
    if store.lot_number_taken(uow.session, number):
        raise InvalidInput(
            f"Lot {number} is already registered.",
            what_to_do="Lot numbers are unique at a site; check the label.",
        )
    lot = MaterialLot(
        id=new_id(),
        lot_number=number,
        material_code=code,
        expiry=expiry,
        status=LotStatus.QUARANTINE.value,
        received_at=ctx.at,
        status_changed_at=ctx.at,
    )
    uow.add(lot)
    uow.flush()
    record_entry(
        uow,
        ctx,
        actor,
        "material lot received",
        LOT_RECORD_TYPE,
        lot.id,
        new={
            "lot_number": number,
            "material": code,
            "expiry": expiry.isoformat(),
            "status": LotStatus.QUARANTINE.value,
        },
    )
    uow.commit()
    return lot


def lot_record(lot: MaterialLot, status: str) -> dict[str, object]:
    """What a lot status decision signs: the lot, its material and expiry, and the new status."""
    return {
        "type": LOT_RECORD_TYPE,
        "lot": lot.lot_number,
        "material": lot.material_code,
        "expiry": lot.expiry.isoformat(),
        "status": status,
    }


def change_lot_status(
    uow: UnitOfWork,
    ctx: Context,
    lot_number: str,
    status: str,
    reason: str | None,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> MaterialLot:
    """QA releases, rejects or quarantines a lot, with a reason and an e-signature."""
    actor = authorise(uow, ctx, Permission.RELEASE_LOTS)
    if status not in tuple(LotStatus):
        raise InvalidInput(
            f"'{status}' is not a lot status.", what_to_do="Use released, rejected or quarantine."
        )
    why = require_reason(reason, f"set a lot to {status}")
    lot = find_lot(uow, lot_number, lock=True)
    if lot.status == status:
        raise InvalidInput(f"Lot {lot.lot_number} already is {status}.")
    old = lot.status
    signature = sign_record(
        uow,
        ctx,
        record_type=LOT_RECORD_TYPE,
        record_id=lot.id,
        record=lot_record(lot, status),
        meaning=STATUS_MEANINGS[status],
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        signer_roles=[Role.QA.value],
    )
    lot.status = status
    lot.status_changed_at = ctx.at
    lot.status_reason = why
    record_entry(
        uow,
        ctx,
        actor,
        f"material lot {status}",
        LOT_RECORD_TYPE,
        lot.id,
        old={"status": old},
        new={"status": status, "signature_entry": signature.entry_seq},
        reason=why,
    )
    uow.commit()
    return lot


def find_lot(uow: UnitOfWork, lot_number: str, *, lock: bool = False) -> MaterialLot:
    """A lot by its number (case-insensitive), or :class:`NotFound`."""
    lot = store.lot(uow.session, (lot_number or "").strip(), lock=lock)
    if lot is None:
        raise NotFound(f"There is no lot {lot_number!r}.", what_to_do="Check the lot number.")
    return lot


def lot_info(uow: UnitOfWork, scanned: str) -> LotInfo | None:
    """A scanned lot as the batch rules judge it (None when no such lot is registered)."""
    text = (scanned or "").strip()
    row = store.lot_with_material(uow.session, text) if text else None
    if row is None:
        return None
    lot, material = row
    return LotInfo(
        lot_number=lot.lot_number,
        material_code=lot.material_code,
        material_name=material.name,
        expiry=lot.expiry,
        status=lot.status,
    )


@dataclass(frozen=True)
class LotRow:
    """A lot as the materials page lists it."""

    lot: MaterialLot
    material: Material
    used_in: int  # how many batch phases used it


def list_materials(uow: UnitOfWork, ctx: Context) -> list[Material]:
    """Every registered material, by code."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    return store.materials(uow.session)


def list_lots(uow: UnitOfWork, ctx: Context) -> list[LotRow]:
    """Every lot with its material and how often batches used it, newest first."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    return [LotRow(*row) for row in store.lots_with_use(uow.session)]
