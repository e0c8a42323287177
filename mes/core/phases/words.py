"""The words every phase kind uses for numbers, durations, quantities and options.

Shared by the kinds (:mod:`mes.core.phases`), the recipe comparison
(:mod:`mes.core.recipe_diff`) and the recipe in words (:mod:`mes.web.rendering`), so "80 %",
"20 h" and "yes" read the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
MOVED = "moved"

LIMITS = (
    ("target", "target"),
    ("alert_low", "alert low limit"),
    ("alert_high", "alert high limit"),
    ("action_low", "action low limit"),
    ("action_high", "action high limit"),
)
INPUT_TYPES = {
    "number": "number",
    "integer": "integer",
    "text": "text",
    "choice": "choice",
    "yes_no": "yes/no",
    "datetime": "date and time",
    "barcode": "barcode",
}
DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def number_text(value: float | int | None) -> str:
    """80 → '80', 80.0 → '80', 0.5 → '0.5', True → 'yes'; None → ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def quantity(value: float | None, unit: str | None) -> str | None:
    """'80 %', '2 mL', '3'; None when there is no value."""
    if value is None:
        return None
    return f"{number_text(value)} {unit}" if unit else number_text(value)


def hours(value: float | None) -> str | None:
    """240 → '240 h', 12.5 → '12.5 h'; None when there is none."""
    return None if value is None else f"{number_text(value)} h"


def duration(seconds: float | None) -> str | None:
    """72000 → '20 h', 5400 → '90 min': the largest unit that divides the duration exactly."""
    if seconds is None:
        return None
    for unit, size in DURATION_UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{number_text(seconds / size)} {unit}"
    return f"{number_text(seconds)} s"


def quoted(text: str | None) -> str | None:
    """'text' in quotes; None stays None."""
    return None if text is None else f"'{text}'"


def yes_no(value: bool | None) -> str | None:
    """'yes' or 'no'; None stays None."""
    return None if value is None else ("yes" if value else "no")


def option(value: str | bool) -> str:
    """A choice as a sentence names it: yes/no, or the option in quotes."""
    return str(yes_no(value)) if isinstance(value, bool) else f"'{value}'"


def options(values: Sequence[str] | None) -> str | None:
    """'a', 'b', 'c' — None when there are no options."""
    return None if values is None else ", ".join(option(v) for v in values)


def limit_texts(spec: Mapping[str, Any]) -> dict[str, str]:
    """Each limit as text; a limit not set shows as a dash (no blank cells on a record)."""
    return {
        name: number_text(spec[name]) if spec.get(name) is not None else "—"
        for name, _label in LIMITS
    }
