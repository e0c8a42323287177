"""A new phase kind is one class registered in KINDS: every layer picks it up without a change.

The kind here, a checklist of yes/no items ("gowning checked", "line clearance done"), exists only
in this test. Registered for the test, it is recorded from a submitted form, refuses the
performed signature while an item is not ticked, is part of the record the signature binds to,
replays, and has its words in the audit trail, the printed record, ``mes batch show``, the
operator's page, BatchML and the comparison of two recipe versions (docs/architecture.md,
"Adding a phase kind").
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from batch_fixtures import (
    COMPILED,
    OLIVIA,
    RECIPE_REF,
    SAM,
    SCANNER,
    SITE,
    T0,
    TERMINAL,
    prepare_and_sign,
    sign,
)
from batch_helpers import DIN, IDENTIFIERS, PATIENT, TEST_RECIPE

from mes.core import phases
from mes.core.batch import Action, Batch, PhasePlan, PhaseState, PhaseStatus, Procedure
from mes.core.batchml import master_recipe_batchml
from mes.core.errors import MesError, PhaseIncomplete
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry
from mes.core.phases import Acting, PageForm, PhaseKind, Printing, Site
from mes.core.phases.base import Items, Lines, whole_item
from mes.core.phases.words import quoted
from mes.core.recipe import RecipeInvalid, load_recipe
from mes.core.recipe.parts import listed, repeated
from mes.core.recipe_diff import diff_recipes
from mes.core.record import entries_in_words
from mes.web.operator.pages import phase_page

TICKED = "checklist_ticked"


@dataclass(frozen=True)
class TickLine:
    """An item ticked, as the printed record shows it."""

    text: str
    css: str = ""
    changes: tuple[Any, ...] = ()


class Checklists(PhaseKind):
    """Yes/no items the operator ticks before signing (the kind this test adds)."""

    key = "checklists"
    title = "Checklist"
    field = "check"
    argument = "checks"
    entry_kinds = frozenset({TICKED})
    on_screen = 15
    signed_as = "checklists"
    schema = {  # its part of the recipe format (a phase's "checklists")
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "label"],
            "properties": {"id": {"$ref": "#/$defs/id"}, "label": {"$ref": "#/$defs/label"}},
        },
    }

    def check(self, checker: Any, phase_path: Any, phase: Any, info: Any) -> None:
        seen: set[str] = set()
        for path, item in listed(phase_path, phase, self.key):
            if repeated(seen, item["id"]):
                checker.problem(path, f"checklist item '{item['id']}' is listed twice")

    def record(self, batch: Batch, phase_id: str, data: Any, acting: Acting) -> dict[str, MesError]:
        entries = data.get("checks") or {}
        if not entries:
            return {}
        plan, _phase = batch._in_progress(phase_id)
        batch._performer_checks(plan, acting.who, f"tick items in '{plan.name}'")
        for item_id, answer in entries.items():
            payload = {"phase": phase_id, "item": item_id, "ticked": answer == "yes"}
            batch._append(TICKED, payload, acting.who.actor, acting.at, acting.terminal)
        return {}

    def apply(
        self, batch: Batch, phase: PhaseState, payload: Mapping[str, Any], entry: SealedEntry
    ) -> str:
        self.recorded(phase)[payload["item"]] = payload["ticked"]
        return f"ticked {payload['item']}"

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        ticked = self.recorded(phase)
        return [
            f"{item['label']} is not ticked"
            for item in self.items(plan.spec)
            if not ticked.get(item["id"])
        ]

    def entry_text(self, batch: Batch, kind: str, payload: Mapping[str, Any]) -> str:
        answer = "ticked" if payload["ticked"] else "left unticked"
        return f"{answer} '{payload['item']}' in {payload['phase']}"

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        ticked = self.recorded(phase)
        return [
            {**item, "key": self.field_key(item["id"]), "ticked": bool(ticked.get(item["id"]))}
            for item in self.items(plan.spec)
        ]

    def printed(self, batch: Batch, plan: PhasePlan, phase: PhaseState, how: Printing) -> Lines:
        ticked = self.recorded(phase)
        return tuple(
            TickLine(f"Checklist {item['label']}: {'yes' if ticked.get(item['id']) else 'no'}")
            for item in self.items(plan.spec)
        )

    def batchml_information(self, element: Any, phase: Mapping[str, Any]) -> None:
        from mes.core import batchml as bml

        for item in self.items(phase):
            bml._information(element, f"checklist.{item['id']}", ["yes"], description=item["label"])

    def diff(self, differ: Any, place: Any, before: list[Any], after: list[Any]) -> None:
        for old, new in differ.paired(before, after, lambda i: i["id"]):
            item = new or old
            name = f"checklist item {quoted(item['label'])}"
            whole_item(differ, place, name, old, new, None, f"{place.subject}: {name} {{kind}}.")


ITEMS = [
    {"id": "gowning", "label": "Gowning checked"},
    {"id": "line_clearance", "label": "Line clearance done"},
]


@pytest.fixture
def checklists(monkeypatch: pytest.MonkeyPatch) -> Checklists:
    """The checklist kind, registered in KINDS for this test only."""
    kind = Checklists()
    monkeypatch.setitem(phases.KINDS, kind.key, kind)
    return kind


def with_checklist(compiled: Mapping[str, Any], items: list[dict[str, str]]) -> dict[str, Any]:
    """The test recipe with a checklist in its first phase ('Check the bag')."""
    recipe = copy.deepcopy(dict(compiled))
    recipe["unit_procedures"][0]["operations"][0]["phases"][0]["checklists"] = items
    return recipe


def started(procedure: Procedure) -> Batch:
    batch = Batch.create(
        procedure,
        batch_id="b-0001",
        number="SPK1-2026-0001",
        site=SITE,
        recipe=RECIPE_REF,
        identifiers=IDENTIFIERS,
        who=OLIVIA,
        at=T0,
        terminal=TERMINAL,
        key=SiteKey.generate(),
        time_zone="Europe/Berlin",
    )
    sign(batch, Action.START, OLIVIA, T0)
    batch.start_phase("check_bag", OLIVIA, T0, TERMINAL)
    batch.record_values("check_bag", {"bag_intact": "yes"}, OLIVIA, T0, TERMINAL)
    batch.use_equipment("check_bag", 0, SCANNER, "SCN-01", OLIVIA, T0, TERMINAL, T0.date())
    batch.check_identity("check_bag", "bag_din", f"={DIN}00", OLIVIA, T0, TERMINAL)
    batch.check_identity("check_bag", "bag_patient", PATIENT, OLIVIA, T0, TERMINAL)
    return batch


def submit(batch: Batch, form: dict[str, str]) -> dict[str, MesError]:
    """What the operator's form posts, parsed by the kinds and recorded."""
    data = phases.parse_form(form)
    return batch.record("check_bag", data, OLIVIA, T0, TERMINAL, Site(T0.date()))


