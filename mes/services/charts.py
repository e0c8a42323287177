"""Control charts of continued process verification, drawn on the server as SVG (matplotlib).

An individuals chart above its moving-range chart for one critical number of a recipe, network-wide
(points coloured by site) or for one site: the centre line and control limits (from QA's frozen
baseline, else marked provisional), the specification's action limits beside them, and the
points of every signal ringed. Each point is a link to its batch's record with a hover title (the
batch number, site, value and date); up to :data:`LABEL_LIMIT` points also carry their batch
number. Works offline and prints into the comparability report (the PDF takes the same SVG).

Deterministic: a fixed ``svg.hashsalt``, text kept as text (``svg.fonttype: none``), no date in
the metadata, so the same data always give the same bytes. Safe to inline in a page: every text
this module writes into the SVG (batch numbers, sites, links, titles) is XML-escaped, and
matplotlib escapes its own texts.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mes.core.trends import NETWORK
from mes.services.cpv import ParameterView, SeriesPoint

__all__ = ["control_chart_svg"]

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 5.4, 72  # 864 × 389 pt: 1152 px wide at 96 dpi; shrinks to fit
LABEL_LIMIT = 40  # beyond this many points, the batch numbers are in the hover titles only
LABEL_HEADROOM = 4.0  # room above the data for the rotated batch numbers (times the usual pad)
LABEL_FONT, LABEL_ANGLE = 7.0, 40.0  # the batch numbers' size (pt) and slant (degrees)
LINK_LIMIT = 3000  # beyond this many points, one drawn path (links would make the SVG too big)
PRINT_RASTER_FROM = LABEL_LIMIT  # in print, a series with no batch numbers drawn is one image
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
)  # fmt: skip
LIMIT_COLOUR, CENTRE_COLOUR, SPEC_COLOUR, SIGNAL_COLOUR = "#c62828", "#2e7d32", "#ef6c00", "#d50000"
RC = {
    "svg.hashsalt": "mes-cpv",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.titlesize": 11,
    "text.parse_math": False,  # a '$' in a recipe's label or unit is text, not TeX (it was a 500)
}

Link = Callable[[SeriesPoint], str]


def site_colours(sites: list[str]) -> dict[str, str]:
    """Each site's colour, the same on every chart of the page (sites in code order)."""
    return {site: PALETTE[i % len(PALETTE)] for i, site in enumerate(sorted(sites))}


def _number(value: float) -> str:
    return f"{value:.4g}"


def control_chart_svg(
    view: ParameterView,
    *,
    scope: str = NETWORK,
    link: Link | None = None,
    raster_from: int = LINK_LIMIT,
    day: Callable[[str], str] | None = None,
) -> str:
    """The I-MR chart of ``view`` for ``scope`` (a site code, or the network) as SVG text.

    ``link``: the address of a point's batch record (None: points are not links, as in print).
    ``raster_from``: beyond this many points the series is drawn as one image inside the SVG
    (print passes :data:`PRINT_RASTER_FROM`: hover titles and links are of no use on paper, and
    thousands of vector points take the PDF renderer seconds per chart).
    ``day``: an ISO instant as the site writes its day (``site_date_text`` in the site's time
    zone); without it, the ISO day.
    """
    day = day or _iso_day
    points = view.points_of(scope)
    colours = site_colours(view.sites)
    with mpl.rc_context(RC):
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        individuals, ranges = figure.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2], "hspace": 0.08}
        )
        figure.subplots_adjust(left=0.07, right=0.83, top=0.9, bottom=0.12)
        x = np.arange(1, len(points) + 1)
        values = np.array([p.value for p in points], dtype=float)
        big = len(points) > raster_from
        labelled = not big and len(points) <= LABEL_LIMIT
        _individuals(individuals, view, scope, x, values, big=big, labelled=labelled, day=day)
        _moving_ranges(ranges, view, x, values, big=big)
        drawn = _scatter(individuals, view, scope, points, x, values, colours, big=big)
        _legend(individuals, view, scope, colours)
        overlay = ""
        if not drawn:  # the points' places on the page need the figure laid out once
            figure.canvas.draw()
            overlay = _point_overlay(
                figure, individuals, view, scope, points, x, values, colours, link, day
            )
        out = io.StringIO()
        figure.savefig(
            out,
            format="svg",
            dpi=DPI * 1.5 if drawn else DPI,
            metadata={"Date": None, "Creator": None},
        )
    return _responsive(out.getvalue(), overlay, view, scope)


