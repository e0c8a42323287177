"""Criticality, milestones and the turnaround target in a recipe file: checked with the file's
line and column, compiled only when declared (a recipe without them keeps its identity).

The recipe is ``BASE`` of the validation tests, edited line by line (see there): the input
'note' (line 40, type on line 42) becomes a datetime input where a milestone is wanted.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_recipe_validation import BASE, COUNT, NAME, REPORT_DAMAGE, edited, problems, valid

from mes.core.critical import (
    CriticalInput,
    Criticality,
    Leg,
    Turnaround,
    critical_inputs,
    milestone_inputs,
    turnaround_of,
)
from mes.core.recipe import load_recipe

CHECK_BAG = "unit_procedures[0].operations[0].phases[0]"
ALLOWED = (
    "collection_end, receipt, provisional_certification, dispatch, bedside_receipt, infusion_start"
)

# 'note' records the end of collection; 'volume_lost' (report_damage) becomes a receipt time
COLLECTION_END = (42, "type: text", "type: datetime\n                milestone: collection_end")
RECEIPT = (53, "type: number", "type: datetime\n                milestone: receipt")
NO_UNIT = (54, "unit: mL", "required: false")


def turnaround(*legs: str, whole: str = "target_hours: 240") -> tuple[int, str, str]:
    """A turnaround block after ``expected_duration`` (line 9): it starts on line 10."""
    lines = ["turnaround:", f"  {whole}"] if whole else ["turnaround:"]
    if legs:
        lines += ["  legs:", *(f"    - {leg}" for leg in legs)]
    return 9, "expected_duration: 9 d", "\n".join(["expected_duration: 9 d", *lines])


def _walk(node: Any) -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        keys |= set(node)
        for child in node.values():
            keys |= _walk(child)
    elif isinstance(node, list):
        for child in node:
            keys |= _walk(child)
    return keys


def test_a_recipe_without_them_compiles_without_the_keys():
    compiled = load_recipe(BASE, NAME).data
    assert not {"criticality", "milestone", "turnaround"} & _walk(compiled)
    assert critical_inputs(compiled) == []
    assert milestone_inputs(compiled) == {}
    assert turnaround_of(compiled) is None


def test_a_recipe_with_them_compiles_them_and_changes_its_identity():
    text = edited(
        (70, "action_low: 70", "action_low: 70\n                criticality: cqa"),
        (87, "action_high: 100", "action_high: 100\n                criticality: cpp"),
        COLLECTION_END,
        RECEIPT,
        NO_UNIT,
        turnaround(
            "{from: collection_end, to: receipt, target_hours: 30}",
            "{from: receipt, to: 'up:receipt', target_hours: 12.5}",
        ),
    )
    assert valid(text)
    recipe = load_recipe(text, NAME)
    assert recipe.content_hash != load_recipe(BASE, NAME).content_hash
    assert critical_inputs(recipe.data) == [
        CriticalInput(
            "count",
            "viability",
            "Count the cells",
            "Viability",
            "%",
            Criticality.CQA,
            70,
            None,
            80,
            None,
        ),
        CriticalInput(
            "count",
            "dose_volume",
            "Count the cells",
            "Dose volume",
            "mL",
            Criticality.CPP,
            None,
            100,
            None,
            None,
        ),
    ]
    assert milestone_inputs(recipe.data) == {
        "collection_end": ("check_bag", "note"),
        "receipt": ("report_damage", "volume_lost"),
    }
    assert recipe.data["turnaround"] == {
        "target_hours": 240,
        "legs": [
            {"from": "collection_end", "to": "receipt", "target_hours": 30},
            {"from": "receipt", "to": "up:receipt", "target_hours": 12.5},
        ],
    }
    assert turnaround_of(recipe.data) == Turnaround(
        240, (Leg("collection_end", "receipt", 30), Leg("receipt", "up:receipt", 12.5))
    )


def test_legs_alone_are_a_turnaround_with_no_whole_target():
    text = edited(
        COLLECTION_END,
        RECEIPT,
        NO_UNIT,
        turnaround("{from: collection_end, to: receipt, target_hours: 30}", whole=""),
    )
    assert turnaround_of(load_recipe(text, NAME).data) == Turnaround(
        None, (Leg("collection_end", "receipt", 30),)
    )


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            [(42, "type: text", "type: text\n                criticality: cqa")],
            f"{NAME}:43:17 {CHECK_BAG}.inputs.note: "
            "criticality applies only to number and integer inputs, not text",
            id="criticality on a text input",
        ),
        pytest.param(
            [(65, "type: number", "type: number\n                criticality: critical")],
            f"{NAME}:66:30 {COUNT}.inputs.viability.criticality: "
            "'critical' is not one of ['cpp', 'cqa', 'ipc']",
            id="unknown criticality",
        ),
        pytest.param(
            [(65, "type: number", "type: number\n                milestone: receipt")],
            f"{NAME}:66:17 {COUNT}.inputs.viability: "
            "a milestone applies only to datetime inputs, not number",
            id="milestone on a number input",
        ),
        pytest.param(
            [(42, "type: text", "type: datetime\n                milestone: harvest")],
            f"{NAME}:43:17 {CHECK_BAG}.inputs.note: unknown milestone 'harvest'; "
            f"a datetime input may declare: {ALLOWED}",
            id="unknown milestone",
        ),
        pytest.param(
            [(42, "type: text", "type: datetime\n                milestone: hub_release")],
            f"{NAME}:43:17 {CHECK_BAG}.inputs.note: 'hub_release' (Released by the "
            "hub) is taken from the batch's record, not from an input; a datetime input may "
            f"declare: {ALLOWED}",
            id="an event milestone",
        ),
        pytest.param(
            [
                COLLECTION_END,
                (53, "type: number", "type: datetime\n                milestone: collection_end"),
                NO_UNIT,
            ],
            f"{NAME}:55:17 {REPORT_DAMAGE}.inputs.volume_lost: milestone "
            f"'collection_end' is already declared on line 43 ({CHECK_BAG}.inputs.note); a "
            "recipe records each milestone once",
            id="milestone declared twice",
        ),
    ],
)
def test_criticality_and_milestones_are_checked_where_written(edits, expected):
    assert problems(edited(*edits)) == [expected]


def test_criticality_is_allowed_on_integer_inputs_and_calculations():
    assert valid(
        edited(
            (53, "type: number", "type: integer\n                criticality: ipc"),
            (54, "unit: mL", "unit: each"),
            (
                122,
                "expression: 500 / count.volume",
                "expression: 500 / count.volume\n                criticality: cpp",
            ),
        )
    )


LEG = "turnaround.legs"


@pytest.mark.parametrize(
    ("legs", "expected"),
    [
        pytest.param(
            ["{from: collection_end, to: collection_end, target_hours: 30}"],
            [f"{NAME}:13:30 {LEG}[0]: the leg starts and ends at 'collection_end'"],
            id="from is to",
        ),
        pytest.param(
            ["{from: collection_end, to: dispatch, target_hours: 30}"],
            [
                f"{NAME}:13:30 {LEG}[0]: no datetime input of this recipe declares the "
                "milestone 'dispatch'"
            ],
            id="a recipe milestone no input declares",
        ),
        pytest.param(
            [
                "{from: collection_end, to: manufacturing_end, target_hours: 30}",
                "{from: 'up:culture', to: hub_release, target_hours: 30}",
            ],
            [],
            id="event milestones and unit procedure ends need no input",
        ),
        pytest.param(
            ["{from: collection_end, to: 'up:expansion', target_hours: 30}"],
            [
                f"{NAME}:13:30 {LEG}[0]: 'up:expansion': the recipe has no unit procedure 'expansion'"
            ],
            id="unknown unit procedure",
        ),
        pytest.param(
            ["{from: vein, to: collection_end, target_hours: 30}"],
            [
                f"{NAME}:13:8 {LEG}[0]: unknown milestone 'vein'; a leg runs between milestones "
                "(collection_end, receipt, manufacturing_start, manufacturing_end, "
                "provisional_certification, dispatch, bedside_receipt, hub_release, "
                "infusion_start) or unit procedure ends ('up:<unit procedure id>')"
            ],
            id="unknown milestone",
        ),
        pytest.param(
            ["{from: collection_end, to: hub_release, target_hours: 300}"],
            [
                f"{NAME}:13:47 {LEG}[0]: the leg's target 300 h is longer than the whole "
                "turnaround target 240 h"
            ],
            id="a leg longer than the whole",
        ),
        pytest.param(
            ["{from: collection_end, to: hub_release, target_hours: 0}"],
            [f"{NAME}:13:61 {LEG}[0].target_hours: 0 is less than or equal to the minimum of 0"],
            id="a target of 0 h",
        ),
        pytest.param(
            [
                "{from: collection_end, to: hub_release, target_hours: 30}",
                "{from: collection_end, to: hub_release, target_hours: 40}",
            ],
            [
                f"{NAME}:14:8 {LEG}[1]: the leg from 'collection_end' to 'hub_release' is already "
                "given on line 13"
            ],
            id="a leg given twice",
        ),
        pytest.param(
            ["{from: collection_end, to: hub_release}"],
            [f"{NAME}:13:7 {LEG}[0]: 'target_hours' is a required field"],
            id="a leg without its target",
        ),
    ],
)
def test_turnaround_legs_are_checked_where_written(legs, expected):
    text = edited(COLLECTION_END, turnaround(*legs))
    if expected:
        assert problems(text) == expected
    else:
        assert valid(text)


def test_a_turnaround_needs_a_target_or_legs():
    assert problems(edited(turnaround(whole="target_hours: -5"))) == [
        f"{NAME}:11:17 turnaround.target_hours: -5 is less than or equal to the minimum of 0"
    ]
    assert problems(edited((9, "expected_duration: 9 d", "turnaround: {}"))) == [
        f"{NAME}:9:13 turnaround: give at least one of: target_hours, legs"
    ]


def test_a_milestone_or_point_that_is_not_a_name_is_reported_once():
    assert problems(
        edited((42, "type: text", "type: datetime\n                milestone: Receipt"))
    ) == [
        f"{NAME}:43:28 {CHECK_BAG}.inputs.note.milestone: 'Receipt' is not allowed here: The "
        "vein-to-vein milestone a datetime input records, one of collection_end, receipt, "
        "provisional_certification, dispatch, bedside_receipt, infusion_start; each at most "
        "once in a recipe."
    ]
    found = problems(
        edited(COLLECTION_END, turnaround("{from: 'Up:x', to: receipt, target_hours: 3}"))
    )
    assert len(found) == 2 and found[0].startswith(
        f"{NAME}:13:14 {LEG}[0].from: 'Up:x' is not allowed"
    )
    assert (
        found[1]
        == f"{NAME}:13:22 {LEG}[0]: no datetime input of this recipe declares the milestone 'receipt'"
    )
