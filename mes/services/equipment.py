"""Equipment of a site and its logbook: registration, status, cleaning, calibration, use.

Every event of an instrument — registered, put out of or back into service, cleaned, marked
for cleaning, calibrated, used in a batch phase — is a line of its logbook (append-only) and,
for changes of the master record, an audit entry with the reason. The batch rules refuse an
instrument that is out of service, not clean, past its calibration due date or in use by
another batch (:mod:`mes.core.batch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from mes.core.access import Permission
from mes.core.audit import Actor, require_reason
from mes.core.batch import EquipmentInfo
from mes.core.equipment import EQUIPMENT_STATUS_WORDS, EquipmentStatus
from mes.core.errors import InvalidInput, NotFound
from mes.core.recipe import recipe_schema
from mes.core.text import free_text, identifier, one_line
from mes.services.audit import record_entry
from mes.services.context import Context, authorise
from mes.services.recipes import site_today
from mes.store import equipment as store
from mes.store.models import Equipment, EquipmentLogEntry
from mes.store.uow import UnitOfWork

EQUIPMENT_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}$")
RECORD_TYPE = "equipment"


def known_classes() -> list[str]:
    """The shared equipment classes the recipe format documents (others are allowed)."""
    return [
        "biosafety_cabinet",
        "cell_counter",
        "flow_cytometer",
        "closed_bioreactor",
        "tube_welder",
        "tube_sealer",
        "fridge_2_8c",
        "freezer_minus_80",
        "controlled_rate_freezer",
        "ln2_storage",
        "dry_shipper",
        "thawer",
        "balance",
        "label_printer",
        "barcode_scanner",
        "filling_isolator",
        "filter_integrity_tester",
        "visual_inspection_booth",
    ]


def _id(equipment_id: str) -> str:
    how = "Use capital letters, digits and '-' as on the ID label (e.g. CC-01)."
    return identifier(equipment_id, EQUIPMENT_ID, "an equipment ID", how, case=str.upper)


def _class(equipment_class: str) -> str:
    pattern = recipe_schema()["$defs"].get("id", {}).get("pattern", r"^[a-z][a-z0-9_]{0,47}$")
    how = "Use the class ID the recipes use, e.g. cell_counter."
    return identifier(equipment_class, pattern, "an equipment class", how, case=str.lower)


def log(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    equipment_id: str,
    action: str,
    detail: str,
    *,
    batch_number: str | None = None,
    phase_id: str | None = None,
) -> None:
    """Append one line to an instrument's logbook."""
    store.append_log_entry(
        uow.session,
        equipment_id=equipment_id,
        at=ctx.at,
        action=action,
        batch_number=batch_number,
        phase_id=phase_id,
        by_username=actor.username,
        by_name=actor.name,
        detail=detail,
    )


def _audit(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    action: str,
    equipment: Equipment,
    **change: object,
) -> None:
    record_entry(uow, ctx, actor, action, RECORD_TYPE, equipment.id, **change)  # type: ignore[arg-type]


def add_equipment(
    uow: UnitOfWork,
    ctx: Context,
    *,
    equipment_id: str,
    equipment_class: str,
    name: str,
    location: str,
    calibration_due: date | None,
) -> Equipment:
    """Register an instrument (in service and clean, with its calibration due date)."""
    actor = authorise(uow, ctx, Permission.MANAGE_EQUIPMENT)
    code = _id(equipment_id)
    kind = _class(equipment_class)
    name = one_line(name, "The instrument's name")
    if not 1 <= len(name) <= 200:
        raise InvalidInput("An instrument needs a name (up to 200 characters).")
    if store.instrument(uow.session, code) is not None:
        raise InvalidInput(f"Equipment {code} is already registered.")
    equipment = Equipment(
        id=code,
        equipment_class=kind,
        name=name,
        location=one_line(location, "The location", max_length=200),
        status=EquipmentStatus.IN_SERVICE.value,
        clean=True,
        calibration_due=calibration_due,
        created_at=ctx.at,
    )
    uow.add(equipment)
    uow.flush()
    due = calibration_due.isoformat() if calibration_due else None
    _audit(
        uow,
        ctx,
        actor,
        "equipment registered",
        equipment,
        new={"class": kind, "name": name, "location": equipment.location, "calibration_due": due},
    )
    log(uow, ctx, actor, code, "registered", f"{name}, {kind}; calibration due {due or '—'}")
    uow.commit()
    return equipment


def find_equipment(uow: UnitOfWork, equipment_id: str, *, lock: bool = False) -> Equipment:
    """An instrument by its ID, or :class:`NotFound`."""
    equipment = store.instrument(uow.session, (equipment_id or "").strip().upper(), lock=lock)
    if equipment is None:
        raise NotFound(f"There is no instrument {equipment_id!r}.", what_to_do="Check the ID.")
    return equipment


