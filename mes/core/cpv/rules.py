"""Run rules that find a process out of statistical control on a control chart (signals).

The rules are the Western Electric rules (Western Electric, *Statistical Quality Control
Handbook*, 1956) as Nelson numbered and extended them (L. S. Nelson, "The Shewhart control
chart — tests for special causes", *J. Quality Technology* 16(4), 1984). Each is applied to a
series against limits given to it (normally the frozen baseline's), so new batches are judged
against the process as it was validated, not against themselves.

One signal per maximal run: when a rule holds over overlapping stretches of points, the stretches
are joined and reported once, from the first to the last point that makes it. Fifteen batches in
a row below the centre line are one "9 in a row" signal naming all fifteen, not seven; three
batches in a row beyond 3σ on the same side are one signal; for "2 of 3" and "4 of 5" the windows
that hold the rule and overlap are joined and the signal runs from the first to the last point
beyond the zone. QA then assesses one trend, not a cascade of repeats of it.

A point exactly on the centre line is on neither side (it ends a run of one side), and two equal
consecutive values neither rise nor fall (they end a trend).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mes.core.cpv.control import ControlLimits
from mes.core.cpv.series import series_of
from mes.core.worded import Worded


class Rule(Worded):
    """A run rule, stored by its Nelson number ("N1" … "N8")."""

    BEYOND_3_SIGMA = "N1", "One point beyond 3σ of the centre line"
    NINE_ONE_SIDE = "N2", "Nine points in a row on one side of the centre line"
    SIX_TRENDING = "N3", "Six points in a row steadily rising or falling"
    FOURTEEN_ALTERNATING = "N4", "Fourteen points in a row alternating up and down"
    TWO_OF_THREE_BEYOND_2 = "N5", "Two of three points in a row beyond 2σ on the same side"
    FOUR_OF_FIVE_BEYOND_1 = "N6", "Four of five points in a row beyond 1σ on the same side"
    FIFTEEN_WITHIN_1 = "N7", "Fifteen points in a row within 1σ of the centre line"
    EIGHT_BEYOND_1 = "N8", "Eight points in a row beyond 1σ, on both sides of the centre line"


class Direction(Worded):
    """Which way the points of a signal lie (a ``str``: ``Direction.ABOVE == "above"``)."""

    ABOVE = "above", "above the centre line"
    BELOW = "below", "below the centre line"
    RISING = "rising", "rising"
    FALLING = "falling", "falling"
    ALTERNATING = "alternate", "alternating up and down"  # values fit 10 characters
    WITHIN = "within", "within 1σ of the centre line"
    OUTSIDE = "outside", "beyond 1σ on both sides of the centre line"


# The four rules the issue asks for (Nelson 1, 2, 3, 5): each with a false-alarm rate of a few in a
# thousand points on a process in control. The others are available by passing ``rules``.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule.BEYOND_3_SIGMA,
    Rule.NINE_ONE_SIDE,
    Rule.SIX_TRENDING,
    Rule.TWO_OF_THREE_BEYOND_2,
)
ALL_RULES: tuple[Rule, ...] = tuple(Rule)

RUN_LENGTH = {
    Rule.BEYOND_3_SIGMA: 1,
    Rule.NINE_ONE_SIDE: 9,
    Rule.SIX_TRENDING: 6,
    Rule.FOURTEEN_ALTERNATING: 14,
    Rule.FIFTEEN_WITHIN_1: 15,
    Rule.EIGHT_BEYOND_1: 8,
}
WINDOW = {Rule.TWO_OF_THREE_BEYOND_2: (2, 3, 2.0), Rule.FOUR_OF_FIVE_BEYOND_1: (4, 5, 1.0)}


@dataclass(frozen=True)
class Signal:
    """A rule that holds on the points ``first`` … ``last`` (indices into the series, inclusive).

    ``points`` is how many of those points break the rule: the run's length for the "in a row"
    rules, the points beyond the zone for "2 of 3" and "4 of 5" (None when not known, e.g. a
    signal read back from storage that did not keep it).
    """

    rule: Rule
    first: int
    last: int
    direction: str  # a Direction: "above", "below", "rising", "falling", ...
    points: int | None = None

    @property
    def span(self) -> int:
        """How many consecutive points the signal covers (first to last)."""
        return self.last - self.first + 1


Found = list[tuple[int, int, Direction, int]]  # first, last, direction, points


def _runs(mask: NDArray[np.bool_], length: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Start and (inclusive) end of every maximal run of True at least ``length`` long."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    keep = ends - starts + 1 >= length
    return starts[keep], ends[keep]


def _run_signals(
    mask: NDArray[np.bool_], length: int, direction: Direction, shift: int = 0
) -> Found:
    """Maximal runs of ``mask`` as signals; ``shift`` extends each run's end (runs of differences)."""
    starts, ends = _runs(mask, length)
    return [
        (int(s), int(e) + shift, direction, int(e - s + 1 + shift))
        for s, e in zip(starts, ends, strict=True)
    ]


