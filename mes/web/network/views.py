"""The hub's network: its spokes (add, enroll, suspend, revoke) and live deviation alerts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.services import network, spokes
from mes.web import site_zone
from mes.web.actions import act, flashed, reading
from mes.web.helpers import requires
from mes.web.network.forms import PlainForm, SpokeActionForm, SpokeForm
from mes.web.network.pages import network_page

bp = Blueprint("network", __name__, url_prefix="/network", template_folder="templates")

# How often the network page asks for new alerts (the spokes push every few seconds).
REFRESH_SECONDS = 2


def _page() -> dict[str, Any]:
    with reading() as (uow, ctx):
        view = network.network(uow, ctx)
    return network_page(view, site_zone(), g.now)


@bp.get("/")
@requires(Permission.WATCH_NETWORK)
def overview() -> ResponseReturnValue:
    return render_template(
        "network/overview.html",
        page=_page(),
        refresh_seconds=REFRESH_SECONDS,
        add_form=SpokeForm(),
        action_form=SpokeActionForm(),
        plain_form=PlainForm(),
    )


@bp.get("/alerts.json")
@requires(Permission.WATCH_NETWORK)
def alerts() -> ResponseReturnValue:
    """Open deviations from the spokes, newest first, and each spoke's counts (the page polls)."""
    page = _page()
    del page["refusals"]
    return jsonify(page)


@bp.post("/spokes")
@requires(Permission.MANAGE_SPOKES)
def add() -> ResponseReturnValue:
    form = SpokeForm()
    if not form.validate_on_submit():
        flash("Give the site code, name and time zone of the spoke.", "error")
        return redirect(url_for("network.overview"))
    ticket = act(
        spokes.add_spoke,
        form.code.data or "",
        form.name.data or "",
        form.time_zone.data or "UTC",
        refused=flashed("network.overview"),
    )
    return render_template("network/ticket.html", ticket=ticket)


@bp.post("/spokes/<string:code>/code")
@requires(Permission.MANAGE_SPOKES)
def new_code(code: str) -> ResponseReturnValue:
    if not PlainForm().validate_on_submit():
        flash("The form expired; nothing was changed.", "error")
        return redirect(url_for("network.overview"))
    ticket = act(spokes.issue_enrollment_code, code, refused=flashed("network.overview"))
    return render_template("network/ticket.html", ticket=ticket)


@bp.post("/spokes/<string:code>/<string:action>")
@requires(Permission.MANAGE_SPOKES)
def change(code: str, action: str) -> ResponseReturnValue:
    if action not in spokes.STATUS_CHANGES:
        abort(404)
    form = SpokeActionForm()
    if not form.validate_on_submit():
        done = spokes.STATUS_CHANGES[action][2]
        flash(f"Say why spoke {code} is to be {done}; nothing was changed.", "error")
        return redirect(url_for("network.overview"))
    spoke = act(
        spokes.change_spoke_status,
        code,
        action,
        form.reason.data or "",
        refused=flashed("network.overview"),
    )
    flash(f"Spoke {spoke.code} is now {spoke.status}.", "success")
    return redirect(url_for("network.overview"))
