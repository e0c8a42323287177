"""The bedside identity check at the clinic, served by the spoke (it works with the hub down).

One column for a tablet held in one gloved hand: scan the bag's label (it finds the product),
then the chain-of-identity code and the patient's wristband, then the badge and the PIN. A
mismatch answers with the full-screen hard stop; a refusal (a bag of another site, a product
not released) is shown at the top of the page, where the clinician looks. Every rule is the
services' (:mod:`mes.services.bedside`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.batch import Action
from mes.core.clock import local_text, parse_utc_text
from mes.core.dates import date_time_pattern
from mes.core.errors import BedsideMismatch, MesError
from mes.services import bedside as service
from mes.web import site_zone
from mes.web.actions import act, done, reading, shown_on, submitted, typed
from mes.web.bedside.forms import BagForm, CheckForm, InfusionForm
from mes.web.helpers import requires

bp = Blueprint("bedside", __name__, url_prefix="/bedside", template_folder="templates")

_INFUSION = {"start": service.start_infusion, "end": service.end_infusion}


def _when(text: str | None) -> str | None:
    return local_text(parse_utc_text(text), site_zone()) if text else None


@bp.get("/")
@requires(Permission.CHECK_AT_BEDSIDE)
def scan() -> ResponseReturnValue:
    """The first scan: the bag's label, which names the product."""
    return _scan_page()


def _scan_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    with reading() as (uow, ctx):
        products = service.products_here(uow, ctx)
    return (
        render_template("bedside/scan.html", form=BagForm(), error=error, products=products[:20]),
        status,
    )


@bp.post("/")
@requires(Permission.CHECK_AT_BEDSIDE)
def find() -> ResponseReturnValue:
    """The product the bag's label names at this site (refused, saying what to do, if none)."""
    form = submitted(BagForm())
    batch_id, scans = act(service.find_labelled, form.bag.data or "", refused=shown_on(_scan_page))
    return done("Product found: scan the rest of its label and the wristband.",
                "bedside.product", batch_id=batch_id, bag=scans.get("bag_din", ""),
                coi=scans.get("bag_coi", ""))  # fmt: skip


@bp.get("/<batch_id>")
@requires(Permission.CHECK_AT_BEDSIDE)
def product(batch_id: str) -> ResponseReturnValue:
    """One product at the bedside: the check to scan, its timer, its infusion."""
    scanned = {"bag_din": request.args.get("bag", ""), "bag_coi": request.args.get("coi", "")}
    return _product_page(batch_id, values=scanned)


def _product_page(
    batch_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
) -> ResponseReturnValue:
    with reading() as (uow, ctx):
        view = service.bedside_view(uow, ctx, batch_id)
    record = view.batch.state.bedside
    timer = record.timer
    return (
        render_template(
            "bedside/product.html",
            view=view,
            batch=view.batch,
            record=record,
            form=CheckForm(formdata=None),
            values=_as_typed() if values is None else values,
            infusion_form=InfusionForm(formdata=None),
            error=error,
            fields=fields or {},
            timer=timer,
            deadline=_when(timer["deadline"]) if timer else None,
            timer_from=_when(timer["from"]) if timer else None,
            last_at=_when(record.last_check["at"]) if record.last_check else None,
            started_at=_when(record.infusion_started_at),
            ended_at=_when(record.infusion_ended_at),
            thaw_pattern=date_time_pattern(site_zone()),
            check=Action.CHECK_AT_BEDSIDE.value,
            start=Action.START_INFUSION.value,
            end=Action.END_INFUSION.value,
        ),
        status,
    )


def _as_typed() -> dict[str, str]:
    """The scans as typed, to show them again after a refusal (never the PIN)."""
    return {k: v for k, v in typed().items() if not k.startswith("esign_")}


@bp.post("/<batch_id>/check")
@requires(Permission.CHECK_AT_BEDSIDE)
def check(batch_id: str) -> ResponseReturnValue:
    """Compare the scans with the chain of identity: a match is signed, a mismatch stops."""
    form = submitted(CheckForm())
    # Each scan the recipe asks for (bag_din, bag_coi, bag_<id>, wristband): the core reads
    # only those, refuses an empty one and one longer than 100 characters.
    scans = {k: v for k, v in request.form.items() if k.startswith("bag_") or k == "wristband"}

    def refused(err: MesError) -> ResponseReturnValue:
        if isinstance(err, BedsideMismatch):
            return _hard_stop(batch_id, err)
        return _product_page(batch_id, error=str(err), status=err.http_status,
                             fields=getattr(err, "fields", None) or {})  # fmt: skip

    act(service.check_at_bedside, scans, refused=refused, signature=form,
        thawed_at=form.thawed_at.data or None)  # fmt: skip
    return done("Identity checked: the product matches the patient.", "bedside.product",
                batch_id=batch_id)  # fmt: skip


def _hard_stop(batch_id: str, err: BedsideMismatch) -> ResponseReturnValue:
    """The full-screen red page: do not infuse (the mismatch and its deviation are recorded)."""
    return render_template("bedside/stop.html", err=err, batch_id=batch_id), err.http_status


@bp.post("/<batch_id>/infusion/<step>")
@requires(Permission.CHECK_AT_BEDSIDE)
def infusion(batch_id: str, step: str) -> ResponseReturnValue:
    """The infusion's start or end, signed with badge and PIN."""
    action = _INFUSION.get(step)
    if action is None:
        return _product_page(batch_id, error="Unknown step.", status=404)
    form = submitted(InfusionForm())

    def refused(err: MesError) -> ResponseReturnValue:
        if isinstance(err, BedsideMismatch):
            return _hard_stop(batch_id, err)
        return _product_page(batch_id, error=str(err), status=err.http_status)

    act(action, batch_id, refused=refused, signature=form)
    said: dict[str, Any] = {"start": "Infusion started.", "end": "Infusion ended."}
    return done(said[step], "bedside.product", batch_id=batch_id)
