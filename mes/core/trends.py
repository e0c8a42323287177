"""Continued process verification governance: baselines, margins, trends and their dispositions.

Stage 3 of process validation (FDA Process Validation guidance, 2011; EU GMP Annex 15 §5.28-5.32):
the critical parameters of every site stay in a state of control, judged against control
limits frozen from a **baseline** QA approved with an e-signature (until then the limits are
provisional, computed from the data shown), and each site is compared with the network by an
equivalence test against a **margin** QA sets per parameter in advance (ICH Q5E). A signal of
the control-chart rules is a **trend to assess**: QA acknowledges it with a disposition — no
action, a deviation the site opened (its number: the hub
cannot write into a spoke's record), or a CAPA — and a comment. Plain rules, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from mes.core.errors import InvalidInput
from mes.core.text import MAX_LONG_TEXT, free_text, one_line
from mes.core.worded import Worded

NETWORK = "network"
"""The scope of a chart, signal or capability over every site at once (else a site code)."""

DEFAULT_BASELINE_BATCHES = 20
"""N: steady-state limits from ~20-30 points per parameter (shared/NETWORK.md A1)."""

MIN_BASELINE_BATCHES = 8
"""Fewer points than this give limits no better than a guess: a baseline is refused."""

MAX_BASELINE_BATCHES = 500

BASELINE_RECORD_TYPE = "cpv-baseline"
MARGIN_RECORD_TYPE = "cpv-margin"
TREND_RECORD_TYPE = "cpv-trend"


class Disposition(Worded):
    """What QA decided about a trend (a signal of the control-chart rules)."""

    NO_ACTION = "no_action", "No action: assessed, within the process's normal behaviour"
    DEVIATION = "deviation", "Deviation at the site — its number"
    CAPA = "capa", "CAPA opened"


DISPOSITION_REFERENCE = {
    Disposition.DEVIATION: "the number of the deviation the site opened",
    Disposition.CAPA: "the CAPA reference",
}
"""The dispositions that need a reference, and what the reference is."""


MAX_REFERENCE = 60
"""A deviation's or CAPA's number ("DEV-SPK2-2026-014"): one line, at most this long."""


def parse_disposition(value: str | None) -> Disposition:
    """A disposition from the controlled list, or :class:`InvalidInput` naming them."""
    try:
        return Disposition((value or "").strip())
    except ValueError:
        names = "; ".join(f"{d.value} ({d.words})" for d in Disposition)
        raise InvalidInput(
            f"'{value or ''}' is not a disposition of a trend.",
            what_to_do=f"Choose one of: {names}.",
        ) from None


def check_disposition(
    disposition: Disposition, reference: str | None, comment: str | None
) -> tuple[str | None, str]:
    """The reference (None for no action) and comment of a disposition, both required where due.

    A deviation or a CAPA is named by its reference so the trend's record leads to it; every
    disposition says why in a comment (EU GMP Ch. 1 §1.4(xiv): trends are assessed, and the
    assessment is recorded).
    """
    text = free_text(comment, "The comment", max_length=MAX_LONG_TEXT)
    if not text:
        raise InvalidInput(
            "Say in a comment why this disposition fits the trend.",
            what_to_do="Write what you looked at and what you concluded.",
        )
    ref = one_line(reference, "The reference", max_length=MAX_REFERENCE) or None
    needed = DISPOSITION_REFERENCE.get(disposition)
    if needed and ref is None:
        raise InvalidInput(f"'{disposition.words}' needs {needed}.", what_to_do=f"Type {needed}.")
    return (ref if needed else None), text


REASON_FOR = {
    "margin": (
        "Say why this margin fits the parameter.",
        "Give the reason (e.g. the variability of the reference sites).",
    ),
    "baseline": (
        "A baseline of this parameter is in force: say why this one replaces it.",
        "Give the reason (e.g. a process change, after its validation).",
    ),
}


def check_reason(reason: str | None, *, required: bool, of: str = "margin") -> str | None:
    """The reason given for a baseline or a margin, kept as typed (at most 2,000 characters).

    Required for every margin, and for a baseline that replaces one in force (EU GMP Annex 11
    §9: the reason for a change of GMP-relevant data is recorded).
    """
    text = free_text(reason, "The reason")
    if required and not text:
        message, hint = REASON_FOR[of]
        raise InvalidInput(message, what_to_do=hint)
    return text or None


def check_margin(value: float | None) -> float:
    """An equivalence margin: a finite number above zero, in the parameter's unit."""
    if value is None or not math.isfinite(value) or value <= 0:
        raise InvalidInput(
            "The equivalence margin is a number above zero, in the parameter's unit.",
            what_to_do="Type the largest site-vs-network difference of means that is still "
            "equivalent (e.g. 2 for ±2 %).",
        )
    return float(value)