def _iso_day(at: str) -> str:
    return at[:10]


def _span(ys: list[float]) -> tuple[float, float]:
    return (min(ys), max(ys)) if ys else (0.0, 1.0)


def _individuals(
    axes,
    view: ParameterView,
    scope: str,
    x,
    values,
    *,
    big: bool,
    labelled: bool,
    day: Callable[[str], str],
) -> None:
    who = "network, coloured by site" if scope == NETWORK else f"site {scope}"
    limits = view.limits
    status = ""
    if limits is not None:
        status = (
            f"provisional limits from the {limits.n} batches shown"
            if limits.provisional
            else f"limits of the baseline frozen {day(view.baseline.frozen_at)}"
            if view.baseline
            else ""
        )
    axes.set_title(f"{view.title} — {who}" + (f" — {status}" if status else ""), loc="left")
    axes.set_ylabel(view.unit or "value")
    if 0 < len(x) <= LINK_LIMIT:  # a long series is dots alone (a line through them is ink)
        axes.plot(
            x, values, color="#b0b0b0", linewidth=0.4 if big else 0.8, zorder=1, rasterized=big
        )
    lines: list[tuple[float, str, str, str]] = []
    if limits is not None:
        style = (0, (4, 3)) if limits.provisional else "solid"
        lines += [
            (limits.ucl, f"UCL {_number(limits.ucl)}", LIMIT_COLOUR, style),
            (limits.centre, f"CL {_number(limits.centre)}", CENTRE_COLOUR, "solid"),
            (limits.lcl, f"LCL {_number(limits.lcl)}", LIMIT_COLOUR, style),
        ]
        for k in (1, 2):
            for sign in (-1, 1):
                axes.axhline(
                    limits.centre + sign * k * limits.sigma,
                    color="#e0e0e0",
                    linewidth=0.6,
                    zorder=0,
                )
    # The scale is the data's and the control limits': a specification limit far outside them
    # (LSL 70 % with data at 90-99 %) would squash the points into a strip; it is said at the
    # edge of the chart instead ("Spec low 70 % ↓ below").
    low, high = _span([*values.tolist(), *(y for y, *_ in lines)])
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    bottom, top = low - pad, high + pad * (LABEL_HEADROOM if labelled else 1.0)
    unit = f" {view.unit}" if view.unit else ""
    beyond: list[tuple[str, str]] = []
    for y, which in ((view.spec_low, "low"), (view.spec_high, "high")):
        if y is None:
            continue
        if bottom <= y <= top or not len(values):
            lines.append((y, f"Spec {which} {_number(y)}", SPEC_COLOUR, (0, (1, 2))))
        else:
            edge = "top" if y > top else "bottom"
            arrow = "↑ above the chart" if edge == "top" else "↓ below the chart"
            beyond.append((f"Spec {which} {_number(y)}{unit} {arrow}", edge))
    for _text, edge in beyond:  # a free band at that edge for the note
        if edge == "top":
            top += pad * 2.5
        else:
            bottom -= pad * 2.5
    for y, text, colour, style in lines:
        axes.axhline(y, color=colour, linewidth=1.3, linestyle=style, zorder=2)
        axes.annotate(
            text,
            xy=(1, y),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=colour,
        )
    for text, edge in beyond:  # in the band at the edge the limit lies beyond
        axes.annotate(
            text,
            xy=(0, 1.0 if edge == "top" else 0.0),
            xycoords="axes fraction",
            xytext=(6, -4 if edge == "top" else 4),
            textcoords="offset points",
            va="top" if edge == "top" else "bottom",
            fontsize=9,
            color=SPEC_COLOUR,
        )
    drawn = [y for y, *_ in lines]  # every line drawn lies inside the scale
    axes.set_ylim(min([bottom, *drawn]), max([top, *drawn]))
    axes.set_xlim(0.3, max(len(x), 1) + 0.7)
    axes.grid(False)


