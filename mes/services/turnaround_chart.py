"""The turnaround chart, drawn on the server as SVG (matplotlib, Agg): works offline and prints.

One horizontal bar per site and one for the network: the median of each leg, stacked in
vein-to-vein order, with the whole's median (a diamond) and 90th percentile (a bar end) and the
recipe's target (a dashed line). The same figures are in the page's table and its CSV.
"""

from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from typing import Any

from mes.core.critical import point_title
from mes.core.turnaround import NETWORK, LegStats, TurnaroundStats

# Colour-blind-safe qualitative colours (Okabe & Ito), one per leg in vein-to-vein order.
LEG_COLOURS = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999",
)  # fmt: skip
_HEADER = re.compile(r"^.*?(?=<svg)", re.S)


def turnaround_chart_svg(stats: TurnaroundStats, *, width_px: int = 1100) -> str:
    """The chart of one recipe's turnaround as an ``<svg>`` element (no XML header).

    Days on the axis when the whole takes two days or more, hours otherwise. The same figures
    draw the same chart: the last few drawn are kept (a page opened again, or by another
    reader, until a batch changes them).
    """
    key = (_figures(stats), width_px)
    with _LOCK:
        if key in _DRAWN:
            _DRAWN.move_to_end(key)
            return _DRAWN[key]
    svg = _draw(stats, width_px)
    with _LOCK:
        _DRAWN[key] = svg
        while len(_DRAWN) > KEPT:
            _DRAWN.popitem(last=False)
    return svg


KEPT = 32
_DRAWN: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_LOCK = threading.Lock()


def _figures(stats: TurnaroundStats) -> tuple[Any, ...]:
    """Everything the chart shows of ``stats``, as a key."""

    def leg_figures(leg: LegStats | None) -> tuple[Any, ...] | None:
        if leg is None:
            return None
        network = leg.network
        return (
            leg.start, leg.end, leg.target, leg.consecutive,
            tuple((site, s.median, s.p90) for site, s in leg.by_site.items()),
            (network.median, network.p90) if network else None,
        )  # fmt: skip

    return (
        stats.points,
        stats.sites,
        tuple(leg_figures(leg) for leg in stats.legs),
        leg_figures(stats.whole),
    )


def _draw(stats: TurnaroundStats, width_px: int) -> str:
    """Draw the chart (see :func:`turnaround_chart_svg`)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    legs = [leg for leg in stats.legs if leg.consecutive and leg.network is not None]
    rows = [*stats.sites, NETWORK]
    whole = stats.whole
    longest = max(
        [whole.network.p90 if whole and whole.network else 0.0]
        + [sum((leg.network.median if leg.network else 0.0) for leg in legs)]
        + ([whole.target] if whole and whole.target else [])
    )
    per = 24.0 if longest >= 48 else 1.0
    unit = "days" if per == 24.0 else "hours"

    dpi = 100
    row_in = 0.4 if len(rows) <= 12 else 0.26
    top_in, bottom_in = 0.45, 1.15  # the target's label; the axis label and the legend
    height_in = top_in + bottom_in + row_in * len(rows)
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "mes-turnaround",
            "font.size": 11,
            "text.parse_math": False,  # a '$' in a site code or milestone is text, not TeX
        }
    ):
        # Margins set by hand: a layout engine or a tight bounding box draws the figure twice.
        figure = Figure(figsize=(width_px / dpi, height_in), dpi=dpi)
        figure.subplots_adjust(
            left=1.0 / (width_px / dpi), right=1 - 0.3 / (width_px / dpi),
            top=1 - top_in / height_in, bottom=bottom_in / height_in,
        )  # fmt: skip
        axes = figure.add_subplot()
        positions = list(range(len(rows)))[::-1]  # the first site on top, the network last
        # Rectangles in one collection per leg and labels as plain text: a bar or a tick per
        # site each cost an artist of their own (50 sites: seconds instead of a tenth).
        left = [0.0] * len(rows)
        handles = []
        for index, leg in enumerate(legs):
            colour = LEG_COLOURS[index % len(LEG_COLOURS)]
            widths = [_median(leg, row) / per for row in rows]
            axes.add_collection(
                PolyCollection(
                    [
                        [(x, y - 0.3), (x + w, y - 0.3), (x + w, y + 0.3), (x, y + 0.3)]
                        for x, w, y in zip(left, widths, positions, strict=True)
                        if w > 0
                    ],
                    facecolors=colour, edgecolors="white", linewidths=0.5,
                )
            )  # fmt: skip
            handles.append(Patch(facecolor=colour, label=point_title(leg.end)))
            left = [a + b for a, b in zip(left, widths, strict=True)]
        axes.set_yticks([])
        for position, row in zip(positions, rows, strict=True):
            axes.text(
                -0.008, position, row, transform=axes.get_yaxis_transform(), ha="right",
                va="center", fontweight="bold" if row == NETWORK else "normal",
            )  # fmt: skip
        axes.set_ylim(-0.6, len(rows) - 0.4)
        axes.set_xlim(0, longest / per * 1.05 or 1)
        if whole is not None:
            shown = [
                (position, spread)
                for position, row in zip(positions, rows, strict=True)
                if (spread := whole.network if row == NETWORK else whole.by_site.get(row))
            ]
            if shown:
                ys = [position for position, _ in shown]
                medians = [spread.median / per for _, spread in shown]
                axes.hlines(
                    ys, medians, [spread.p90 / per for _, spread in shown],
                    color="black", linewidth=1.2,
                )  # fmt: skip
                axes.plot(medians, ys, "D", color="black", markersize=6, linestyle="none")
            if whole.target is not None:
                axes.axvline(whole.target / per, color="#B00020", linestyle="--", linewidth=1.5)
                axes.annotate(
                    f"target {whole.target / per:g} {unit}", (whole.target / per, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(0, 4),
                    textcoords="offset points", color="#B00020", ha="center", va="bottom",
                )  # fmt: skip
        axes.set_xlabel(
            f"{unit} from {point_title(stats.points[0]).lower() if stats.points else 'start'} "
            "(bars: median of each leg, stacked; ◆ median of the whole, line to its 90th "
            "percentile)"
        )
        axes.grid(axis="x", color="#dddddd")
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        if legs:
            figure.legend(
                handles=handles,
                title="Each leg, named by the milestone that ends it",
                loc="lower center", ncols=min(len(legs), 5), frameon=False,
            )  # fmt: skip
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return _HEADER.sub("", out.getvalue(), count=1)


def _median(leg, row: str) -> float:
    spread = leg.network if row == NETWORK else leg.by_site.get(row)
    return spread.median if spread is not None else 0.0