@dataclass(frozen=True)
class BaselineRequest:
    """What QA asks to freeze: the first ``batches`` batches of the period."""

    date_from: date
    date_to: date
    batches: int


def check_baseline_request(date_from: date, date_to: date, batches: int | None) -> BaselineRequest:
    """A period in order and a number of batches a baseline can rest on."""
    if date_to < date_from:
        raise InvalidInput(
            "The baseline's period ends before it starts.", what_to_do="Swap the two dates."
        )
    if batches is None or not MIN_BASELINE_BATCHES <= batches <= MAX_BASELINE_BATCHES:
        raise InvalidInput(
            f"A baseline takes from {MIN_BASELINE_BATCHES} to {MAX_BASELINE_BATCHES} batches.",
            what_to_do=f"Type the number of batches (usually {DEFAULT_BASELINE_BATCHES}).",
        )
    return BaselineRequest(date_from, date_to, batches)


def check_enough_for_baseline(found: int, wanted: int, parameter: str) -> None:
    """The period holds at least the batches asked for."""
    if found < wanted:
        raise InvalidInput(
            f"The period holds {found} batch{'es' if found != 1 else ''} with {parameter}; "
            f"the baseline asks for {wanted}.",
            what_to_do="Choose a longer period or fewer batches.",
        )


def check_spread(values: list[float], parameter: str, unit: str | None = None) -> None:
    """The baseline's values vary: with no moving range σ is 0 and the limits say nothing.

    Limits at centre ± 0 would make every later value a signal (or, where σ 0 is skipped, none
    ever): such a baseline is refused, not frozen.
    """
    if len(values) >= 2 and all(a == b for a, b in pairwise(values)):
        shown = f"{values[0]:g}{' ' + unit if unit else ''}"
        raise InvalidInput(
            f"The {len(values)} batches of the baseline all read {shown} for {parameter}: "
            "control limits need spread.",
            what_to_do="Choose a longer period (or more batches) whose values vary.",
        )


def baseline_record(
    *,
    recipe_code: str,
    parameter: str,
    unit: str,
    date_from: date,
    date_to: date,
    batch_numbers: list[str],
    centre: float,
    sigma: float,
    lcl: float,
    ucl: float,
    mr_centre: float,
    mr_ucl: float,
) -> dict[str, object]:
    """The record QA's signature binds to: what was frozen, from which batches (21 CFR 11.70)."""
    return {
        "type": BASELINE_RECORD_TYPE,
        "recipe_code": recipe_code,
        "parameter": parameter,
        "unit": unit,
        "period": [date_from.isoformat(), date_to.isoformat()],
        "batches": list(batch_numbers),
        "centre": centre,
        "sigma": sigma,
        "lcl": lcl,
        "ucl": ucl,
        "mr_centre": mr_centre,
        "mr_ucl": mr_ucl,
    }


def margin_record(
    *, recipe_code: str, parameter: str, unit: str, margin: float
) -> dict[str, object]:
    """The record QA's signature of a margin binds to."""
    return {
        "type": MARGIN_RECORD_TYPE,
        "recipe_code": recipe_code,
        "parameter": parameter,
        "unit": unit,
        "margin": margin,
    }


def disposition_record(
    *,
    trend_id: str,
    words: str,
    disposition: Disposition,
    reference: str | None,
    comment: str,
) -> dict[str, object]:
    """The record QA's acknowledgement of a trend binds to: the trend in words and the decision."""
    return {
        "type": TREND_RECORD_TYPE,
        "trend": trend_id,
        "signal": words,
        "disposition": disposition.value,
        "reference": reference,
        "comment": comment,
    }
