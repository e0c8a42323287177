"""Recipe version comparison (Annex 11 §10 change control): the reviewer sees every change,
in one signable sentence each, and nothing that is only a difference of YAML style."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from recipe_fixtures import SMALL_RECIPE

from mes.core.recipe import load_recipe
from mes.core.recipe_diff import Change, diff_recipes, summary

SOURCE: dict[str, Any] = yaml.safe_load(SMALL_RECIPE)
OLD = load_recipe(SMALL_RECIPE, "small.yaml").data

# Between the levels of a change's place in the recipe.
SEP = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "
RECEIVE = f"Unit procedure 'Receipt and chain of identity'{SEP}Operation 'Receive'"
COUNT_CELLS = f"{RECEIVE}{SEP}Phase 'Count cells' (count_cells)"
TRANSDUCE = f"Unit procedure 'Manufacture'{SEP}Operation 'Transduce'"
EXPAND = f"Unit procedure 'Manufacture'{SEP}Operation 'Expand'"
HARVEST = f"Unit procedure 'Manufacture'{SEP}Operation 'Harvest'"


def compiled(data: dict[str, Any]) -> dict[str, Any]:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return load_recipe(text, "variant.yaml").data


def variant(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(SOURCE)
    edit(data)
    return compiled(data)


def operation(data: dict[str, Any], operation_id: str) -> dict[str, Any]:
    for unit in data["unit_procedures"]:
        for op in unit["operations"]:
            if op["id"] == operation_id:
                return op
    raise KeyError(operation_id)


def phase(data: dict[str, Any], phase_id: str) -> dict[str, Any]:
    for unit in data["unit_procedures"]:
        for op in unit["operations"]:
            for ph in op["phases"]:
                if ph["id"] == phase_id:
                    return ph
    raise KeyError(phase_id)


def texts(changes: list[Change]) -> list[str]:
    return [change.text for change in changes]


# --- nothing changed ------------------------------------------------------------------------


def test_identical_recipes_have_no_changes():
    assert diff_recipes(OLD, OLD) == []
    assert diff_recipes(OLD, compiled(copy.deepcopy(SOURCE))) == []


ORDERED_MAPS = {"inputs", "calculations", "chain_of_identity"}


def reversed_keys(node: Any, key: str | None = None) -> Any:
    """Every mapping's keys reversed, except the maps whose order is the form's order."""
    if isinstance(node, dict):
        items = list(node.items())
        if key not in ORDERED_MAPS:
            items.reverse()
        return {k: reversed_keys(v, k) for k, v in items}
    if isinstance(node, list):
        return [reversed_keys(item) for item in node]
    return node


def test_key_order_whitespace_and_yaml_style_are_not_changes():
    restyled = reversed_keys(copy.deepcopy(SOURCE))
    restyled["expected_duration"] = "240 h"  # the same 10 days
    text = yaml.safe_dump(
        restyled, sort_keys=False, default_flow_style=True, width=50, allow_unicode=True
    )
    assert text != SMALL_RECIPE
    new = load_recipe(text, "restyled.yaml")
    assert diff_recipes(OLD, new.data) == []
    assert new.content_hash == load_recipe(SMALL_RECIPE, "small.yaml").content_hash


def test_a_limit_written_as_80_point_0_is_the_same_limit():
    new = variant(lambda d: phase(d, "count_cells")["inputs"]["viability"].update(action_low=80.0))
    assert diff_recipes(OLD, new) == []


# --- limits, inputs, calculations -----------------------------------------------------------


def test_changed_action_limit_is_one_sentence_with_units():
    new = variant(lambda d: phase(d, "count_cells")["inputs"]["viability"].update(action_low=75))
    assert diff_recipes(OLD, new) == [
        Change(
            kind="changed",
            where=COUNT_CELLS,
            field="input 'Viability' action_low",
            before="80 %",
            after="75 %",
            text="Phase 'Count cells': input 'Viability': action low limit changed from 80 % to 75 %.",
        )
    ]


def test_a_limit_added_or_removed_is_an_addition_or_removal():
    def edit(data: dict[str, Any]) -> None:
        viability = phase(data, "count_cells")["inputs"]["viability"]
        del viability["alert_low"]
        viability["action_high"] = 100

    changes = diff_recipes(OLD, variant(edit))
    assert [(c.kind, c.text) for c in changes] == [
        ("removed", "Phase 'Count cells': input 'Viability': alert low limit 85 % removed."),
        ("added", "Phase 'Count cells': input 'Viability': action high limit 100 % added."),
    ]


def test_unit_change_shows_each_limit_in_its_own_unit():
    def edit(data: dict[str, Any]) -> None:
        volume = phase(data, "count_cells")["inputs"]["volume"]
        volume.update(unit="L", action_low=0.01, action_high=0.3)

    assert texts(diff_recipes(OLD, variant(edit))) == [
        "Phase 'Count cells': input 'Bag volume': unit changed from mL to L.",
        "Phase 'Count cells': input 'Bag volume': action low limit changed from 10 mL to 0.01 L.",
        "Phase 'Count cells': input 'Bag volume': action high limit changed from 300 mL to 0.3 L.",
    ]


def test_every_property_of_an_input_is_compared():
    def edit(data: dict[str, Any]) -> None:
        inputs = phase(data, "decide")["inputs"]
        inputs["decision"]["options"] = ["Proceed", "Hold", "Discard"]
        inputs["decision"]["label"] = "QA decision"
        inputs["comment"].update(required=True, help="Say why.", pattern="^.{3,}$")

    assert texts(diff_recipes(OLD, variant(edit))) == [
        "Phase 'Decide to proceed': input 'QA decision': label changed from 'Decision' to 'QA decision'.",
        "Phase 'Decide to proceed': input 'QA decision': options changed from 'Proceed', 'Hold' "
        "to 'Proceed', 'Hold', 'Discard'.",
        "Phase 'Decide to proceed': input 'Comment': required changed from no to yes.",
        "Phase 'Decide to proceed': input 'Comment': pattern '^.{3,}$' added.",
        "Phase 'Decide to proceed': input 'Comment': help text changed from "
        "'Why the batch is held, if it is.' to 'Say why.'.",
    ]


def test_input_added_and_removed_name_their_specification():
    def edit(data: dict[str, Any]) -> None:
        inputs = phase(data, "count_cells")["inputs"]
        del inputs["viability"]
        inputs["clumps"] = {"label": "Clumps seen", "type": "yes_no", "required": False}

    changes = diff_recipes(OLD, variant(edit))
    assert [(c.kind, c.field, c.text) for c in changes] == [
        (
            "removed",
            "input 'Viability'",
            "Phase 'Count cells': input 'Viability' removed (number in %, target 95 %, "
            "alert low limit 85 %, action low limit 80 %, 1 decimal).",
        ),
        (
            "added",
            "input 'Clumps seen'",
            "Phase 'Count cells': input 'Clumps seen' added (yes/no, optional).",
        ),
    ]


def test_calculation_expression_and_limit_changes():
    def edit(data: dict[str, Any]) -> None:
        total = phase(data, "count_cells")["calculations"]["total_viable"]
        total.update(expression="viable_conc * volume * viability / 100", action_low=120)

    changes = diff_recipes(OLD, variant(edit))
    assert texts(changes) == [
        "Phase 'Count cells': calculation 'Total viable cells': expression changed from "
        "'viable_conc * volume' to 'viable_conc * volume * viability / 100'.",
        "Phase 'Count cells': calculation 'Total viable cells': action low limit changed "
        "from 100 ×10^6 cells to 120 ×10^6 cells.",
    ]
    assert changes[0].field == "calculation 'Total viable cells' expression"


# --- phases and operations ------------------------------------------------------------------


def test_added_phase_is_named_with_its_operation():
    def edit(data: dict[str, Any]) -> None:
        operation(data, "transduce")["phases"].insert(
            1, {"id": "mix_bag", "name": "Mix bag", "instructions": "Mix gently."}
        )

    assert diff_recipes(OLD, variant(edit)) == [
        Change(
            kind="added",
            where=f"{TRANSDUCE}{SEP}Phase 'Mix bag' (mix_bag)",
            field=None,
            before=None,
            after=f"{TRANSDUCE}{SEP}Phase 'Mix bag' (mix_bag)",
            text="Phase 'Mix bag' added to operation 'Transduce'.",
        )
    ]


def test_removed_phase_is_listed_where_it_was():
    def edit(data: dict[str, Any]) -> None:
        data["title"] = "Test CAR-T process, revised"
        operation(data, "receive")["phases"].pop(1)  # count_cells
        phase(data, "decide")["perform"] = "qa"

    changes = diff_recipes(OLD, variant(edit))
    assert texts(changes) == [
        "Recipe: title changed from 'Test CAR-T process' to 'Test CAR-T process, revised'.",
        "Phase 'Count cells' removed from operation 'Receive'.",
        "Phase 'Decide to proceed': performing role changed from supervisor to QA.",
    ]
    assert changes[1].kind == "removed"
    assert changes[1].where == COUNT_CELLS
    assert changes[1].before == COUNT_CELLS


def test_phase_moved_to_another_operation_is_moved_not_removed_and_added():
    def edit(data: dict[str, Any]) -> None:
        sample = operation(data, "expand")["phases"].pop(1)
        sample["name"] = "Sample before harvest"
        operation(data, "harvest")["phases"].insert(0, sample)

    changes = diff_recipes(OLD, variant(edit))
    assert [(c.kind, c.text) for c in changes] == [
        (
            "moved",
            "Phase 'Sample before harvest' moved from operation 'Expand' to operation 'Harvest'.",
        ),
        (
            "changed",
            "Phase 'Sample before harvest': name changed from 'Sample culture' to "
            "'Sample before harvest'.",
        ),
    ]
    assert changes[0].before == f"{EXPAND}{SEP}Phase 'Sample culture' (sample)"
    assert changes[0].after == f"{HARVEST}{SEP}Phase 'Sample before harvest' (sample)"
    assert changes[0].where == changes[0].after


def test_phase_moved_within_its_operation_says_where_it_now_is():
    new = variant(lambda d: operation(d, "harvest")["phases"].reverse())
    assert diff_recipes(OLD, new) == [
        Change(
            kind="moved",
            where=f"{HARVEST}{SEP}Phase 'Label final bag' (label_bag)",
            field=None,
            before=None,
            after=None,
            text="Phase 'Label final bag' moved within operation 'Harvest': now first in "
            "operation 'Harvest'.",
        )
    ]


def test_operation_added_and_removed_with_their_phases():
    def edit(data: dict[str, Any]) -> None:
        units = data["unit_procedures"]
        units[0]["operations"].pop(1)  # qc_review, with its phase decide
        phase(data, "thaw_vector").pop("when")  # it referred to decide
        units[1]["operations"].append(
            {
                "id": "cryopreserve",
                "name": "Cryopreserve",
                "phases": [{"id": "freeze", "name": "Freeze", "instructions": "Freeze."}],
            }
        )

    assert texts(diff_recipes(OLD, variant(edit))) == [
        "Operation 'Review receipt' removed from unit procedure 'Receipt and chain of identity'.",
        "Phase 'Decide to proceed' removed from operation 'Review receipt'.",
        "Phase 'Thaw vector': condition decide.decision is 'Proceed' removed.",
        "Operation 'Cryopreserve' added to unit procedure 'Manufacture'.",
        "Phase 'Freeze' added to operation 'Cryopreserve'.",
    ]


def test_operation_ordering_and_unit_procedure_name():
    def edit(data: dict[str, Any]) -> None:
        operation(data, "expand")["ordering"] = "sequence"
        data["unit_procedures"][1]["name"] = "Manufacture and harvest"

    assert texts(diff_recipes(OLD, variant(edit))) == [
        "Unit procedure 'Manufacture and harvest': name changed from 'Manufacture' to "
        "'Manufacture and harvest'.",
        "Operation 'Expand': ordering changed from in any order to in sequence.",
    ]


# --- roles, instructions, timers, conditions ------------------------------------------------


def test_verification_added_removed_and_changed():
    def edit(data: dict[str, Any]) -> None:
        phase(data, "check_label")["verify"] = "supervisor"
        del phase(data, "count_cells")["verify"]
        phase(data, "wash")["verify"] = "supervisor"

    changes = diff_recipes(OLD, variant(edit))
    assert [(c.kind, c.field, c.before, c.after, c.text) for c in changes] == [
        (
            "added",
            "verify",
            None,
            "supervisor",
            "Phase 'Check bag label': verification by supervisor added.",
        ),
        (
            "removed",
            "verify",
            "supervisor",
            None,
            "Phase 'Count cells': verification by supervisor removed.",
        ),
        (
            "changed",
            "verify",
            "QA",
            "supervisor",
            "Phase 'Wash cells': verification role changed from QA to supervisor.",
        ),
    ]


def test_instructions_change_shows_a_short_line_diff():
    def edit(data: dict[str, Any]) -> None:
        phase(data, "count_cells")["instructions"] = (
            "Mix the bag gently by inversion.\n"
            "Take a 1.0 mL sample with a sterile syringe.\n"
            "Count on the automated cell counter.\n"
        )

    [change] = diff_recipes(OLD, variant(edit))
    assert change.kind == "changed"
    assert change.field == "instructions"
    assert change.text == "Phase 'Count cells': instructions changed."
    assert change.before == (
        " Mix the bag gently by inversion.\n"
        "-Take a 0.5 mL sample with a sterile syringe.\n"
        " Count on the automated cell counter."
    )
    assert change.after == (
        " Mix the bag gently by inversion.\n"
        "+Take a 1.0 mL sample with a sterile syringe.\n"
        " Count on the automated cell counter."
    )


def test_timer_changes_show_readable_durations():
    def edit(data: dict[str, Any]) -> None:
        feed = phase(data, "feed")
        feed["timers"][0]["min"] = "72000 s"  # 20 h, unchanged
        feed["timers"][0]["max"] = "3 d"
        phase(data, "add_vector")["timers"] = []
        phase(data, "wash")["timers"] = [{"after": "feed", "min": "90 min"}]

    changes = diff_recipes(OLD, variant(edit))
    assert [(c.kind, c.field, c.before, c.after, c.text) for c in changes] == [
        (
            "removed",
            "timer after 'thaw_vector'",
            "at most 30 min",
            None,
            "Phase 'Add vector': timer after phase 'Thaw vector' removed (at most 30 min).",
        ),
        (
            "changed",
            "timer after 'add_vector' max_seconds",
            "2 d",
            "3 d",
            "Phase 'Feed culture': timer after phase 'Add vector': maximum changed from 2 d to 3 d.",
        ),
        (
            "added",
            "timer after 'feed'",
            None,
            "at least 90 min",
            "Phase 'Wash cells': timer after phase 'Feed culture' added (at least 90 min).",
        ),
    ]


def test_timer_minimum_of_72000_seconds_reads_20_h():
    new = variant(lambda d: phase(d, "feed")["timers"][0].update(min="21 h"))
    [change] = diff_recipes(OLD, new)
    assert (change.before, change.after) == ("20 h", "21 h")


def test_condition_change():
    new = variant(lambda d: phase(d, "thaw_vector")["when"].update(equals="Hold"))
    assert texts(diff_recipes(OLD, new)) == [
        "Phase 'Thaw vector': condition changed from decide.decision is 'Proceed' to "
        "decide.decision is 'Hold'."
    ]


# --- materials, equipment, identity ---------------------------------------------------------


def test_material_quantity_equipment_and_identity_check_changes():
    def edit(data: dict[str, Any]) -> None:
        phase(data, "feed")["materials"][0].update(quantity=150)
        phase(data, "thaw_vector")["equipment"] = [{"class": "thaw_device", "label": "Dry thawer"}]
        phase(data, "label_bag")["identity_checks"][0]["matches"] = "din"

    assert texts(diff_recipes(OLD, variant(edit))) == [
        "Phase 'Thaw vector': equipment class 'water_bath' removed.",
        "Phase 'Thaw vector': equipment class 'thaw_device' (Dry thawer) added.",
        "Phase 'Feed culture': material 'Culture medium' (MED-TEXMACS): quantity changed "
        "from 100 mL to 150 mL.",
        "Phase 'Label final bag': identity check 'Final bag patient ID': checked against "
        "changed from 'Patient ID' (patient_id) to 'Donation identification number' (din).",
    ]


def test_recipe_product_and_chain_of_identity_changes():
    def edit(data: dict[str, Any]) -> None:
        data["product"]["name"] = "Test anti-CD19 CAR-T"
        data["expected_duration"] = "12 d"
        data["change_reason"] = "Longer expansion."
        data["chain_of_identity"]["donor_id"] = {"label": "Donor ID", "kind": "identifier"}
        data["chain_of_identity"]["patient_id"]["pattern"] = "^P[0-9]{7}$"
        data["version"] = 2  # the version number is not a change

    changes = diff_recipes(OLD, variant(edit))
    assert texts(changes) == [
        "Product: name changed from 'Test anti-CD19 CAR-T cells' to 'Test anti-CD19 CAR-T'.",
        "Recipe: expected duration changed from 10 d to 12 d.",
        "Recipe: change reason changed from 'First version, written for the unit tests.' to "
        "'Longer expansion.'.",
        "Chain of identity: field 'Patient ID' (patient_id): pattern changed from "
        "'^P[0-9]{6}$' to '^P[0-9]{7}$'.",
        "Chain of identity: field 'Donor ID' (donor_id) added (identifier).",
    ]
    assert [c.where for c in changes] == [
        "Product",
        "Recipe",
        "Recipe",
        "Chain of identity",
        "Chain of identity",
    ]


def test_reordered_inputs_are_one_change():
    def edit(data: dict[str, Any]) -> None:
        inputs = phase(data, "count_cells")["inputs"]
        phase(data, "count_cells")["inputs"] = {
            k: inputs[k] for k in ("viability", "viable_conc", "volume")
        }

    [change] = diff_recipes(OLD, variant(edit))
    assert change.kind == "changed"
    assert change.field == "inputs order"
    assert change.text == (
        "Phase 'Count cells': order of inputs changed from 'Viable cell concentration', "
        "'Viability', 'Bag volume' to 'Viability', 'Viable cell concentration', 'Bag volume'."
    )


# --- order and summary ----------------------------------------------------------------------


def test_changes_follow_the_new_recipes_document_order():
    def edit(data: dict[str, Any]) -> None:
        phase(data, "wash")["name"] = "Wash twice"
        phase(data, "check_label")["name"] = "Scan bag label"
        data["title"] = "Retitled"

    assert [c.where.rsplit(SEP, 1)[-1] for c in diff_recipes(OLD, variant(edit))] == [
        "Recipe",
        "Phase 'Scan bag label' (check_label)",
        "Phase 'Wash twice' (wash)",
    ]


EDITS: list[Callable[[dict[str, Any]], None]] = [
    lambda d: d.update(description="Other."),
    lambda d: d["product"].update(modality="other"),
    lambda d: phase(d, "sample")["inputs"]["sampled_at"].update(label="Time sampled"),
    lambda d: phase(d, "add_vector")["inputs"]["volume_added"].update(decimals=2),
    lambda d: phase(d, "add_vector")["inputs"]["vector_lot"].update(type="text"),
    lambda d: phase(d, "thaw_vector")["materials"][0].update(name="CD19 vector"),
    lambda d: phase(d, "thaw_vector")["equipment"][0].update(label="Water bath 2"),
    lambda d: phase(d, "check_label")["identity_checks"][0].update(label="DIN on bag"),
    lambda d: d["chain_of_identity"]["din"].update(label="DIN"),
    lambda d: operation(d, "receive").update(description="New description."),
    lambda d: phase(d, "wash")["inputs"]["wash_cycles"].update(target=3),
]


@pytest.mark.parametrize("edit", EDITS)
def test_every_compiled_difference_is_reported(edit: Callable[[dict[str, Any]], None]):
    new = variant(edit)
    assert new != OLD
    changes = diff_recipes(OLD, new)
    assert len(changes) == 1
    assert changes[0].text.endswith(".")


def test_summary_counts_changes_by_kind():
    def edit(data: dict[str, Any]) -> None:
        phase(data, "count_cells")["inputs"]["viability"]["action_low"] = 75
        phase(data, "count_cells")["inputs"]["volume"]["action_high"] = 250
        operation(data, "transduce")["phases"].append(
            {"id": "rest", "name": "Rest", "instructions": "Rest 1 h."}
        )

    changes = diff_recipes(OLD, variant(edit))
    assert summary(changes) == "3 changes: 1 added, 2 changed"
    assert summary(changes[:1]) == "1 change: 1 changed"
    assert summary([]) == "No changes"


# --- criticality, milestones and the turnaround target ----------------------------------------


def test_criticality_set_changed_and_removed():
    def mark(data: dict[str, Any]) -> None:
        phase(data, "count_cells")["inputs"]["viability"]["criticality"] = "cqa"
        phase(data, "count_cells")["calculations"]["total_viable"]["criticality"] = "cpp"

    marked = variant(mark)
    changes = diff_recipes(OLD, marked)
    assert [(c.kind, c.field, c.text) for c in changes] == [
        (
            "added",
            "input 'Viability' criticality",
            "Phase 'Count cells': input 'Viability': criticality set to critical quality "
            "attribute.",
        ),
        (
            "added",
            "calculation 'Total viable cells' criticality",
            "Phase 'Count cells': calculation 'Total viable cells': criticality set to critical "
            "process parameter.",
        ),
    ]

    def remark(data: dict[str, Any]) -> None:
        phase(data, "count_cells")["inputs"]["viability"]["criticality"] = "ipc"

    assert texts(diff_recipes(marked, variant(remark))) == [
        "Phase 'Count cells': input 'Viability': criticality changed from critical quality "
        "attribute to in-process control.",
        "Phase 'Count cells': calculation 'Total viable cells': criticality critical process "
        "parameter removed.",
    ]


def test_milestone_set_and_named_in_an_added_input():
    def edit(data: dict[str, Any]) -> None:
        inputs = phase(data, "sample")["inputs"]
        inputs["sampled_at"]["milestone"] = "receipt"
        inputs["received"] = {
            "label": "Received at",
            "type": "datetime",
            "milestone": "collection_end",
        }

    assert texts(diff_recipes(OLD, variant(edit))) == [
        "Phase 'Sample culture': input 'Sampled at': milestone set to 'Receipt at the spoke' "
        "(receipt).",
        "Phase 'Sample culture': input 'Received at' added (date and time, milestone "
        "'Collection end' (collection_end)).",
    ]


def _with_turnaround(target: float | None, *legs: tuple[str, str, float]) -> dict[str, Any]:
    def edit(data: dict[str, Any]) -> None:
        phase(data, "sample")["inputs"]["sampled_at"]["milestone"] = "collection_end"
        turnaround: dict[str, Any] = (
            {"legs": [{"from": a, "to": b, "target_hours": h} for a, b, h in legs]} if legs else {}
        )
        if target is not None:
            turnaround["target_hours"] = target
        data["turnaround"] = turnaround

    return variant(edit)


def test_turnaround_target_and_legs_compared():
    before = _with_turnaround(240, ("collection_end", "manufacturing_start", 30))
    after = _with_turnaround(
        216,
        ("collection_end", "manufacturing_start", 24),
        ("manufacturing_end", "up:receipt", 6),
    )
    assert texts(diff_recipes(before, after)) == [
        "Recipe: turnaround target changed from 240 h to 216 h.",
        "Recipe: turnaround leg Collection end → Manufacturing start: target changed from "
        "30 h to 24 h.",
        "Recipe: turnaround leg Manufacturing complete → End of Receipt and chain of identity "
        "(6 h) added.",
    ]
    assert texts(diff_recipes(after, before))[-1] == (
        "Recipe: turnaround leg Manufacturing complete → End of Receipt and chain of identity "
        "(6 h) removed."
    )
    reordered = _with_turnaround(
        216,
        ("manufacturing_end", "up:receipt", 6),
        ("collection_end", "manufacturing_start", 24),
    )
    assert texts(diff_recipes(after, reordered)) == [
        "Recipe: order of turnaround legs changed from Collection end → Manufacturing start, "
        "Manufacturing complete → End of Receipt and chain of identity to Manufacturing "
        "complete → End of Receipt and chain of identity, Collection end → Manufacturing start."
    ]


def test_a_turnaround_target_added_to_a_recipe_without_one():
    new = _with_turnaround(336)
    assert texts(diff_recipes(OLD, new)) == [
        "Recipe: turnaround target 336 h added.",
        "Phase 'Sample culture': input 'Sampled at': milestone set to 'Collection end' "
        "(collection_end).",
    ]