def _window_signals(beyond: NDArray[np.bool_], m: int, w: int, direction: Direction) -> Found:
    """M of w in a row beyond the zone: overlapping windows that hold it, joined and trimmed."""
    w = min(w, beyond.size)  # a series shorter than the window is judged as one window
    if w < m:
        return []
    counts_before = np.concatenate(([0], np.cumsum(beyond, dtype=np.int64)))
    in_window = counts_before[w:] - counts_before[:-w]  # points beyond in window s … s+w−1
    hits = np.flatnonzero(in_window >= m)
    if hits.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(hits) >= w)  # windows that share no point start a new signal
    span_start = hits[np.concatenate(([0], breaks + 1))]
    span_end = hits[np.concatenate((breaks, [hits.size - 1]))] + w - 1
    beyond_at = np.flatnonzero(beyond)
    first = beyond_at[np.searchsorted(beyond_at, span_start, side="left")]
    last = beyond_at[np.searchsorted(beyond_at, span_end, side="right") - 1]
    points = counts_before[last + 1] - counts_before[first]
    return [
        (int(f), int(la), direction, int(p)) for f, la, p in zip(first, last, points, strict=True)
    ]


def _apply(rule: Rule, x: NDArray[np.float64], limits: ControlLimits) -> Found:
    centre, sigma = limits.centre, limits.sigma
    if rule is Rule.BEYOND_3_SIGMA:
        return _run_signals(x > limits.ucl, 1, Direction.ABOVE) + _run_signals(
            x < limits.lcl, 1, Direction.BELOW
        )
    if rule is Rule.NINE_ONE_SIDE:
        return _run_signals(x > centre, 9, Direction.ABOVE) + _run_signals(
            x < centre, 9, Direction.BELOW
        )
    if rule is Rule.SIX_TRENDING:  # 6 points = 5 steps the same way
        steps = np.diff(x)
        return _run_signals(steps > 0, 5, Direction.RISING, 1) + _run_signals(
            steps < 0, 5, Direction.FALLING, 1
        )
    if rule is Rule.FOURTEEN_ALTERNATING:  # 14 points = 13 steps = 12 changes of direction
        signs = np.sign(np.diff(x))
        return _run_signals(signs[:-1] * signs[1:] < 0, 12, Direction.ALTERNATING, 2)
    if rule in WINDOW:
        m, w, k = WINDOW[rule]
        return _window_signals(x > centre + k * sigma, m, w, Direction.ABOVE) + _window_signals(
            x < centre - k * sigma, m, w, Direction.BELOW
        )
    if rule is Rule.FIFTEEN_WITHIN_1:
        return _run_signals(np.abs(x - centre) < sigma, 15, Direction.WITHIN)
    # EIGHT_BEYOND_1: a run of 8 or more beyond 1σ holding points on both sides
    starts, ends = _runs(np.abs(x - centre) > sigma, 8)
    return [
        (int(s), int(e), Direction.OUTSIDE, int(e - s + 1))
        for s, e in zip(starts, ends, strict=True)
        if (x[s : e + 1] > centre).any() and (x[s : e + 1] < centre).any()
    ]


def signals(
    values: Sequence[float] | NDArray[np.floating],
    limits: ControlLimits,
    rules: Iterable[Rule | str] = DEFAULT_RULES,
) -> list[Signal]:
    """Every signal of ``rules`` on the series against ``limits``, by first point, then rule.

    The series is in batch order (the order the chart draws). Each rule reports one signal per
    maximal run (see the module's docstring). Rules may be given as members or by code ("N1").
    """
    x = series_of(values)
    if (
        not all(np.isfinite([limits.centre, limits.sigma, limits.lcl, limits.ucl]))
        or limits.sigma < 0
    ):
        raise ValueError(f"The control limits must be numbers with a sigma of 0 or more: {limits}.")
    chosen = [Rule(rule) for rule in rules]
    order = {rule: i for i, rule in enumerate(Rule)}
    found = [
        Signal(rule=rule, first=first, last=last, direction=direction, points=points)
        for rule in dict.fromkeys(chosen)
        for first, last, direction, points in _apply(rule, x, limits)
    ]
    return sorted(found, key=lambda s: (s.first, s.last, order[s.rule], s.direction))
