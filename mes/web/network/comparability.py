"""Continued process verification at the hub: comparability of a recipe's critical numbers.

The page (``/network/comparability/<code>``) shows, per critical number, the control chart
(an SVG document of its own, embedded: its points link to the batches' records), a summary in
words beside it, capability, site-vs-network equivalence, and the signals with QA's
dispositions. QA freezes a baseline, sets a margin and assesses a trend here, each signed in the
e-signature dialog (:mod:`mes.services.cpv`). Charts and their data download as SVG and CSV.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from mes.core.access import Permission, allowed
from mes.core.cpv.words import figure, ppk_figure
from mes.core.dates import date_pattern, local_date_text, parse_local_date, site_date_text
from mes.core.errors import InvalidInput, MesError
from mes.core.esign import Meaning
from mes.core.trends import NETWORK, Disposition
from mes.services import cpv
from mes.services.charts import control_chart_svg
from mes.web import site_zone
from mes.web.actions import act, done, reading, shown_on, stop
from mes.web.forms import whole_number
from mes.web.helpers import requires
from mes.web.network.forms import BaselineForm, MarginForm, TrendForm

bp = Blueprint(
    "comparability", __name__, url_prefix="/network/comparability", template_folder="templates"
)

bp.add_app_template_filter(figure, "figure")
bp.add_app_template_filter(ppk_figure, "ppk_figure")

MEANINGS = {"approved": Meaning.APPROVED, "acknowledged": Meaning.ACKNOWLEDGED}
SIGNAL_LIMIT = 50  # signals listed per parameter on the page (the CSV holds every one)
DEFAULT_DAYS = 365  # the period shown when none is asked for: the last year (an annual review)

# The chart is a document of its own (embedded with <object>): its styles are inline, so it gets
# a policy of its own — no scripts, nothing loaded, shown only inside the hub's own pages.
SVG_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; base-uri 'none'"
)


def _period() -> tuple[date | None, date | None, dict[str, str]]:
    """The period asked for (?from=&to= in the site's date order); the last year by default."""
    zone = site_zone()
    typed = {k: (request.args.get(k) or "").strip()[:40] for k in ("from", "to")}
    date_to = parse_local_date(typed["to"], zone, label="To") if typed["to"] else None
    date_from = (
        parse_local_date(typed["from"], zone, label="From")
        if typed["from"]
        else (date_to or g.now.date()) - timedelta(days=DEFAULT_DAYS)
    )
    if not typed["from"]:
        typed["from"] = local_date_text(date_from, zone)
    return date_from, date_to, typed


def _scope() -> str:
    return (request.args.get("site") or "").strip()[:12] or NETWORK


def _view(
    code: str, *, only: str | None = None, chart_of: str | None = None
) -> tuple[cpv.ComparabilityView, dict[str, str]]:
    """The view of the period asked for (read only: trends are kept at ingest, not here)."""
    date_from, date_to, typed = _period()
    with reading(read_only=True) as (uow, ctx):
        view = cpv.comparability(uow, ctx, code, date_from, date_to, only=only, chart_of=chart_of)
    return view, typed


@bp.get("/")
@requires(Permission.WATCH_NETWORK)
def index() -> ResponseReturnValue:
    """The first recipe code with critical numbers received (or a page saying there is none)."""
    with reading() as (uow, ctx):
        codes = cpv.recipe_codes(uow, ctx)
    asked = (request.args.get("recipe") or "").strip()[:40]
    args = {k: v for k, v in request.args.items() if k in ("from", "to", "site") and v}
    if asked or codes:
        return redirect(url_for("comparability.page", code=asked or codes[0], **args))
    return render_template("network/comparability_none.html")


def _links(view: cpv.ComparabilityView, typed: dict[str, str], scope: str) -> dict[str, Any]:
    args = {"from": typed["from"], "to": typed["to"] or None}
    site = None if scope == NETWORK else scope
    return {
        "args": args,
        "svg": {
            p.key: url_for(
                "comparability.chart_svg", code=view.recipe_code, parameter=p.key, site=site, **args
            )
            for p in view.parameters
        },
        "csv": {
            p.key: url_for(
                "comparability.chart_csv", code=view.recipe_code, parameter=p.key, site=site, **args
            )
            for p in view.parameters
        },
        "data": url_for("comparability.data_csv", code=view.recipe_code, **args),
    }


def _page(
    code: str, *, error: str | None = None, status: int = 200, typed_form: dict | None = None
) -> ResponseReturnValue:
    """One critical number at a time (?parameter=, else the recipe's first), the others linked."""
    with reading() as (uow, ctx):
        codes = cpv.recipe_codes(uow, ctx)
        listed = cpv.parameters_of(uow, ctx, code)
    keys = [key for key, _title in listed]
    asked = _asked() or (request.form.get("parameter") or "")[:200]
    chosen = asked if asked in keys else (keys[0] if keys else None)
    view, typed = _view(code, only=chosen)
    scope = _scope()
    args = {k: v for k, v in request.args.items() if k in ("from", "to", "site") and v}
    return render_template(
        "network/comparability.html",
        view=view,
        codes=codes,
        typed=typed,
        scope=scope,
        network=NETWORK,
        listed=listed,
        chosen=chosen,
        parameter_links={
            key: url_for("comparability.page", code=code, parameter=key, **args) for key in keys
        },
        links=_links(view, typed, scope),
        summaries={p.key: cpv.chart_summary(p, scope) for p in view.parameters},
        dispositions=list(Disposition),
        error=error,
        typed_form=typed_form or {},
        date_pattern=date_pattern(site_zone()),
        today=local_date_text(g.now.astimezone(ZoneInfo(site_zone())).date(), site_zone()),
        meanings=MEANINGS,
        signal_limit=SIGNAL_LIMIT,
        back_fields={
            k: v
            for k, v in {
                "from": typed["from"],
                "to": typed["to"],
                "site": None if scope == NETWORK else scope,
            }.items()
            if v
        },
    ), status


@bp.get("/<code>")
@requires(Permission.WATCH_NETWORK)
def page(code: str) -> ResponseReturnValue:
    """Chart, capability, equivalence and signals of one of the recipe's critical numbers."""
    return _page(code)


def _asked() -> str:
    return (request.args.get("parameter") or "")[:200]


def _chosen(view: cpv.ComparabilityView) -> cpv.ParameterView:
    return view.parameter(_asked())


@bp.get("/<code>/chart.svg")
@requires(Permission.WATCH_NETWORK)
def chart_svg(code: str) -> ResponseReturnValue:
    """One parameter's I-MR chart (network-wide, or ?site=) as SVG; points link to records."""
    view, _typed = _view(code, only=_asked(), chart_of=_scope())
    parameter = _chosen(view)
    # A point links to the batch's review only for those who may open it (as the board does):
    # others would meet a 403; they read the batch number in the point's title.
    may_open = allowed(current_user.roles, Permission.REVIEW_BATCHES)
    svg = control_chart_svg(
        parameter,
        scope=_scope(),
        link=(lambda point: url_for("qa.batch", batch_id=point.batch_id)) if may_open else None,
        day=partial(site_date_text, time_zone=site_zone()),
    )
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/<code>/chart.csv")
@requires(Permission.WATCH_NETWORK)
def chart_csv(code: str) -> ResponseReturnValue:
    """One chart's points, limits, moving ranges and signals as CSV."""
    scope = _scope()
    view, _typed = _view(code, only=_asked(), chart_of=scope)
    parameter = _chosen(view)
    name = f"{view.recipe_code}-{parameter.parameter}-{scope}.csv".replace("/", "-")
    return _csv(cpv.chart_csv(view, parameter.key, scope), name)


@bp.get("/<code>/data.csv")
@requires(Permission.WATCH_NETWORK)
def data_csv(code: str) -> ResponseReturnValue:
    """The whole view as CSV: points, capability, equivalence and signals."""
    view, _typed = _view(code)
    return _csv(cpv.comparability_csv(view), f"{view.recipe_code}-comparability.csv")


def _form_date(text: str | None, label: str) -> date:
    zone = site_zone()
    if not (text or "").strip():
        raise InvalidInput(
            f"{label} is required.", what_to_do=f"Enter a date as {date_pattern(zone)}."
        )
    return parse_local_date(text or "", zone, label=label)


BACK_FIELDS = ("from", "to", "site")


def _back(code: str, parameter: str, unit: str) -> dict[str, Any]:
    """The page's period and site after a form: from the form's hidden fields (else the query)."""
    kept = {k: (request.form.get(k) or request.args.get(k) or "").strip()[:40] for k in BACK_FIELDS}
    return {**{k: v for k, v in kept.items() if v}, "parameter": f"{parameter}|{unit}"}


@bp.post("/<code>/baseline")
@requires(Permission.GOVERN_CPV)
def freeze_baseline(code: str) -> ResponseReturnValue:
    """QA freezes a parameter's control limits from the first N batches of a period (signed)."""
    form = BaselineForm()
    refused = shown_on(_page, code, typed_form={"baseline": dict(request.form)})
    try:
        date_from = _form_date(form.period_from.data, "Period from")
        date_to = _form_date(form.period_to.data, "Period to")
    except MesError as err:
        stop(refused(err))
    row = act(
        cpv.freeze_baseline,
        code,
        form.parameter.data or "",
        date_from,
        date_to,
        whole_number(form.batches.data or "", most=100_000),
        form.reason.data,
        signature=form,
        refused=refused,
    )
    return done(
        f"Baseline frozen: {row.batches} batches from {row.first_number} to {row.last_number}.",
        "comparability.page",
        code=code,
        anchor=f"p-{row.parameter}",
        **_back(code, row.parameter, row.unit),
    )


@bp.post("/<code>/margin")
@requires(Permission.GOVERN_CPV)
def set_margin(code: str) -> ResponseReturnValue:
    """QA sets a parameter's equivalence margin, with a reason (signed)."""
    form = MarginForm()
    refused = shown_on(_page, code, typed_form={"margin": dict(request.form)})
    text = (form.margin.data or "").strip().replace(",", ".")
    try:
        margin = float(text) if text else None
    except ValueError:
        margin = None
    row = act(
        cpv.set_margin,
        code,
        form.parameter.data or "",
        margin,
        form.reason.data,
        signature=form,
        refused=refused,
    )
    return done(
        f"Equivalence margin set: ±{row.margin:g}.",
        "comparability.page",
        code=code,
        anchor=f"p-{row.parameter}",
        **_back(code, row.parameter, row.unit),
    )


def _trend_page(
    trend_id: str, *, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    with reading() as (uow, ctx):
        found = cpv.trend_view(uow, ctx, trend_id)
    trend = found.trend
    zone = site_zone()
    args = {
        "from": local_date_text(found.baseline_from, zone) if found.baseline_from else None,
        "site": None if trend.scope == NETWORK else trend.scope,
    }
    return render_template(
        "network/trend.html",
        found=found,
        trend=trend,
        network=NETWORK,
        dispositions=list(Disposition),
        svg=url_for("comparability.chart_svg", code=trend.recipe_code, parameter=found.key, **args),
        page_url=url_for("comparability.page", code=trend.recipe_code, **args),
        typed=dict(request.form) if request.method == "POST" else {},
        error=error,
        meanings=MEANINGS,
    ), status


@bp.get("/trends/<trend_id>")
@requires(Permission.WATCH_NETWORK)
def trend(trend_id: str) -> ResponseReturnValue:
    """One trend: the signal in words, its chart, and QA's assessment (or the form for it)."""
    return _trend_page(trend_id)


@bp.post("/trends/<trend_id>")
@requires(Permission.GOVERN_CPV)
def assess_trend(trend_id: str) -> ResponseReturnValue:
    """QA assesses a trend: a disposition, its reference where due, a comment (signed)."""
    form = TrendForm()
    act(
        cpv.acknowledge_trend,
        trend_id,
        form.disposition.data,
        form.reference.data,
        form.comment.data,
        signature=form,
        refused=shown_on(_trend_page, trend_id),
    )
    return done("Trend assessed and signed.", "comparability.trend", trend_id=trend_id)


# The signed comparability report's downloads register on this blueprint.
from mes.web.network import reports  # noqa: E402, F401
