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
from mes.core.recipe.numbers import parse_duration, seconds
from mes.core.recipe.parts import listed, repeated
from mes.core.recipe.problems import Path

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


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
    compiled_always = True

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """A timer counts from an earlier phase, one per phase, with min at most max."""
        starts: set[str] = set()
        for path, timer in listed(phase_path, phase, "timers"):
            if checker.reference(
                path, (*path, "after"), info, timer["after"], "the timer"
            ) and repeated(starts, timer["after"]):
                checker.problem(
                    path,
                    f"a second timer after '{timer['after']}': give min and max in one timer",
                    at=(*path, "after"),
                )
            for name in ("min", "max"):
                checker.duration(path, timer.get(name), name)
            if (
                "min" in timer
                and "max" in timer
                and (parse_duration(timer["min"]) > parse_duration(timer["max"]))
            ):
                checker.problem(
                    path, f"min {timer['min']} is above max {timer['max']}", at=(*path, "min")
                )

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """The phase's timers, durations in seconds."""
        return [
            {
                "after": t["after"],
                "min_seconds": seconds(t["min"]) if "min" in t else None,
                "max_seconds": seconds(t["max"]) if "max" in t else None,
            }
            for t in phase.get("timers", [])
        ]

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
