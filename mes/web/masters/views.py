"""Materials, lots and equipment at a spoke: the masters the batch rules check at each scan.

Supervisors and QA register materials, receive lots (in quarantine) and register equipment;
QA releases, rejects or quarantines a lot with an e-signature; operators record cleaning; each
instrument has its logbook. Every rule is the services'; the pages show their refusals.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.batch import equipment_class_title
from mes.core.dates import date_pattern, parse_local_date
from mes.core.equipment import EQUIPMENT_STATUS_WORDS
from mes.core.errors import InvalidInput
from mes.core.esign import MEANING_STATEMENTS, Meaning
from mes.core.materials import LOT_DECISION_TITLES
from mes.core.units import UNITS
from mes.services import custody as custody_service
from mes.services import equipment as equipment_service
from mes.services import materials as material_service
from mes.web import site_zone
from mes.web.actions import act, done, reading, shown_on, stop
from mes.web.helpers import requires
from mes.web.masters.forms import (
    EquipmentForm,
    LotCustodyForm,
    LotDecisionForm,
    LotForm,
    MaterialForm,
)

bp = Blueprint("masters", __name__, template_folder="templates")


def _date(
    name: str,
    label: str,
    page: Callable[..., ResponseReturnValue],
    *page_args: Any,
    required: bool = True,
) -> date | None:
    """The date typed in the field ``name``, read in the site's order (mes.core.dates).

    A missing or unreadable one ends the request with ``page`` again, the message at the field.
    """
    text = (request.form.get(name) or "").strip()
    if not text and not required:
        return None
    zone = site_zone()
    try:
        if not text:
            raise InvalidInput(
                f"{label} is required.",
                what_to_do=f"Enter a date as {date_pattern(zone)}.",
            )
        return parse_local_date(text, zone, label=label)
    except InvalidInput as err:
        stop(
            page(*page_args, error=str(err), status=err.http_status, field_errors={name: str(err)})
        )


# --- materials and lots ----------------------------------------------------------------------


def _materials_page(
    error: str | None = None, status: int = 200, field_errors: dict[str, str] | None = None
) -> ResponseReturnValue:
    with reading() as (uow, ctx):
        materials = material_service.list_materials(uow, ctx)
        lots = material_service.list_lots(uow, ctx)
    return render_template(
        "masters/materials.html",
        materials=materials,
        lots=lots,
        units=UNITS,
        error=error,
        entered=request.form,
        statements=MEANING_STATEMENTS,
        meanings=material_service.STATUS_MEANINGS,
        decision_titles=LOT_DECISION_TITLES,
        received_meaning=Meaning.RECEIVED,
        field_errors=field_errors or {},
    ), status


@bp.get("/materials")
@requires(Permission.READ_BATCHES)
def materials() -> ResponseReturnValue:
    """Registered materials and their lots: status, expiry, how often batches used them."""
    return _materials_page()


@bp.post("/materials")
@requires(Permission.MANAGE_MATERIALS)
def add_material() -> ResponseReturnValue:
    """Register a material."""
    form = MaterialForm()
    material = act(
        material_service.add_material,
        code=form.code.data or "",
        name=form.name.data or "",
        unit=form.unit.data or "",
        refused=shown_on(_materials_page),
    )
    return done(f"Material {material.code} registered.", "masters.materials")


@bp.post("/materials/lots")
@requires(Permission.MANAGE_MATERIALS)
def add_lot() -> ResponseReturnValue:
    """Receive a lot (it starts in quarantine)."""
    form = LotForm()
    refused = shown_on(_materials_page)
    lot = act(
        material_service.add_lot,
        material_code=form.material_code.data or "",
        lot_number=form.lot_number.data or "",
        expiry=_date("expiry", "Expiry", _materials_page),
        refused=refused,
    )
    return done(
        f"Lot {lot.lot_number} received; it is in quarantine until QA releases it.",
        "masters.materials",
    )


@bp.post("/materials/lots/custody")
@requires(Permission.MANAGE_MATERIALS)
def receive_lot_custody() -> ResponseReturnValue:
    """A lot the hub sent (a vector lot) received into custody, signed "received"."""
    form = LotCustodyForm()
    record = act(
        custody_service.receive_lot,
        form.lot_number.data or "",
        from_name=form.from_name.data or "",
        from_organisation=form.from_organisation.data or "",
        place=form.place.data or "",
        container=form.container.data or "",
        signature=form,
        refused=shown_on(_materials_page),
    )
    return done(f"Lot {record['lot']} received into custody.", "masters.materials")


@bp.post("/materials/lots/<lot_number>/status")
@requires(Permission.RELEASE_LOTS)
def lot_status(lot_number: str) -> ResponseReturnValue:
    """QA releases, rejects or quarantines a lot, with a reason, signed."""
    form = LotDecisionForm()
    lot = act(
        material_service.change_lot_status,
        lot_number,
        form.status.data or "",
        form.reason.data,
        signature=form,
        refused=shown_on(_materials_page),
    )
    return done(f"Lot {lot.lot_number} is now {lot.status}.", "masters.materials")


# --- equipment -----------------------------------------------------------------------------------


def _equipment_page(
    error: str | None = None, status: int = 200, field_errors: dict[str, str] | None = None
) -> ResponseReturnValue:
    with reading() as (uow, ctx):
        rows = equipment_service.list_equipment(uow, ctx)
    return render_template(
        "masters/equipment.html",
        rows=rows,
        classes=equipment_service.known_classes(),
        class_title=equipment_class_title,
        status_words=EQUIPMENT_STATUS_WORDS,
        error=error,
        entered=request.form,
        field_errors=field_errors or {},
    ), status


@bp.get("/equipment")
@requires(Permission.READ_BATCHES)
def equipment_list() -> ResponseReturnValue:
    """Every instrument: class, location, status, cleaning, calibration, the batch using it."""
    return _equipment_page()


@bp.post("/equipment")
@requires(Permission.MANAGE_EQUIPMENT)
def add_equipment() -> ResponseReturnValue:
    """Register an instrument."""
    form = EquipmentForm()
    refused = shown_on(_equipment_page)
    item = act(
        equipment_service.add_equipment,
        equipment_id=form.equipment_id.data or "",
        equipment_class=form.equipment_class.data or "",
        name=form.name.data or "",
        location=form.location.data or "",
        calibration_due=_date(
            "calibration_due", "Calibration due", _equipment_page, required=False
        ),
        refused=refused,
    )
    return done(f"{item.id} registered.", "masters.logbook", equipment_id=item.id)


def _logbook_page(
    equipment_id: str,
    error: str | None = None,
    status: int = 200,
    field_errors: dict[str, str] | None = None,
) -> ResponseReturnValue:
    with reading() as (uow, ctx):
        item, entries = equipment_service.logbook(uow, ctx, equipment_id)
        using = equipment_service.in_use_by(uow, item.id)
    return render_template(
        "masters/logbook.html",
        item=item,
        entries=entries,
        using=using,
        class_title=equipment_class_title,
        status_words=EQUIPMENT_STATUS_WORDS,
        error=error,
        entered=request.form,
        field_errors=field_errors or {},
    ), status


@bp.get("/equipment/<equipment_id>")
@requires(Permission.READ_BATCHES)
def logbook(equipment_id: str) -> ResponseReturnValue:
    """One instrument and its logbook, newest first."""
    return _logbook_page(equipment_id)


@bp.post("/equipment/<equipment_id>/status")
@requires(Permission.MANAGE_EQUIPMENT)
def equipment_status(equipment_id: str) -> ResponseReturnValue:
    """Take an instrument out of service or put it back, with the reason."""
    act(
        equipment_service.set_status,
        equipment_id,
        request.form.get("status", ""),
        request.form.get("reason"),
        refused=shown_on(_logbook_page, equipment_id),
    )
    return done("Status changed.", "masters.logbook", equipment_id=equipment_id)


@bp.post("/equipment/<equipment_id>/cleaning")
@requires(Permission.CLEAN_EQUIPMENT)
def cleaning(equipment_id: str) -> ResponseReturnValue:
    """Record a cleaning, or that the instrument needs cleaning (with a note)."""
    act(
        equipment_service.record_cleaning,
        equipment_id,
        clean=request.form.get("clean") == "yes",
        note=request.form.get("note"),
        refused=shown_on(_logbook_page, equipment_id),
    )
    return done("Cleaning recorded.", "masters.logbook", equipment_id=equipment_id)


@bp.post("/equipment/<equipment_id>/calibration")
@requires(Permission.MANAGE_EQUIPMENT)
def calibration(equipment_id: str) -> ResponseReturnValue:
    """Record a calibration and the next due date."""
    refused = shown_on(_logbook_page, equipment_id)
    act(
        equipment_service.record_calibration,
        equipment_id,
        next_due=_date("next_due", "Next calibration due", _logbook_page, equipment_id),
        certificate=request.form.get("certificate", ""),
        refused=refused,
    )
    return done("Calibration recorded.", "masters.logbook", equipment_id=equipment_id)