def _moving_ranges(axes, view: ParameterView, x, values, *, big: bool) -> None:
    axes.set_ylabel("moving range")
    if len(values) >= 2:
        mr = np.abs(np.diff(values))
        axes.plot(
            x[1:],
            mr,
            color="#555555",
            linewidth=0.9,
            linestyle="" if big else "-",  # a long series: dots, one rasterized path
            marker="." if big else "o",
            markersize=1.5 if big else 2.5,
            rasterized=big,
        )
    limits = view.limits
    if limits is not None:
        axes.axhline(limits.mr_centre, color=CENTRE_COLOUR, linewidth=1.1)
        axes.axhline(limits.mr_ucl, color=LIMIT_COLOUR, linewidth=1.1)
        for y, text, colour in (
            (limits.mr_ucl, f"UCL {_number(limits.mr_ucl)}", LIMIT_COLOUR),
            (limits.mr_centre, f"MR̄ {_number(limits.mr_centre)}", CENTRE_COLOUR),
        ):
            axes.annotate(
                text,
                xy=(1, y),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
                color=colour,
            )
    axes.set_xlabel("batches in the order their values were recorded")
    axes.set_ylim(bottom=0)


def _ringed(view: ParameterView, scope: str) -> set[str]:
    """The batch numbers whose points break a rule of a signal of ``scope`` (ringed)."""
    return {n for s in view.signals if s.scope == scope for n in (s.marked or s.numbers)}


def _scatter(axes, view, scope, points, x, values, colours, *, big: bool) -> bool:
    """Draw the points with matplotlib only for long series (one path, no links), as in print.

    The points are legible on paper (their size falls only for series of hundreds) and the
    points of the signals are ringed, as on the page.
    """
    if not big:
        return False
    size = 5.0 if len(points) <= 200 else 3.5 if len(points) <= 1000 else 2.0
    names, which = np.unique(np.array([p.site for p in points]), return_inverse=True)
    order = np.argsort(which, kind="stable")  # the points of each site together, in order
    starts = np.searchsorted(which[order], np.arange(len(names) + 1))
    for i, site in enumerate(names.tolist()):  # one rasterized line of dots per site: fast, small
        mine = order[starts[i] : starts[i + 1]]
        axes.plot(
            x[mine],
            values[mine],
            linestyle="",
            marker="o" if len(points) <= 1000 else ".",
            markersize=size,
            markeredgewidth=0,
            color=colours.get(site, PALETTE[0]),
            zorder=3,
            rasterized=True,
        )
    ringed = _ringed(view, scope)
    mine = [i for i, p in enumerate(points) if p.number in ringed]
    if mine:
        axes.plot(
            x[mine],
            values[mine],
            linestyle="",
            marker="o",
            markersize=size + 5.0,
            markerfacecolor="none",
            markeredgecolor=SIGNAL_COLOUR,
            markeredgewidth=1.4,
            zorder=4,
            rasterized=len(mine) > LINK_LIMIT,
        )
    return True


def _legend(axes, view: ParameterView, scope: str, colours: dict[str, str]) -> None:
    sites = view.sites if scope == NETWORK else [scope]
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colours.get(site, PALETTE[0]), label=site)
        for site in sites[:14]
    ]
    handles.append(
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor=SIGNAL_COLOUR,
               markersize=9, label="in a signal")
    )  # fmt: skip
    axes.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.09, 1.0),
        fontsize=8,
        frameon=False,
        title="site" if len(sites) <= 14 else f"sites (first 14 of {len(sites)})",
        title_fontsize=8,
    )


