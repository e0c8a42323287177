"""Signals and comparability said in words, as QA reads them in the queue, page and report."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mes.core.cpv.equivalence import Equivalence
from mes.core.cpv.rules import WINDOW, Rule, Signal

MINUS = "−"  # U+2212, as the printed record writes a negative number


def _batches(count: int) -> str:
    return "a batch" if count == 1 else f"{count} batches in a row"


def _what(signal: Signal, parameter: str) -> str:
    """What the points of the signal do, without the scope and batch numbers."""
    rule, direction, span = signal.rule, str(signal.direction), signal.span
    if rule is Rule.BEYOND_3_SIGMA:
        limit = "upper" if direction == "above" else "lower"
        return f"{_batches(span)} {direction} the {limit} control limit of {parameter}"
    if rule is Rule.NINE_ONE_SIDE:
        return f"{_batches(span)} {direction} the centre line of {parameter}"
    if rule is Rule.SIX_TRENDING:
        return f"{parameter} {direction} for {span} batches in a row"
    if rule is Rule.FOURTEEN_ALTERNATING:
        return f"{parameter} alternating up and down for {span} batches in a row"
    if rule in WINDOW:
        m, w, k = WINDOW[rule]
        # "2 of 3": the rule's window, even when the two points beyond are adjacent (span 2);
        # a run merged from overlapping windows is counted over its whole span
        of = f"{signal.points} of {max(span, w)}" if signal.points is not None else f"{m} of {w}"
        return f"{of} batches more than {k:g}σ {direction} the centre line of {parameter}"
    if rule is Rule.FIFTEEN_WITHIN_1:
        return f"{span} batches in a row within 1σ of the centre line of {parameter}"
    return (
        f"{span} batches in a row more than 1σ from the centre line of {parameter}, on both sides"
    )


def signal_words(signal: Signal, *, scope: str, parameter: str, numbers: Sequence[str]) -> str:
    """The signal in one sentence, naming its first and last batch.

    ``scope`` is the site code (or e.g. "Network"); ``numbers`` are the batch numbers of the
    series, indexed like its values, so ``numbers[signal.first]`` is the first batch of the signal.
    E.g. "SPK2: 9 batches in a row below the centre line of Viability at harvest
    (SPK2-2026-0031 to SPK2-2026-0039)".
    """
    if not 0 <= signal.first <= signal.last < len(numbers):
        raise ValueError(
            f"The signal runs from point {signal.first} to {signal.last}, "
            f"but {len(numbers)} batch numbers were given: pass the series' numbers."
        )
    first, last = numbers[signal.first], numbers[signal.last]
    batches = first if signal.first == signal.last else f"{first} to {last}"
    return f"{scope}: {_what(signal, parameter)} ({batches})"


def figure(x: float | None, digits: int = 4) -> str:
    """A mean, SD, limit or difference as the page and the report print it (the CSV keeps all).

    About ``digits`` significant digits, never in exponent form, no trailing zeros, a negative
    with U+2212; "—" for none: 94.0833 → "94.08", 1.2 → "1.2", −0.00412 → "−0.00412".
    """
    if x is None or not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", MINUS)


def ppk_figure(x: float | None) -> str:
    """A Ppk (or a bound of its interval) with two decimals, as QA reads it: 1.3 → "1.30"."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.2f}".replace("-", MINUS)


def specification_words(low: float | None, high: float | None, unit: str | None) -> str | None:
    """The specification (the recipe's action limits) in words; None when it has none.

    "at least 2 °C", "2 to 8 °C", "at most 8 °C": the same on the page, the chart's summary and
    the report.
    """
    if low is None and high is None:
        return None
    if high is None:
        text = f"at least {figure(low)}"
    elif low is None:
        text = f"at most {figure(high)}"
    else:
        text = f"{figure(low)} to {figure(high)}"
    return _with_unit(text, unit)


def _decimals(margin: float) -> int:
    """One decimal finer than the margin's leading digit: ±2 → 0.1, ±0.5 → 0.01, ±20 → 1."""
    return min(6, max(0, 1 - math.floor(math.log10(margin))))


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = f"{0:.{decimals}f}"  # no "−0.0"
    return text.replace("-", MINUS)


def _interval_decimals(eq: Equivalence, decimals: int) -> int:
    """Enough decimals that a bound beyond the margin does not read as on it (2.04 → "2.04")."""
    while decimals < 6 and any(
        abs(bound) != eq.margin and abs(float(f"{bound:.{decimals}f}")) == eq.margin
        for bound in (eq.ci_low, eq.ci_high)
    ):
        decimals += 1
    return decimals


def _with_unit(text: str, unit: str | None) -> str:
    return f"{text} {unit}" if unit else text


def equivalence_words(eq: Equivalence, *, parameter: str, unit: str | None) -> str:
    """The site's comparability with the rest of the network (site − rest) in one sentence.

    E.g. "SPK2 Viability at harvest is 3.1 % lower than the rest of the network (90 % CI −4.0 to −2.2),
    outside the ±2 % margin: not equivalent"; "… within the ±2 % margin: equivalent"; when the
    interval straddles a margin, "… reaching beyond the ±2 % margin: equivalence not shown".
    """
    decimals = _decimals(eq.margin)
    size = _number(abs(eq.difference), decimals)
    site = eq.site or "The site"
    if float(size) == 0:
        how = "is level with the rest of the network"
    else:
        way = "higher" if eq.difference > 0 else "lower"
        how = f"is {_with_unit(size, unit)} {way} than the rest of the network"
    places = _interval_decimals(eq, decimals)
    interval = (
        f"{eq.confidence * 100:.0f} % CI {_number(eq.ci_low, places)} to "
        f"{_number(eq.ci_high, places)}"
    )
    margin = f"the ±{_with_unit(f'{eq.margin:g}', unit)} margin"
    if eq.equivalent:
        verdict = f"within {margin}: equivalent"
    elif eq.ci_low >= eq.margin or eq.ci_high <= -eq.margin:
        verdict = f"outside {margin}: not equivalent"
    else:
        verdict = f"reaching beyond {margin}: equivalence not shown"
    return f"{site} {parameter} {how} ({interval}), {verdict}"
