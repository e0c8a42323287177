"""The turnaround chart, drawn on the server as SVG (matplotlib, Agg): works offline and prints.

One horizontal bar per site and one for the network: the median of each leg, stacked in
vein-to-vein order, with the whole's median (a diamond) and 90th percentile (a bar end) and the
recipe's target (a dashed line). The same figures are in the page's table and its CSV.
"""

from __future__ import annotations

import io
import re

from mes.core.critical import point_title
from mes.core.turnaround import NETWORK, TurnaroundStats

# Colour-blind-safe qualitative colours (Okabe & Ito), one per leg in vein-to-vein order.
LEG_COLOURS = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999",
)  # fmt: skip
_HEADER = re.compile(r"^.*?(?=<svg)", re.S)


def turnaround_chart_svg(stats: TurnaroundStats, *, width_px: int = 1100) -> str:
    """The chart of one recipe's turnaround as an ``<svg>`` element (no XML header).

    Days on the axis when the whole takes two days or more, hours otherwise.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

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
    height_in = 2.4 + (0.4 if len(rows) <= 12 else 0.26) * len(rows)
    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "mes-turnaround", "font.size": 11}
    ):
        figure = Figure(figsize=(width_px / dpi, height_in), dpi=dpi, layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(rows)))[::-1]  # the first site on top, the network last
        for index, leg in enumerate(legs):
            left = []
            widths = []
            for row in rows:
                before = sum(_median(other, row) for other in legs[:index]) / per
                left.append(before)
                widths.append(_median(leg, row) / per)
            axes.barh(
                positions, widths, left=left, height=0.6,
                color=LEG_COLOURS[index % len(LEG_COLOURS)], label=point_title(leg.end),
                edgecolor="white", linewidth=0.5,
            )  # fmt: skip
        if whole is not None:
            for position, row in zip(positions, rows, strict=True):
                spread = whole.network if row == NETWORK else whole.by_site.get(row)
                if spread is None:
                    continue
                axes.plot([spread.median / per], [position], "D", color="black", markersize=6)
                axes.plot(
                    [spread.median / per, spread.p90 / per], [position, position],
                    color="black", linewidth=1.2,
                )  # fmt: skip
            if whole.target is not None:
                axes.axvline(whole.target / per, color="#B00020", linestyle="--", linewidth=1.5)
                axes.annotate(
                    f"target {whole.target / per:g} {unit}", (whole.target / per, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(0, 4),
                    textcoords="offset points", color="#B00020", ha="center", va="bottom",
                )  # fmt: skip
        axes.set_yticks(positions, rows)
        axes.get_yticklabels()[-1].set_fontweight("bold")  # the network, below the sites
        axes.set_xlabel(
            f"{unit} from {point_title(stats.points[0]).lower() if stats.points else 'start'} "
            "(bars: median of each leg, stacked; ◆ median of the whole, line to its 90th "
            "percentile)"
        )
        axes.set_xlim(left=0)
        axes.grid(axis="x", color="#dddddd")
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        if legs:
            figure.legend(
                title="Each leg, named by the milestone that ends it",
                loc="outside lower center", ncols=min(len(legs), 5), frameon=False,
            )  # fmt: skip
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return _HEADER.sub("", out.getvalue(), count=1)


def _median(leg, row: str) -> float:
    spread = leg.network if row == NETWORK else leg.by_site.get(row)
    return spread.median if spread is not None else 0.0
