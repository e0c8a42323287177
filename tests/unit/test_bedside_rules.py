"""The bedside part of the recipe format and the core's comparison of the bedside scans."""

from __future__ import annotations

import pytest
from batch_helpers import TEST_RECIPE

from mes.core.batch import Procedure
from mes.core.batch.bedside import bedside_scans
from mes.core.recipe import RecipeInvalid, load_recipe
from mes.core.recipe_diff import diff_recipes

WITH_CODE = TEST_RECIPE.replace(
    "  patient_id: {label: Patient identifier, kind: identifier}\n",
    "  patient_id: {label: Patient identifier, kind: identifier}\n"
    "  coi_id: {label: Chain of identity code, kind: identifier}\n",
)


def with_bedside(block: str) -> str:
    return WITH_CODE.replace("change_reason:", f"{block}change_reason:", 1)


def test_a_recipe_without_bedside_compiles_as_before_and_scans_the_din_code_and_patient():
    compiled = load_recipe(WITH_CODE, "t.yaml").data
    assert "bedside" not in compiled
    scans = bedside_scans(Procedure(compiled))
    assert [(s.field, s.identifier) for s in scans] == [
        ("bag_din", "din"),
        ("bag_coi", "coi_id"),
        ("wristband", "patient_id"),
    ]


def test_a_timer_from_the_fill_names_a_phase_of_the_recipe():
    with pytest.raises(RecipeInvalid) as missing:
        load_recipe(
            with_bedside("bedside:\n  timer: {starts_at: fill, max_minutes: 60, label: Hold}\n"),
            "t.yaml",
        )
    assert "names the fill's phase" in str(missing.value.lines())
    with pytest.raises(RecipeInvalid) as unknown:
        load_recipe(
            with_bedside(
                "bedside:\n  timer: {starts_at: fill, phase: nowhere, max_minutes: 60, "
                "label: Hold}\n"
            ),
            "t.yaml",
        )
    assert "no phase 'nowhere'" in str(unknown.value.lines())
    ok = load_recipe(
        with_bedside(
            "bedside:\n  timer: {starts_at: fill, phase: harvest, max_minutes: 60, label: Hold}\n"
        ),
        "t.yaml",
    )
    assert ok.data["bedside"]["timer"]["phase"] == "harvest"


def test_the_bag_and_the_wristband_name_identifiers_of_the_chain_of_identity():
    with pytest.raises(RecipeInvalid) as refused:
        load_recipe(with_bedside("bedside:\n  bag: [lot]\n  wristband: patient_id\n"), "t.yaml")
    assert "no identifier 'lot'" in str(refused.value.lines())
    data = load_recipe(with_bedside("bedside:\n  bag: [coi_id]\n"), "t.yaml").data
    assert [s.field for s in bedside_scans(Procedure(data))] == ["bag_coi", "wristband"]


def test_a_changed_infusion_timer_is_one_sentence_of_the_comparison():
    before = load_recipe(
        with_bedside("bedside:\n  timer: {starts_at: thaw, max_minutes: 30, label: Thawed}\n"),
        "t.yaml",
    ).data
    after = load_recipe(
        with_bedside("bedside:\n  timer: {starts_at: thaw, max_minutes: 20, label: Thawed}\n"),
        "t.yaml",
    ).data
    sentences = [c.text for c in diff_recipes(before, after)]
    assert any("infuse within 20 min of the thaw" in s for s in sentences), sentences


def test_a_turnaround_leg_may_end_at_the_infusion_start_when_the_bedside_check_records_it():
    leg = (
        "turnaround:\n  legs:\n    - {from: manufacturing_start, to: infusion_start, "
        "target_hours: 300}\n"
    )
    with pytest.raises(RecipeInvalid) as refused:
        load_recipe(with_bedside(leg), "t.yaml")
    assert "no datetime input of this recipe declares the milestone 'infusion_start'" in str(
        refused.value.lines()
    )
    data = load_recipe(with_bedside(leg + "bedside: {}\n"), "t.yaml").data
    assert data["turnaround"]["legs"][0]["to"] == "infusion_start"
