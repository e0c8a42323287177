"""Showing master recipes to people: safe Markdown, and a compiled procedure in words.

Phase instructions are CommonMark written by recipe authors, rendered safely by
:mod:`mes.core.commonmark` (no raw HTML, no images, safe links only).

:func:`procedure_in_words` adds to a compiled recipe (:func:`mes.core.recipe.compile_recipe`) the
sentences a reviewer reads — who performs and verifies, the condition, the timers, the identity
checks — so both the hub's master batch record and the spoke's installed version read the same.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from mes.core import phases
from mes.core.after_release import (
    NOTIFICATION_WAYS,
    AfterRelease,
    Certification,
)
from mes.core.clock import local_text, parse_utc_text
from mes.core.commonmark import markdown_html
from mes.core.critical import (
    critical_inputs,
    hours_text,
    milestone_inputs,
    point_title,
    turnaround_of,
    turnaround_words,
)
from mes.core.ordering import ORDERING_WORDS
from mes.core.phases.words import duration
from mes.core.recipe_diff import ROLES

MODALITY_WORDS = {
    "autologous_cell": "autologous cell therapy",
    "allogeneic_cell": "allogeneic cell therapy",
    "gene_therapy_vector": "gene therapy vector",
    "mrna": "mRNA",
    "tissue": "tissue",
    "other": "other",
}


def markdown(text: str | None) -> Markup:
    """CommonMark → HTML that is safe to put in a page (the ``markdown`` template filter)."""
    return Markup(markdown_html(text))  # noqa: S704 - raw HTML is off and links are checked


# --- a compiled procedure in words ------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    """72000 → '20 h', 5400 → '90 min': the largest unit that divides the duration exactly."""
    return duration(seconds) or ""


def _option(value: str | bool) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return f"'{value}'"


def _performed_by(phase: Mapping[str, Any]) -> str:
    text = f"Performed by {ROLES.get(phase['perform'], phase['perform'])}"
    if phase.get("verify"):
        text += f" · verified by {ROLES.get(phase['verify'], phase['verify'])}"
    return text


class _Names:
    """Labels by ID across the recipe, for sentences that refer to other elements."""

    def __init__(self, compiled: Mapping[str, Any]) -> None:
        self.phases: dict[str, str] = {}
        self.values: dict[str, str] = {}
        for unit in compiled["unit_procedures"]:
            for operation in unit["operations"]:
                for phase in operation["phases"]:
                    self.phases[phase["id"]] = phase["name"]
                    for spec in (*phase["inputs"], *phase["calculations"]):
                        self.values[f"{phase['id']}.{spec['id']}"] = spec["label"]
        self.identity = {f["id"]: f["label"] for f in compiled["chain_of_identity"]}

    def condition(self, when: Mapping[str, Any] | None) -> str | None:
        if when is None:
            return None
        label = self.values.get(when["input"], when["input"])
        return f"Only when '{label}' is " + " or ".join(_option(v) for v in when["in"])


def procedure_in_words(compiled: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the compiled recipe with the words people read added to each element.

    Operations get ``ordering_text``; phases get ``performed_by``, ``condition_text``,
    ``timer_texts`` and ``identity_check_texts``; inputs and calculations get ``type_text``,
    ``limits`` (display text per limit), ``criticality_text`` and ``milestone_text``; the recipe
    gets ``turnaround_texts``, ``critical_inputs`` and ``milestone_inputs`` (:mod:`mes.core.critical`).
    The compiled content itself is not changed.
    """
    names = _Names(compiled)
    recipe = copy.deepcopy(dict(compiled))
    recipe["modality_text"] = MODALITY_WORDS.get(
        recipe["product"]["modality"], recipe["product"]["modality"]
    )
    recipe["expected_duration_text"] = duration_text(recipe.get("expected_duration_seconds"))
    turnaround = turnaround_of(compiled)
    units = {unit["id"]: unit["name"] for unit in compiled["unit_procedures"]}
    recipe["turnaround_texts"] = turnaround_words(turnaround, units) if turnaround else []
    recipe["turnaround_target_text"] = (
        f"{hours_text(turnaround.target_hours)} vein to vein"
        if turnaround and turnaround.target_hours is not None
        else None
    )
    recipe["critical_inputs"] = [
        {
            "parameter": c.parameter,
            "label": c.label,
            "phase_id": c.phase_id,
            "phase_name": c.phase_name,
            "criticality": c.criticality.value,
            "criticality_text": c.criticality.words,
            "unit": c.unit,
        }
        for c in critical_inputs(compiled)
    ]
    recipe["milestone_inputs"] = [
        {
            "name": name,
            "title": point_title(name),
            "phase_id": phase_id,
            "label": names.values.get(f"{phase_id}.{value_id}", value_id),
        }
        for name, (phase_id, value_id) in milestone_inputs(compiled).items()
    ]
    for unit in recipe["unit_procedures"]:
        for operation in unit["operations"]:
            operation["ordering_text"] = ORDERING_WORDS[operation["ordering"]].heading
            for phase in operation["phases"]:
                _phase_in_words(phase, names)
    return recipe


def _phase_in_words(phase: dict[str, Any], names: _Names) -> None:
    phase["performed_by"] = _performed_by(phase)
    phase["condition_text"] = names.condition(phase.get("when"))
    for kind in phases.KINDS.values():  # timers, identity checks, values, materials…
        kind.in_words(phase, names)


def grouped_by_place(changes: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """Changes grouped by their ``where``, in the order the places first appear."""
    groups: dict[str, list[Any]] = {}
    for change in changes:
        groups.setdefault(change.where, []).append(change)
    return list(groups.items())


def after_release_items(state: AfterRelease, zone: str) -> dict[str, Any]:
    """A batch after release for its pages: certification, results, events, notification."""

    def when(at: str) -> str:
        return local_text(parse_utc_text(at), zone)

    return {
        "certification": state.certification.value,
        "certification_text": state.certification_words,
        "certified": f"{state.certified_by}, {when(state.certified_at)}"
        if state.certified_by and state.certified_at
        else None,
        "declared": bool(state.declared),
        "pending": [
            {"id": p.id, "label": p.label, "specification": p.specification, "unit": p.unit}
            for p in state.pending
        ],
        "results": [
            {
                "id": r.result,
                "label": r.label,
                "value": f"{r.value} {r.unit}" if r.unit else r.value,
                "within": r.within_specification,
                "specification": r.specification,
                "reference": r.reference,
                "entered": f"{r.by} at the {r.chain}, {when(r.at)}",
                "corrects": r.corrects,
                "key": r.key,
            }
            for r in state.results
        ],
        "events": [
            {
                "result": e.result.result,
                "label": e.result.label,
                "notified": (
                    f"{e.notification.physician} told {NOTIFICATION_WAYS.get(e.notification.how, e.notification.how)} "
                    f"by {e.notification.by}"
                )
                if e.notification
                else None,
                "deviation": e.deviation,
                "closed": e.closed,
            }
            for e in state.events
        ],
        "notification_pending": [e.result.result for e in state.notification_pending],
        "ways": list(NOTIFICATION_WAYS.items()),
        "may_certify": state.ready_for_final,
        "kept_provisional_by": state.kept_provisional_by
        if state.certification is Certification.PROVISIONAL
        else [],
    }
