"""The hub's network: its spokes (add, enroll, suspend, revoke) and live deviation alerts."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.errors import MesError
from mes.services import spokes
from mes.web import runtime
from mes.web.helpers import requires, service_context
from mes.web.network.forms import PlainForm, SpokeActionForm, SpokeForm

bp = Blueprint("network", __name__, url_prefix="/network", template_folder="templates")

# How often the network page asks for new alerts (the spokes push every few seconds).
REFRESH_SECONDS = 2


@bp.get("/")
@requires(Permission.WATCH_NETWORK)
def overview() -> ResponseReturnValue:
    with runtime().uow(read_only=True) as uow:
        view = spokes.network(uow, service_context())
    return render_template(
        "network/overview.html",
        view=view,
        refresh_seconds=REFRESH_SECONDS,
        add_form=SpokeForm(),
        action_form=SpokeActionForm(),
        plain_form=PlainForm(),
    )


@bp.get("/alerts.json")
@requires(Permission.WATCH_NETWORK)
def alerts() -> ResponseReturnValue:
    """Open deviations from the spokes, newest first (the page polls this)."""
    with runtime().uow(read_only=True) as uow:
        view = spokes.network(uow, service_context())
    return jsonify(
        {
            "alerts": [
                {
                    "id": a.id,
                    "site": a.site,
                    "batch": a.batch_number,
                    "phase": a.phase,
                    "value": a.value,
                    "category": a.category.replace("_", " "),
                    "description": a.description,
                    "raised_at": a.raised_at,
                    "raised_by": a.raised_by,
                }
                for a in view.alerts
            ],
            "spokes": [
                {
                    "code": s.spoke.code,
                    "status": s.spoke.status,
                    "batches": s.batches,
                    "open_deviations": s.open_deviations,
                    "last_seen_at": s.spoke.last_seen_at.isoformat()
                    if s.spoke.last_seen_at
                    else None,
                }
                for s in view.spokes
            ],
        }
    )


@bp.post("/spokes")
@requires(Permission.MANAGE_SPOKES)
def add() -> ResponseReturnValue:
    form = SpokeForm()
    if not form.validate_on_submit():
        flash("Give the site code, name and time zone of the spoke.", "error")
        return redirect(url_for("network.overview"))
    try:
        with runtime().uow() as uow:
            ticket = spokes.add_spoke(
                uow,
                service_context(),
                form.code.data or "",
                form.name.data or "",
                form.time_zone.data or "UTC",
            )
    except MesError as err:
        flash(str(err), "error")
        return redirect(url_for("network.overview"))
    return render_template("network/ticket.html", ticket=ticket)


@bp.post("/spokes/<string:code>/code")
@requires(Permission.MANAGE_SPOKES)
def new_code(code: str) -> ResponseReturnValue:
    if not PlainForm().validate_on_submit():
        flash("The form expired; nothing was changed.", "error")
        return redirect(url_for("network.overview"))
    try:
        with runtime().uow() as uow:
            ticket = spokes.issue_enrollment_code(uow, service_context(), code)
    except MesError as err:
        flash(str(err), "error")
        return redirect(url_for("network.overview"))
    return render_template("network/ticket.html", ticket=ticket)


@bp.post("/spokes/<string:code>/<any(suspend, reinstate, revoke):action>")
@requires(Permission.MANAGE_SPOKES)
def change(code: str, action: str) -> ResponseReturnValue:
    form = SpokeActionForm()
    if not form.validate_on_submit():
        flash(
            f"Say why the spoke is to be {action}d; nothing was changed.".replace("ed", "ed"),
            "error",
        )
        return redirect(url_for("network.overview"))
    try:
        with runtime().uow() as uow:
            spoke = spokes.change_spoke_status(
                uow, service_context(), code, action, form.reason.data or ""
            )
        flash(f"Spoke {spoke.code} is now {spoke.status}.", "success")
    except MesError as err:
        flash(str(err), "error")
    return redirect(url_for("network.overview"))
