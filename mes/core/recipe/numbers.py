"""Durations, limits and numbers as a recipe writes them."""

from __future__ import annotations

import re
from decimal import Decimal

NUMERIC_INPUTS = ("number", "integer")
LIMIT_FIELDS = ("target", "alert_low", "alert_high", "action_low", "action_high")
DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(s|min|h|d)$")
SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
MAX_DURATION = "3650 d"  # ten years: longer is a typing error (and no longer exact in JSON)
MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer canonical JSON (RFC 8785) represents exactly


def parse_duration(text: str) -> float:
    """'48 h' → 172800.0 seconds (the schema has already checked the form)."""
    return float(_exact_seconds(text))


def _exact_seconds(text: str) -> Decimal:
    """Decimal arithmetic: '2.3 d' and '55.2 h' are the same 198720 s (binary floats differ)."""
    match = DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return Decimal(match.group(1)) * SECONDS[match.group(2)]


def seconds(text: str) -> int | float:
    """A duration in seconds: a whole number when it is one (the compiled form's)."""
    value = _exact_seconds(text)
    return int(value) if value == value.to_integral_value() else float(value)


def decimal_places(value: float) -> int:
    """How many decimals a number is written with: 95.25 → 2, 80 → 0, 1e-07 → 7."""
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def number_text(value: float) -> str:
    """A limit as the author wrote it: 80 (not 80.0), 85.25, 1e-07."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
