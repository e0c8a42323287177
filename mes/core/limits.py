"""Recorded values: typed as the recipe declares, judged against alert and action limits.

A value is recorded exactly as entered once it is well-formed for its type: a number is never
rounded or clipped, and a value outside its limits is never refused — it is flagged (outside
alert limits) or raises a deviation (outside action limits). What *is* refused, with a message
saying what to type, is a value that is not of the declared type: letters in a number, more
decimals than the recipe records, an option that does not exist, a date in the future.

Calculated values are worked out with the recipe's declared expressions
(:mod:`mes.core.expressions`, never ``eval``), rounded half away from zero to the declared
decimals (USP General Notices 7.20), and judged against their limits like any input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from mes.core.clock import as_utc, utc_text
from mes.core.dates import DateNotUnderstood, parse_local_date_time
from mes.core.errors import InvalidInput
from mes.core.expressions import ExpressionError, parse, round_half_up
from mes.core.patterns import PatternInvalid, has_form
from mes.core.text import MAX_FREE_TEXT, free_text_problem, line_problem
from mes.core.worded import Worded, words_of

MAX_WHOLE_DIGITS = 15  # significant digits before the decimal point: 10^15 is implausible
MAX_NUMBER_TEXT = 40  # characters of a typed number (sign, digits, point; leading zeros too)
MAX_DECIMALS = 6  # a number whose recipe declares no decimals; also the most a recipe declares
FUTURE_TOLERANCE = timedelta(minutes=5)  # a clock a few minutes fast is not an error


class LimitStatus(Worded):
    """How a value stands against its limits."""

    OK = "ok", "Within limits"  # inside the alert limits, or no limits
    # outside the alert limits, inside the action limits: flagged for review
    ALERT = "alert", "Outside alert limits"
    ACTION = "action", "Outside action limits"  # outside the action limits: a deviation


STATUS_TITLES = words_of(LimitStatus)


class InvalidValue(InvalidInput):
    """A value that is not of the type the recipe declares; nothing was recorded.

    ``fields`` maps each offending field to its message, for pages to show next to the field.
    """

    http_status = 422

    def __init__(
        self, message: str, *, what_to_do: str = "", fields: dict[str, str] | None = None
    ) -> None:
        self.fields = fields or {}
        super().__init__(message, what_to_do=what_to_do)


def _number(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))


def limit_status(value: Decimal | float | int, spec: Mapping[str, Any]) -> LimitStatus:
    """Outside the action limits → ACTION; outside the alert limits → ALERT; else OK.

    Limits are inclusive: a value equal to a limit is inside it.
    """
    number = _number(value)
    assert number is not None
    action_low, action_high = _number(spec.get("action_low")), _number(spec.get("action_high"))
    alert_low, alert_high = _number(spec.get("alert_low")), _number(spec.get("alert_high"))
    if (action_low is not None and number < action_low) or (
        action_high is not None and number > action_high
    ):
        return LimitStatus.ACTION
    if (alert_low is not None and number < alert_low) or (
        alert_high is not None and number > alert_high
    ):
        return LimitStatus.ALERT
    return LimitStatus.OK


def _plain(number: Any) -> str:
    text = format(Decimal(str(number)).normalize(), "f")
    return text


def limits_text(spec: Mapping[str, Any]) -> str:
    """The limits in words, the one place they are put so: 'acceptable ≥ 70 %; alert below 85 %'.

    The action limits bound what is acceptable (outside them a deviation is raised); the alert
    limits say where a value is flagged for review. Written this way because "alert ≥ 85;
    action ≥ 70" read as the range of each level, when it is the range *outside* which each
    level applies. The operator's page, the printed record, messages and the CLI all use it.
    """
    unit = f" {spec['unit']}" if spec.get("unit") else ""

    def shown(number: Any) -> str:
        return f"{_plain(number)}{unit}"

    parts = []
    for level, both, low_only, high_only in (
        ("action", "acceptable {} – {}", "acceptable ≥ {}", "acceptable ≤ {}"),
        ("alert", "alert outside {} – {}", "alert below {}", "alert above {}"),
    ):
        low, high = spec.get(f"{level}_low"), spec.get(f"{level}_high")
        if low is not None and high is not None:
            parts.append(both.format(_plain(low), shown(high)))
        elif low is not None:
            parts.append(low_only.format(shown(low)))
        elif high is not None:
            parts.append(high_only.format(shown(high)))
    if spec.get("target") is not None:
        parts.append(f"target {shown(spec['target'])}")
    return "; ".join(parts)


NO_LIMITS = "no limits"


def status_words(status: str | None, spec: Mapping[str, Any]) -> str:
    """How a recorded value stands in words; 'no limits' where the recipe sets none.

    'Outside alert limits', 'Within limits' — or 'no limits': a value without limits is not
    "within" any.

    Empty when no status was recorded (a value that is not a number).
    """
    if not has_limits(spec):
        return NO_LIMITS if status else ""
    return STATUS_TITLES[LimitStatus(status)] if status else ""


def has_limits(spec: Mapping[str, Any]) -> bool:
    """Whether any alert or action limit is declared."""
    return any(
        spec.get(k) is not None for k in ("alert_low", "alert_high", "action_low", "action_high")
    )


# ASCII digits only: a number is kept as typed, and full-width or Arabic-Indic digits would be
# recorded as such.
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def parse_value(spec: Mapping[str, Any], raw: Any, *, at: datetime, time_zone: str) -> Any:
    """The value to record for an input of the recipe, or :class:`InvalidValue` saying why not.

    Numbers are kept as the text entered (``"95.0"`` stays ``"95.0"``); yes/no as true/false;
    a date and time, entered in the site's time zone, as UTC text.
    Returns None for an empty optional value.
    """
    label = spec["label"]
    kind = spec["type"]
    if isinstance(raw, str):
        raw = raw.strip()
    if raw is None or raw == "":
        if spec.get("required", True):
            raise InvalidValue(f"{label}: a value is required.", what_to_do="Enter the value.")
        return None
    if kind == "number":
        return _parse_number(spec, str(raw))
    if kind == "integer":
        text = str(raw)
        if not _INTEGER.match(text):
            raise InvalidValue(
                f"{label}: '{_shown(text)}' is not a whole number.", what_to_do="Enter digits only."
            )
        # Bounded like a number (int() would also refuse over 4300 digits, with a ValueError).
        _check_whole_digits(label, text, text.lstrip("+-"))
        return str(int(text))
    if kind == "yes_no":
        return _parse_yes_no(label, raw)
    if kind == "choice":
        options = spec.get("options") or []
        if raw not in options:
            raise InvalidValue(
                f"{label}: '{raw}' is not one of the options.",
                what_to_do="Choose one of: " + ", ".join(options) + ".",
            )
        return raw
    if kind == "datetime":
        return _parse_datetime(label, str(raw), at, time_zone)
    text = str(raw)
    if kind == "barcode":
        problem = line_problem(text) or (
            f"is {len(text):,} characters long; at most {MAX_FREE_TEXT:,} are allowed"
            if len(text) > MAX_FREE_TEXT
            else None
        )
    else:
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # browsers send CR LF
        problem = free_text_problem(text)
    if problem is not None:
        raise InvalidValue(
            f"{label}: the text {problem}.",
            what_to_do="Nothing was recorded; correct the text and save again.",
        )
    pattern = spec.get("pattern")
    if pattern and not _has_form(label, pattern, text):
        raise InvalidValue(
            f"{label}: '{text}' does not have the expected form.",
            what_to_do="Check the value (or the label scanned) and enter it again.",
        )
    return text


def _has_form(label: str, pattern: str, text: str) -> bool:
    try:
        return has_form(pattern, text)
    except PatternInvalid as refusal:
        raise InvalidValue(
            f"{label}: the recipe's {refusal.message}",
            what_to_do="Nothing can be recorded against it: tell the recipe's owner, who "
            "approves a new version.",
        ) from None


def _parse_number(spec: Mapping[str, Any], text: str) -> str:
    label = spec["label"]
    if "," in text and "." not in text and re.fullmatch(r"[+-]?\d+,\d+", text):
        raise InvalidValue(
            f"{label}: '{text}' uses a comma; decimals are written with a point.",
            what_to_do=f"Enter {text.replace(',', '.')}.",
        )
    if not _NUMBER.match(text):  # digits and a point only: no exponent (1e999999), no NaN
        raise InvalidValue(
            f"{label}: '{_shown(text)}' is not a number.", what_to_do="Enter a number."
        )
    whole, _, fraction = text.lstrip("+-").partition(".")
    _check_whole_digits(label, text, whole)
    decimals = spec.get("decimals")
    if decimals is None and len(fraction) > MAX_DECIMALS:
        raise InvalidValue(
            f"{label}: {_shown(text)} has {len(fraction):,} decimals; a value is recorded to at "
            f"most {MAX_DECIMALS}.",
            what_to_do=f"Enter it with at most {MAX_DECIMALS} decimals, as read on the instrument.",
        )
    if decimals is not None and len(fraction) > decimals:
        raise InvalidValue(
            f"{label}: {_shown(text)} has {len(fraction):,} decimals; this value is recorded to "
            f"{decimals}.",
            what_to_do=f"Enter it with at most {decimals} decimals, as read on the instrument.",
        )
    return text


def _check_whole_digits(label: str, text: str, whole: str) -> None:
    """A value of at most :data:`MAX_NUMBER_TEXT` characters below 10^15: a few bytes to keep."""
    if len(text) > MAX_NUMBER_TEXT:
        raise InvalidValue(
            f"{label}: the value typed has {len(text):,} characters; a number is entered in at "
            f"most {MAX_NUMBER_TEXT} ({MAX_WHOLE_DIGITS} digits before the point, at most "
            f"{MAX_DECIMALS} after).",
            what_to_do="Enter the value as read on the instrument (in the unit shown).",
        )
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise InvalidValue(f"{label}: {text} is too large to be a plausible value.")


def _shown(text: str) -> str:
    """An entered value as quoted in a message: cut short when long (a message is one line)."""
    return text if len(text) <= 40 else text[:40] + "…"


def _parse_yes_no(label: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text in ("yes", "true", "y", "1"):
        return True
    if text in ("no", "false", "n", "0"):
        return False
    raise InvalidValue(f"{label}: answer yes or no.")


def _parse_datetime(label: str, text: str, at: datetime, time_zone: str) -> str:
    """A date and time typed in site time (read by :mod:`mes.core.dates`), as UTC text."""
    try:
        moment = as_utc(parse_local_date_time(text, time_zone, label=label))
    except DateNotUnderstood as refusal:
        raise InvalidValue(refusal.message, what_to_do=refusal.what_to_do) from None
    if moment > as_utc(at) + FUTURE_TOLERANCE:
        raise InvalidValue(
            f"{label}: {text} is in the future.",
            what_to_do="Record when it happened; a time cannot be ahead of now.",
        )
    return utc_text(moment)


def numeric(value: Any) -> float | None:
    """A recorded number or integer as a float for calculations (None when not recorded)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return result if math.isfinite(result) else None


def calculate(spec: Mapping[str, Any], values: Mapping[str, float]) -> str:
    """A calculation's value from the values it names, rounded to its decimals, as text.

    Raises :class:`InvalidValue` when a value is missing or the arithmetic fails (e.g. a
    division by zero), saying which.
    """
    try:
        result = parse(spec["expression"]).evaluate(values)
    except ExpressionError as err:
        raise InvalidValue(
            f"{spec['label']} cannot be calculated: {err.message}.",
            what_to_do="Check the values it is calculated from.",
        ) from None
    decimals = spec.get("decimals")
    if decimals is not None:
        result = round_half_up(result, decimals)
        return f"{Decimal(repr(result)):.{decimals}f}"
    return _plain(Decimal(repr(result)))