def set_status(
    uow: UnitOfWork, ctx: Context, equipment_id: str, status: str, reason: str | None
) -> Equipment:
    """Take an instrument out of service or put it back, with a reason."""
    actor = authorise(uow, ctx, Permission.MANAGE_EQUIPMENT)
    if status not in tuple(EquipmentStatus):
        raise InvalidInput(
            f"'{status}' is not an equipment status.",
            what_to_do="Use in_service or out_of_service.",
        )
    why = require_reason(reason, "change the status of an instrument")
    equipment = find_equipment(uow, equipment_id, lock=True)
    if equipment.status == status:
        raise InvalidInput(f"{equipment.id} already is {EQUIPMENT_STATUS_WORDS[status]}.")
    old = equipment.status
    equipment.status = status
    _audit(uow, ctx, actor, "equipment status changed", equipment, old={"status": old},
           new={"status": status}, reason=why)  # fmt: skip
    log(uow, ctx, actor, equipment.id, EQUIPMENT_STATUS_WORDS[status], why)
    uow.commit()
    return equipment


def record_cleaning(
    uow: UnitOfWork, ctx: Context, equipment_id: str, *, clean: bool, note: str | None = None
) -> Equipment:
    """Record that an instrument was cleaned (or needs cleaning, with a note saying why)."""
    actor = authorise(uow, ctx, Permission.CLEAN_EQUIPMENT)
    equipment = find_equipment(uow, equipment_id, lock=True)
    text = free_text(note, "The note")
    if not clean and len(text) < 3:
        raise InvalidInput(
            "Say why the instrument needs cleaning.",
            what_to_do="For example: 'spill after harvest'.",
        )
    old = equipment.clean
    equipment.clean = clean
    _audit(uow, ctx, actor, "equipment cleaning recorded", equipment, old={"clean": old},
           new={"clean": clean}, reason=text or None)  # fmt: skip
    log(uow, ctx, actor, equipment.id, "cleaned" if clean else "needs cleaning", text or "—")
    uow.commit()
    return equipment


def record_calibration(
    uow: UnitOfWork, ctx: Context, equipment_id: str, *, next_due: date, certificate: str
) -> Equipment:
    """Record a calibration and the next due date (with the certificate or report reference)."""
    actor = authorise(uow, ctx, Permission.MANAGE_EQUIPMENT)
    equipment = find_equipment(uow, equipment_id, lock=True)
    reference = one_line(certificate, "The certificate reference", max_length=200)
    if len(reference) < 2:
        raise InvalidInput(
            "A calibration needs its certificate or report reference.",
            what_to_do="Enter the certificate number.",
        )
    if next_due <= site_today(uow, ctx):
        raise InvalidInput(
            f"The next due date {next_due.isoformat()} is not in the future.",
            what_to_do="Enter the date the next calibration is due.",
        )
    old = equipment.calibration_due
    equipment.calibration_due = next_due
    _audit(
        uow,
        ctx,
        actor,
        "equipment calibrated",
        equipment,
        old={"calibration_due": old.isoformat() if old else None},
        new={"calibration_due": next_due.isoformat(), "certificate": reference},
        reason=f"calibration {reference}",
    )
    log(
        uow, ctx, actor, equipment.id, "calibrated", f"certificate {reference}; next due {next_due}"
    )
    uow.commit()
    return equipment


def in_use_by(uow: UnitOfWork, equipment_id: str) -> str | None:
    """The number of the batch using an instrument in a phase in progress, if any."""
    return store.batch_using(uow.session, equipment_id)


def equipment_info(uow: UnitOfWork, scanned: str) -> EquipmentInfo | None:
    """A scanned instrument as the batch rules judge it (None when no such ID is registered)."""
    text = (scanned or "").strip().upper()
    equipment = store.instrument(uow.session, text) if text else None
    if equipment is None:
        return None
    return EquipmentInfo(
        equipment_id=equipment.id,
        equipment_class=equipment.equipment_class,
        name=equipment.name,
        status=equipment.status,
        clean=equipment.clean,
        calibration_due=equipment.calibration_due,
        in_use_by=in_use_by(uow, equipment.id),
    )


@dataclass(frozen=True)
class EquipmentRow:
    """An instrument as the equipment page lists it."""

    equipment: Equipment
    in_use_by: str | None


def list_equipment(uow: UnitOfWork, ctx: Context) -> list[EquipmentRow]:
    """Every instrument, by class and ID, with the batch using it now."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    using = store.batches_using(uow.session)
    return [EquipmentRow(e, using.get(e.id)) for e in store.instruments(uow.session)]


def logbook(
    uow: UnitOfWork, ctx: Context, equipment_id: str
) -> tuple[Equipment, list[EquipmentLogEntry]]:
    """An instrument and its logbook, newest first."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    equipment = find_equipment(uow, equipment_id)
    return equipment, store.log_entries(uow.session, equipment.id)