def _point_overlay(
    figure: Figure,
    axes,
    view: ParameterView,
    scope: str,
    points: list[SeriesPoint],
    x,
    values,
    colours: dict[str, str],
    link: Link | None,
    day: Callable[[str], str],
) -> str:
    """The points as SVG elements at their place on the axes: a link, a hover title, a label."""
    if not points:
        return ""
    height = figure.get_figheight() * DPI
    xy = axes.transData.transform(np.column_stack([x, values]))
    in_signal = _ringed(view, scope)
    box = axes.get_window_extent()  # in pt, y upwards: the labels stay inside it
    inside = (box.x0, height - box.y1, box.x1, height - box.y0)  # left, top, right, bottom
    unit = f" {view.unit}" if view.unit else ""
    labelled = len(points) <= LABEL_LIMIT
    radius = 4.0 if len(points) <= 200 else 2.5
    parts = ['<g id="points">']
    for point, (px, py) in zip(points, xy, strict=True):
        cx, cy = f"{px:.2f}", f"{height - py:.2f}"
        title = escape(
            f"{point.number} · {point.site} · {_number(point.value)}{unit} · {day(point.at)}"
        )
        shape = (
            f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="{colours.get(point.site, PALETTE[0])}" '
            f'stroke="#ffffff" stroke-width="0.8"><title>{title}</title></circle>'
        )
        if point.number in in_signal:
            shape += (
                f'<circle cx="{cx}" cy="{cy}" r="{radius + 3.5}" fill="none" '
                f'stroke="{SIGNAL_COLOUR}" stroke-width="1.6"/>'
            )
        if labelled:
            shape += _label(point.number, float(cx), float(cy), radius, inside)
        if link is not None:
            href = quoteattr(link(point))
            shape = f'<a href={href} xlink:href={href} target="_top">{shape}</a>'
        parts.append(shape)
    parts.append("</g>")
    return "".join(parts)


def _label(
    number: str, cx: float, cy: float, radius: float, inside: tuple[float, float, float, float]
) -> str:
    """The batch number beside its point, slanted, where it stays inside the axes; else none.

    Tried in turn: above right, above left, below right, below left of the point. A label that
    would leave the axes (over the chart's title or the limits' names) is dropped: the point's
    hover title still names the batch.
    """
    left, top, right, bottom = inside
    length = LABEL_FONT * 0.62 * len(number)  # an estimate of the text's width, generous
    run = length * math.cos(math.radians(LABEL_ANGLE)) + LABEL_FONT
    rise = length * math.sin(math.radians(LABEL_ANGLE)) + LABEL_FONT
    gap = radius + 3
    for up, rightwards in ((True, True), (True, False), (False, True), (False, False)):
        y = cy - gap if up else cy + gap + LABEL_FONT * 0.7
        fits_y = y - rise >= top if up else y + rise <= bottom
        fits_x = cx + run <= right if rightwards else cx - run >= left
        if fits_y and fits_x:
            angle = -LABEL_ANGLE if up == rightwards else LABEL_ANGLE
            anchor = "start" if rightwards else "end"
            return (
                f'<text x="{cx:.2f}" y="{y:.2f}" font-size="{LABEL_FONT:g}" '
                f'font-family="sans-serif" fill="#333333" text-anchor="{anchor}" '
                f'transform="rotate({angle:g} {cx:.2f} {y:.2f})">{escape(number)}</text>'
            )
    return ""


_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')  # matplotlib's size in pt


def _responsive(svg: str, overlay: str, view: ParameterView, scope: str) -> str:
    """The SVG without its XML prologue, scaling to its container, with a title, points on top."""
    start = svg.index("<svg")
    body = _SIZE.sub(r'<svg\1 width="100%" role="img"', svg[start:], count=1)
    who = "network" if scope == NETWORK else f"site {scope}"
    title = f"<title>{escape(f'Control chart of {view.title}, {who}')}</title>"
    head_end = body.index(">") + 1
    body = body[:head_end] + title + body[head_end:]
    closing = body.rindex("</svg>")
    return body[:closing] + overlay + body[closing:]