CHECKLIST_YAML = """\
            checklists:
              - {id: gowning, label: Gowning checked}
              - {id: line_clearance, label: Line clearance done}
"""


def recipe_text(checklist: str = CHECKLIST_YAML) -> str:
    """The batch test recipe with a checklist in its first phase, as an author writes it."""
    anchor = "            verify: supervisor\n"
    assert anchor in TEST_RECIPE
    return TEST_RECIPE.replace(anchor, anchor + checklist, 1)


def test_a_recipe_using_a_registered_kind_validates_and_compiles(checklists: Checklists) -> None:
    compiled = load_recipe(recipe_text(), "checklist.yaml").data
    phase = compiled["unit_procedures"][0]["operations"][0]["phases"][0]
    assert phase["checklists"] == ITEMS
    assert "checklists" not in compiled["unit_procedures"][0]["operations"][0]["phases"][1]

    twice = CHECKLIST_YAML + "              - {id: gowning, label: Gowning again}\n"
    with pytest.raises(RecipeInvalid, match="checklist item 'gowning' is listed twice"):
        load_recipe(recipe_text(twice), "checklist.yaml")


def test_without_the_kind_registered_the_recipe_format_has_no_checklists() -> None:
    with pytest.raises(RecipeInvalid, match="checklists"):
        load_recipe(recipe_text(), "checklist.yaml")


