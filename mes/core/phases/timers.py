"""Timers: a minimum or maximum time between an earlier phase and the start of this one.

Nothing is entered for a timer: the batch enforces it when the phase starts (a start before the
minimum is refused with the time left, a start after the maximum raises a deviation — see
:mod:`mes.core.batch.actions`). The kind holds its words: on the recipe pages, in BatchML and in
the comparison of two recipe versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mes.core.phases.base import PhaseKind, Spec, whole_item
from mes.core.phases.words import duration

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET


def timer_bounds(timer: Spec) -> str:
    """'at least 20 h and at most 30 h'."""
    bounds = []
    if timer["min_seconds"] is not None:
        bounds.append(f"at least {duration(timer['min_seconds'])}")
    if timer["max_seconds"] is not None:
        bounds.append(f"at most {duration(timer['max_seconds'])}")
    return " and ".join(bounds)


class Timers(PhaseKind):
    """Hold times counted from an earlier phase, enforced when this phase starts."""

    key = "timers"
    title = "Timers"

    def in_words(self, phase: dict[str, Any], names: Any) -> None:
        texts = []
        for timer in phase[self.key]:
            bounds = []
            if timer.get("min_seconds") is not None:
                bounds.append(f"at least {duration(timer['min_seconds']) or ''}")
            if timer.get("max_seconds") is not None:
                bounds.append(f"at most {duration(timer['max_seconds']) or ''}")
            after = names.phases.get(timer["after"], timer["after"])
            texts.append(
                " ".join(
                    part for part in ("Start", " and ".join(bounds), f"after '{after}'") if part
                )
            )
        phase["timer_texts"] = texts

    def batchml_information(self, element: ET.Element, phase: Spec) -> None:
        from mes.core import batchml as bml

        for timer in self.items(phase):
            for bound, key in (("min", "min_seconds"), ("max", "max_seconds")):
                if timer[key] is not None:
                    bml._information(
                        element,
                        f"timer.{timer['after']}.{bound}",
                        [bml._number(timer[key])],
                        description=f"{'Earliest' if bound == 'min' else 'Latest'} start after "
                        f"phase {timer['after']} completes",
                        data_type="decimal",
                        unit="s",
                    )

    def diff(self, differ: Any, place: Any, before: list[Spec], after: list[Spec]) -> None:
        for old, new in differ.paired(before, after, lambda t: t["after"]):
            timer = new or old
            name = f"timer after {differ.phase_reference(timer['after'])}"
            field = f"timer after '{timer['after']}'"
            bounds = timer_bounds(timer)
            if whole_item(
                differ,
                place,
                field,
                old,
                new,
                bounds,
                f"{place.subject}: {name} {{kind}} ({bounds}).",
            ):
                continue
            for key, label in (("min_seconds", "minimum"), ("max_seconds", "maximum")):
                differ.simple(
                    place, f"{field} {key}", f"{name}: {label}", old[key], new[key], duration
                )
        differ.order(
            place,
            "timers order",
            "timers",
            before,
            after,
            lambda t: t["after"],
            lambda t: f"after '{t['after']}'",
        )
