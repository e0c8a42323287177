"""How a recorded value reads: shown on the page, printed with its changes, named in a comparison.

Shared by the values and calculations kinds (and the printed record's line types, re-exported by
:mod:`mes.core.record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mes.core.batch.state import Recorded
from mes.core.clock import local_text, parse_utc_text
from mes.core.critical import Criticality, milestone
from mes.core.limits import status_words
from mes.core.phases.base import (
    Spec,
)
from mes.core.phases.words import (
    ADDED,
    INPUT_TYPES,
    LIMITS,
    options,
    quantity,
    quoted,
    yes_no,
)

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch


def shown_value(value: Any, spec: Mapping[str, Any] | None, time_zone: str) -> str:
    """A recorded value as people read it: yes/no, a local time, a number with its unit."""
    if value is None or value == "":
        return "—"
    kind = (spec or {}).get("type")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "datetime":
        return local_text(parse_utc_text(str(value)), time_zone)
    unit = (spec or {}).get("unit")
    return f"{value} {unit}" if unit else str(value)


def local_at(at: str | None, time_zone: str) -> str:
    """A stored UTC time in the site's time zone; empty when there is none."""
    return local_text(parse_utc_text(at), time_zone) if at else ""


def who_text(actor: Any) -> str:
    """'Olivia Tester (olivia)': a person as the record names them."""
    return f"{actor.name} ({actor.username})" if actor is not None else ""


# --- the lines of the printed record ---------------------------------------------------------


@dataclass(frozen=True)
class ChangeLine:
    """A value replaced by another: the original, the new value, who, when and why."""

    original: str
    new: str
    by: str
    at_text: str
    reason: str | None  # the correction's reason; None for a value re-entered before signing
    corrects: int | None  # the ledger entry corrected (a correction after signing)

    @property
    def text(self) -> str:
        """The change as the record prints it: which entry, original → new, why, who and when."""
        what = (
            f"Correction of entry {self.corrects}" if self.corrects else "Re-entered before signing"
        )
        reason = f" — reason: {self.reason}" if self.reason else ""
        return f"{what}: {self.original} → {self.new}{reason} — {self.by}, {self.at_text}"


@dataclass(frozen=True)
class ValueLine:
    """A recorded or calculated value with its unit, limits and status."""

    label: str
    value_text: str
    limits: str
    status: str | None  # ok | alert | action (None: no limits apply)
    status_title: str
    calculated: bool
    by: str
    at_text: str
    changes: tuple[ChangeLine, ...]

    @property
    def text(self) -> str:
        """The value as the record prints it: label = value, status, limits, who and when."""
        words = f"{self.label}{' (calculated)' if self.calculated else ''} = {self.value_text}"
        if self.status_title:
            words += f" — {self.status_title}"
        if self.limits:
            words += f" ({self.limits})"
        return f"{words} — {self.by}, {self.at_text}"

    @property
    def css(self) -> str:
        """The row's class in the printed record: alert and action values stand out."""
        return f" st-{self.status}" if self.status in ("alert", "action") else ""


def recorded_on_page(recorded: Recorded, spec: Spec, time_zone: str) -> dict[str, Any]:
    """A recorded value on the operator's page: its text, status, who, when and its history."""
    status = recorded.status
    return {
        "text": shown_value(recorded.value, spec, time_zone),
        "status": status,
        "status_title": status_words(status, spec) or None,
        "by": recorded.by.name,
        "at": local_text(parse_utc_text(recorded.at), time_zone),
        "history": [
            {
                "text": shown_value(h["value"], spec, time_zone),
                "by": h["by"].name,
                "at": local_text(parse_utc_text(h["at"]), time_zone),
                "seq": h["seq"],
            }
            for h in recorded.history
        ],
    }


def local_input_value(value: Any, time_zone: str) -> str:
    """A stored UTC time as a date and time field shows it: ``05/12/2026 14:30`` (site time)."""
    from mes.core.dates import local_date_time_text

    return local_date_time_text(parse_utc_text(str(value)), time_zone)