def test_a_registered_kind_is_recorded_from_the_form_and_blocks_signing_until_complete(
    checklists: Checklists,
) -> None:
    batch = started(Procedure(load_recipe(recipe_text(), "checklist.yaml").data))

    assert submit(batch, {"check:gowning": "yes", "value:bag_intact": "yes"}) == {}
    assert checklists.recorded(batch.state.phases["check_bag"]) == {"gowning": True}
    assert batch.missing_for_performance("check_bag") == ["Line clearance done is not ticked"]
    with pytest.raises(PhaseIncomplete, match="Line clearance done is not ticked"):
        batch.prepare(Action.PERFORM, OLIVIA, T0, phase_id="check_bag")

    submit(batch, {"check:line_clearance": "yes"})
    record, _signature = prepare_and_sign(batch, Action.PERFORM, OLIVIA, T0, phase_id="check_bag")
    assert record["checklists"] == {"gowning": True, "line_clearance": True}
    sign(batch, Action.VERIFY, SAM, T0, phase_id="check_bag")
    assert batch.state.phases["check_bag"].status is PhaseStatus.VERIFIED

    replayed = Batch.replay(batch.procedure, batch.new_entries, time_zone="Europe/Berlin")
    assert replayed.state == batch.state
    assert replayed.projection() == batch.projection()


def test_a_registered_kind_has_its_words_on_every_page_and_in_every_export(
    checklists: Checklists,
) -> None:
    recipe = load_recipe(recipe_text(), "checklist.yaml").data
    batch = started(Procedure(recipe))
    submit(batch, {"check:gowning": "yes"})

    audit = [line["text"] for line in entries_in_words(batch, batch.new_entries, "UTC")]
    assert "ticked 'gowning' in check_bag" in audit

    page = phase_page(batch, "check_bag", OLIVIA, T0, "UTC")
    part = next(p for p in page["kinds"] if p["kind"] == "checklists")
    assert [(e["key"], e["ticked"]) for e in part["entries"]] == [
        ("check:gowning", True),
        ("check:line_clearance", False),
    ]
    assert [p["kind"] for p in page["kinds"]][:2] == ["identity_checks", "checklists"]

    plan = batch.procedure.phases["check_bag"]
    lines = checklists.lines(batch, plan, batch.state.phases["check_bag"], "UTC")
    assert lines == [
        "      Checklist Gowning checked: yes",
        "      Checklist Line clearance done: no",
    ]

    batchml = master_recipe_batchml(recipe).decode()
    assert "checklist.gowning" in batchml and "Line clearance done" in batchml

    fewer = with_checklist(COMPILED, ITEMS[:1])
    words = [change.text for change in diff_recipes(fewer, recipe)]
    assert "Phase 'Check the bag': checklist item 'Line clearance done' added." in words


def test_the_printed_record_shows_a_registered_kind_without_a_template_of_its_own(
    checklists: Checklists,
) -> None:
    from mes.core.record import _phase_section

    batch = started(Procedure(load_recipe(recipe_text(), "checklist.yaml").data))
    submit(batch, {"check:gowning": "yes"})
    plan = batch.procedure.phases["check_bag"]

    section = _phase_section(batch, plan, {}, "UTC")

    part = next(p for p in section.parts if p.kind == "checklists")
    assert [line.text for line in part.lines] == [
        "Checklist Gowning checked: yes",
        "Checklist Line clearance done: no",
    ]


def test_without_the_kind_registered_a_phase_record_is_what_it_always_was() -> None:
    batch = started(Procedure(COMPILED))
    record = batch.prepare(Action.PERFORM, OLIVIA, T0, phase_id="check_bag")
    assert set(record) - {"type", "action", "batch", "number", "phase"} == {
        "values",
        "materials",
        "equipment",
        "identity",
        "data",
    }
