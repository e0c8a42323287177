"""The curve of a temperature logger, drawn on the server as SVG (matplotlib, Agg).

The readings against time (UTC) with the validated window shaded and its limits drawn, the
readings outside it marked. Deterministic (fixed hash salt, no date in the metadata, text kept
as text); every text this module writes is XML-escaped by matplotlib, and it writes no text
that came from a user (numbers and the words here only). Works offline and prints.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from mes.core.logger import LoggerSeries, Window

__all__ = ["compact_curve_svg", "logger_curve_svg"]

_HEADER = re.compile(r"^.*?(?=<svg)", re.S)
INSIDE, OUTSIDE, WINDOW = "#0072B2", "#D55E00", "#009E73"


def logger_curve_svg(series: LoggerSeries, window: Window | None, *, width_px: int = 900) -> str:
    """The logger's curve as an ``<svg>`` element (no XML header)."""
    times = [r.at.replace(tzinfo=None) for r in series.readings]
    temps = [float(r.celsius) for r in series.readings]
    return _draw(times, temps, window, width_px)


def compact_curve_svg(payload: Mapping[str, Any], *, width_px: int = 900) -> str | None:
    """The compact curve a ``logger_imported`` entry carries, as SVG (None: an entry without one).

    ``payload``: the entry's (or a custody transfer's logger summary), with its ``curve`` and
    ``window`` (see :func:`mes.core.logger.compact_curve`).
    """
    curve = payload.get("curve")
    if not curve or not curve.get("points"):
        return None
    times = [
        datetime.fromisoformat(at.replace("Z", "+00:00")).replace(tzinfo=None)
        for at, _c in curve["points"]
    ]
    temps = [float(Decimal(c)) for _at, c in curve["points"]]
    window = payload.get("window")
    return _draw(times, temps, None if window is None else Window.from_recipe(window), width_px)


def _draw(times: list[datetime], temps: list[float], window: Window | None, width_px: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    dpi = 100
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "mes-logger",
            "font.size": 10,
            "text.parse_math": False,
        }
    ):
        figure = Figure(figsize=(width_px / dpi, 3.6), dpi=dpi)
        figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.2)
        axes = figure.add_subplot()
        axes.plot(times, temps, color=INSIDE, linewidth=1.2, label="logger reading")
        if window is not None:
            low, high = float(window.low), float(window.high)
            axes.axhspan(low, high, color=WINDOW, alpha=0.12, label="validated window")
            axes.axhline(low, color=WINDOW, linestyle="--", linewidth=1)
            axes.axhline(high, color=WINDOW, linestyle="--", linewidth=1)
            outside = [(t, v) for t, v in zip(times, temps, strict=True) if not low <= v <= high]
            if outside:
                axes.plot(
                    [t for t, _ in outside], [v for _, v in outside], "o", color=OUTSIDE,
                    markersize=4, linestyle="none", label="outside the window",
                )  # fmt: skip
            axes.set_title(f"Logger curve, window {window.in_words()}")
        else:
            axes.set_title("Logger curve")
        axes.set_ylabel("°C")
        axes.set_xlabel("time (UTC)")
        axes.grid(color="#dddddd")
        axes.legend(loc="upper right", frameon=False, fontsize=8)
        figure.autofmt_xdate()
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return _HEADER.sub("", out.getvalue(), count=1)