def value_summary(spec: Spec) -> str:
    """'number in %, target 95 %, action low limit 80 %, 1 decimal' — an input or calculation."""
    kind = "calculation" if spec["type"] == "calculation" else INPUT_TYPES[spec["type"]]
    parts = [f"{kind} in {spec['unit']}" if spec.get("unit") else kind]
    if spec["type"] == "calculation":
        parts.append(f"= {spec['expression']}")
    for name, label in LIMITS:
        if spec.get(name) is not None:
            parts.append(f"{label} {quantity(spec[name], spec.get('unit'))}")
    if spec.get("decimals") is not None:
        parts.append(f"{spec['decimals']} decimal{'s' * (spec['decimals'] != 1)}")
    if spec.get("options") is not None:
        parts.append(f"options {options(spec['options'])}")
    if spec.get("pattern") is not None:
        parts.append(f"pattern {quoted(spec['pattern'])}")
    if spec.get("required") is False:
        parts.append("optional")
    if spec.get("criticality"):
        parts.append(criticality_words(spec["criticality"]))
    if spec.get("milestone"):
        parts.append(f"milestone {milestone_words(spec['milestone'])}")
    return ", ".join(parts)


def criticality_words(criticality: str | None) -> str | None:
    """'cqa' → 'critical quality attribute' (inside a sentence); None stays None."""
    return None if criticality is None else Criticality(criticality).words.lower()


def milestone_words(name: str | None) -> str | None:
    """'collection_end' → ''Collection end' (collection_end)'; None stays None."""
    if name is None:
        return None
    known = milestone(name)
    return f"'{known.title}' ({name})" if known else f"'{name}'"


def _set_or_changed(
    differ: Any, place: Any, field: str, label: str, before: str | None, after: str | None
) -> None:
    """A property set ('criticality set to …'), removed, or changed from one value to another."""
    if before == after:
        return
    if before is None:
        text = f"{place.subject}: {label} set to {after}."
        differ.add(ADDED, place, field, None, after, text)
    else:
        differ.value(place, field, label, before, after, before, after)


def value_fields(differ: Any, place: Any, name: str, before: Spec, after: Spec) -> None:
    """Each property of an input or calculation that changed, limits with their units."""

    def field(key: str, label: str, show: Any) -> None:
        differ.simple(
            place, f"{name} {key}", f"{name}: {label}", before.get(key), after.get(key), show
        )

    field("label", "label", quoted)
    field("type", "type", lambda t: INPUT_TYPES.get(t, t))
    field("expression", "expression", quoted)
    field("unit", "unit", lambda u: u)
    field("decimals", "decimals", lambda d: None if d is None else str(d))
    field("required", "required", yes_no)
    for key, label in LIMITS:
        differ.value(
            place,
            f"{name} {key}",
            f"{name}: {label}",
            before.get(key),
            after.get(key),
            quantity(before.get(key), before.get("unit")),
            quantity(after.get(key), after.get("unit")),
        )
    field("options", "options", options)
    field("pattern", "pattern", quoted)
    field("help", "help text", quoted)
    for key, words in (("criticality", criticality_words), ("milestone", milestone_words)):
        _set_or_changed(
            differ,
            place,
            f"{name} {key}",
            f"{name}: {key}",
            words(before.get(key)),
            words(after.get(key)),
        )


def batchml_parameter(element: ET.Element, spec: Spec, subtype: str) -> ET.Element:
    """A value's BatchML Parameter: its ID, label, type (ProcessParameter) and first subtype."""
    from mes.core import batchml as bml

    parameter = bml._child(element, "Parameter")
    bml._text(parameter, "ID", spec["id"])
    bml._text(parameter, "Description", spec["label"])
    bml._text(parameter, "ParameterType", "ProcessParameter")
    bml._text(parameter, "ParameterSubType", subtype)
    return parameter


def phase_name(batch: Batch, phase_id: str | None) -> str:
    """''Count cells''; the phase ID when the recipe has no such phase."""
    if not phase_id:
        return ""
    plan = batch.procedure.phases.get(phase_id)
    return f"'{plan.name}'" if plan else phase_id
