"""The hub's network: spokes, live deviation alerts, the live board, vein-to-vein turnaround.

Spokes are added, enrolled, suspended and revoked here; the board lists every batch in progress
at every spoke and updates in place; the turnaround page times each leg of vein-to-vein.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from mes.core.access import Permission, allowed
from mes.core.dates import date_pattern, local_date_text, parse_local_date
from mes.core.errors import MesError
from mes.services import network, spokes, turnaround
from mes.web import site_zone
from mes.web.actions import act, flashed, reading
from mes.web.helpers import requires
from mes.web.network.forms import PlainForm, SpokeActionForm, SpokeForm
from mes.web.network.pages import board_page, network_page, turnaround_page

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


# --- the live board of batches in progress ---------------------------------------------------


def _filter_arg(name: str) -> str | None:
    """A filter's value from the query (None: all); its length is the service's to judge."""
    value = (request.args.get(name) or "").strip()
    return value or None


def _record_link() -> Callable[[str], str] | None:
    """QA's record page of a batch, for those who may open it (others see the number only)."""
    if not allowed(current_user.roles, Permission.REVIEW_BATCHES):
        return None
    return lambda batch_id: url_for("qa.record", batch_id=batch_id)


def _board(site: str | None, product: str | None) -> tuple[dict[str, Any], network.NetworkBoard]:
    """The board as filtered by site and product (a bad one: MesError)."""
    with reading() as (uow, ctx):
        view = network.board(uow, ctx, site=site, product=product)
    return board_page(view, site_zone(), g.now, _record_link()), view


@bp.get("/batches")
@requires(Permission.WATCH_NETWORK)
def board() -> ResponseReturnValue:
    """Every batch in progress at every spoke, updating in place; filterable by site and product."""
    try:
        (page, view), error, status = _board(_filter_arg("site"), _filter_arg("product")), None, 200
    except MesError as err:  # a filter the board refuses: the whole board, and why
        (page, view), error, status = _board(None, None), str(err), err.http_status
    return render_template(
        "network/board.html",
        page=page,
        error=error,
        sites=view.sites,
        products=view.products,
        refresh_seconds=REFRESH_SECONDS,
    ), status


@bp.get("/batches.json")
@requires(Permission.WATCH_NETWORK)
def board_json() -> ResponseReturnValue:
    """The board's rows as JSON, as filtered (the page polls it); a bad filter: 400 and why."""
    try:
        page, _view = _board(_filter_arg("site"), _filter_arg("product"))
    except MesError as err:
        return jsonify({"error": "Filter refused", "message": str(err)}), err.http_status
    return jsonify(page)


# --- vein-to-vein turnaround ------------------------------------------------------------------


def _day(name: str, label: str) -> date | None:
    """A date of the period typed in the site's order (mes.core.dates); None when not given."""
    text = (request.args.get(name) or "").strip()
    return parse_local_date(text, site_zone(), label=label) if text else None


def _turnaround() -> turnaround.TurnaroundView:
    """The turnaround as the query filters it (a bad recipe or date: MesError)."""
    since, until = _day("from", "From"), _day("to", "To")
    with reading() as (uow, ctx):
        return turnaround.turnaround_report(
            uow, ctx, recipe_code=_filter_arg("recipe"), since=since, until=until
        )


@bp.get("/turnaround")
@requires(Permission.WATCH_NETWORK)
def turnaround_view() -> ResponseReturnValue:
    """Vein-to-vein per recipe: each leg and the whole per site and network, against targets."""
    zone = site_zone()
    typed = {k: (request.args.get(k) or "").strip() for k in ("recipe", "from", "to")}
    try:
        view, error, status = _turnaround(), None, 200
    except MesError as err:  # the default period over every recipe, and why not what was asked
        with reading() as (uow, ctx):
            view = turnaround.turnaround_report(uow, ctx)
        error, status = str(err), err.http_status
    page = turnaround_page(view, zone, _record_link())
    args = {"recipe": view.recipe_code or "", "from": local_date_text(view.since, zone)}
    args["to"] = local_date_text(view.until, zone)
    return render_template(
        "network/turnaround.html",
        page=page,
        error=error,
        typed=typed if error else args,
        csv_args=args,
        date_pattern=date_pattern(zone),
    ), status


@bp.get("/turnaround.csv")
@requires(Permission.WATCH_NETWORK)
def turnaround_csv() -> ResponseReturnValue:
    """The figures behind the turnaround charts (the query's recipe and period) as CSV."""
    try:
        view = _turnaround()
    except MesError as err:
        return Response(f"{err}\n", status=err.http_status, mimetype="text/plain")
    name = f"turnaround-{view.recipe_code or 'all'}-{view.since:%Y%m%d}-{view.until:%Y%m%d}.csv"
    return Response(
        turnaround.turnaround_csv(view),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
