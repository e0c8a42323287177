"""Materials, lots and equipment at a spoke: the masters the batch rules check at each scan.

Supervisors and QA register materials, receive lots (in quarantine) and register equipment;
QA releases, rejects or quarantines a lot with an e-signature; operators record cleaning; each
instrument has its logbook. Every rule is the services'; the pages show their refusals.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.batch import equipment_class_title
from mes.core.equipment import EQUIPMENT_STATUS_WORDS
from mes.core.errors import InvalidInput, MesError
from mes.core.esign import MEANING_STATEMENTS
from mes.core.materials import LOT_DECISION_TITLES
from mes.core.units import UNITS
from mes.services import equipment as equipment_service
from mes.services import materials as material_service
from mes.web import runtime
from mes.web.helpers import (
    current_user_still_allowed,
    requires,
    service_context,
    signing_credentials,
    signing_succeeded,
)
from mes.web.masters.forms import (
    EquipmentForm,
    LotDecisionForm,
    LotForm,
    MaterialForm,
)

bp = Blueprint("masters", __name__, template_folder="templates")


def _date(name: str, *, required: bool = True) -> date | None:
    text = (request.form.get(name) or "").strip()
    if not text:
        if required:
            raise InvalidInput(
                f"The {name.replace('_', ' ')} is required.", what_to_do="Enter a date."
            )
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a date.", what_to_do="Use YYYY-MM-DD.") from None


# --- materials and lots ----------------------------------------------------------------------


def _materials_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    ctx = service_context()
    with runtime().uow(read_only=True) as uow:
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
    try:
        form = MaterialForm()
        with runtime().uow() as uow:
            material = material_service.add_material(
                uow,
                service_context(),
                code=form.code.data or "",
                name=form.name.data or "",
                unit=form.unit.data or "",
            )
    except MesError as err:
        return _materials_page(str(err), err.http_status)
    flash(f"Material {material.code} registered.", "info")
    return redirect(url_for("masters.materials"), 303)


@bp.post("/materials/lots")
@requires(Permission.MANAGE_MATERIALS)
def add_lot() -> ResponseReturnValue:
    """Receive a lot (it starts in quarantine)."""
    form = LotForm()
    try:
        expiry = _date("expiry")
        assert expiry is not None
        with runtime().uow() as uow:
            lot = material_service.add_lot(
                uow,
                service_context(),
                material_code=form.material_code.data or "",
                lot_number=form.lot_number.data or "",
                expiry=expiry,
            )
    except MesError as err:
        return _materials_page(str(err), err.http_status)
    flash(f"Lot {lot.lot_number} received; it is in quarantine until QA releases it.", "info")
    return redirect(url_for("masters.materials"), 303)


@bp.post("/materials/lots/<lot_number>/status")
@requires(Permission.RELEASE_LOTS)
def lot_status(lot_number: str) -> ResponseReturnValue:
    """QA releases, rejects or quarantines a lot, with a reason, signed."""
    form = LotDecisionForm()
    credentials, first = signing_credentials(form)
    status = form.status.data or ""
    try:
        with runtime().uow() as uow:
            lot = material_service.change_lot_status(
                uow,
                service_context(),
                lot_number,
                status,
                form.reason.data,
                credentials,
                first_signing_in_session=first,
            )
    except MesError as err:
        if not current_user_still_allowed():
            return redirect(url_for("common.login"))
        return _materials_page(str(err), err.http_status)
    signing_succeeded()
    flash(f"Lot {lot.lot_number} is now {lot.status}.", "info")
    return redirect(url_for("masters.materials"), 303)


# --- equipment -----------------------------------------------------------------------------------


def _equipment_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    with runtime().uow(read_only=True) as uow:
        rows = equipment_service.list_equipment(uow, service_context())
    return render_template(
        "masters/equipment.html",
        rows=rows,
        classes=equipment_service.known_classes(),
        class_title=equipment_class_title,
        status_words=EQUIPMENT_STATUS_WORDS,
        error=error,
        entered=request.form,
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
    try:
        with runtime().uow() as uow:
            item = equipment_service.add_equipment(
                uow,
                service_context(),
                equipment_id=form.equipment_id.data or "",
                equipment_class=form.equipment_class.data or "",
                name=form.name.data or "",
                location=form.location.data or "",
                calibration_due=_date("calibration_due", required=False),
            )
    except MesError as err:
        return _equipment_page(str(err), err.http_status)
    flash(f"{item.id} registered.", "info")
    return redirect(url_for("masters.logbook", equipment_id=item.id), 303)


def _logbook_page(
    equipment_id: str, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    ctx = service_context()
    with runtime().uow(read_only=True) as uow:
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
    try:
        with runtime().uow() as uow:
            equipment_service.set_status(
                uow,
                service_context(),
                equipment_id,
                request.form.get("status", ""),
                request.form.get("reason"),
            )
    except MesError as err:
        return _logbook_page(equipment_id, str(err), err.http_status)
    flash("Status changed.", "info")
    return redirect(url_for("masters.logbook", equipment_id=equipment_id), 303)


@bp.post("/equipment/<equipment_id>/cleaning")
@requires(Permission.CLEAN_EQUIPMENT)
def cleaning(equipment_id: str) -> ResponseReturnValue:
    """Record a cleaning, or that the instrument needs cleaning (with a note)."""
    try:
        with runtime().uow() as uow:
            equipment_service.record_cleaning(
                uow,
                service_context(),
                equipment_id,
                clean=request.form.get("clean") == "yes",
                note=request.form.get("note"),
            )
    except MesError as err:
        return _logbook_page(equipment_id, str(err), err.http_status)
    flash("Cleaning recorded.", "info")
    return redirect(url_for("masters.logbook", equipment_id=equipment_id), 303)


@bp.post("/equipment/<equipment_id>/calibration")
@requires(Permission.MANAGE_EQUIPMENT)
def calibration(equipment_id: str) -> ResponseReturnValue:
    """Record a calibration and the next due date."""
    try:
        next_due = _date("next_due")
        assert next_due is not None
        with runtime().uow() as uow:
            equipment_service.record_calibration(
                uow,
                service_context(),
                equipment_id,
                next_due=next_due,
                certificate=request.form.get("certificate", ""),
            )
    except MesError as err:
        return _logbook_page(equipment_id, str(err), err.http_status)
    flash("Calibration recorded.", "info")
    return redirect(url_for("masters.logbook", equipment_id=equipment_id), 303)
