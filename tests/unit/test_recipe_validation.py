"""Recipe validation (``mes recipe validate``): every error class names the file, line, column
and path in the recipe exactly, and every problem of a file is listed, in file order.

``BASE`` is a small valid recipe in block style. Each test breaks it by replacing a piece of one
numbered line (:func:`edited` checks that the text is on that line), so the expected
``file:line:col`` is read off the text: in block style a phase's fields start in column 13, an
input's fields in column 17, and a value in the column after ``key: ``.
"""

from __future__ import annotations

import pytest
from recipe_helpers import recipe_text

from mes.core.recipe import RecipeInvalid, check_recipe, load_recipe

NAME = "car-t.yaml"

BASE = """\
format: gmp-mes/recipe/1
recipe_code: TEST-CART
version: 1
title: Test CAR-T recipe
product:
  code: CART-TEST
  name: Test CAR-T product
  modality: autologous_cell
expected_duration: 9 d
change_reason: First version for the tests
chain_of_identity:
  din:
    label: Donation identification number
    kind: isbt128_din
  patient_id:
    label: Patient ID
    kind: identifier
unit_procedures:
  - id: receipt
    name: Receipt
    operations:
      - id: inspect
        name: Inspect the bag
        phases:
          - id: check_bag
            name: Check the bag
            instructions: Scan the bag label and look at the bag.
            identity_checks:
              - id: bag_din
                label: Bag DIN
                matches: din
            inputs:
              condition:
                label: Bag condition
                type: choice
                required: true
                options:
                  - intact
                  - damaged
              note:
                label: Note
                type: text
                required: false
          - id: report_damage
            name: Report the damage
            instructions: Photograph the damage and estimate the volume lost.
            when:
              input: check_bag.condition
              equals: damaged
            inputs:
              volume_lost:
                label: Volume lost
                type: number
                unit: mL
          - id: count
            name: Count the cells
            instructions: Count the cells.
            verify: supervisor
            timers:
              - after: check_bag
                max: 4 h
            inputs:
              viability:
                label: Viability
                type: number
                unit: "%"
                decimals: 1
                target: 90
                alert_low: 80
                action_low: 70
              volume:
                label: Volume
                type: number
                unit: mL
                alert_high: 120
                action_high: 150
            calculations:
              viable_volume:
                label: Viable volume
                expression: viability * volume / 100
                unit: mL
              dose_volume:
                label: Dose volume
                expression: round(viable_volume / 2, 1)
                unit: mL
                decimals: 1
                action_high: 100
  - id: culture
    name: Culture
    operations:
      - id: seed
        name: Seed the culture
        ordering: parallel
        phases:
          - id: add_media
            name: Add the media
            instructions: Add the media to the bag.
            timers:
              - after: count
                max: 1 h
            materials:
              - code: MEDIA-1
                name: Culture medium
                quantity: 500
                unit: mL
              - code: IL2-1
                name: Interleukin-2
                quantity: 2
                unit: mL
          - id: incubate
            name: Start the incubator
            instructions: Put the bag in the incubator.
            timers:
              - after: add_media
                min: 30 min
                max: 2 h
              - after: count
                max: 6 h
            calculations:
              media_ratio:
                label: Media per mL of cells
                expression: 500 / count.volume
            equipment:
              - class: incubator
"""


def edited(*edits: tuple[int, str, str], text: str = BASE) -> str:
    """``text`` with ``old`` replaced by ``new`` on each numbered (1-based) line."""
    lines = text.split("\n")
    for number, old, new in edits:
        assert lines[number - 1].count(old) == 1, (number, lines[number - 1], old)
        lines[number - 1] = lines[number - 1].replace(old, new)
    return "\n".join(lines)


def problems(text: str | bytes) -> list[str]:
    """The lines ``mes recipe validate`` prints for ``text`` (it must be invalid)."""
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(text, NAME)
    data, found = check_recipe(text)
    assert data is None
    assert [p.text(NAME) for p in sorted(found)] == caught.value.lines()
    return caught.value.lines()


def valid(text: str) -> bool:
    """True when ``text`` is a valid recipe (and compiles)."""
    data, found = check_recipe(text)
    assert found == [], found
    return data is not None and len(load_recipe(text, NAME).content_hash) == 64


CHECK_BAG = "unit_procedures[0].operations[0].phases[0]"  # the phase 'check_bag', lines 25-43
REPORT_DAMAGE = "unit_procedures[0].operations[0].phases[1]"  # 'report_damage', lines 44-54
COUNT = "unit_procedures[0].operations[0].phases[2]"  # the phase 'count', lines 55-87
SEED = "unit_procedures[1].operations[0]"  # the parallel operation 'seed', lines 91-124
VIABLE_VOLUME = f"{COUNT}.calculations.viable_volume"  # line 80: viability * volume / 100
MEDIA_RATIO = f"{SEED}.phases[1].calculations.media_ratio"  # line 122: 500 / count.volume


def test_the_base_recipe_is_valid():
    data, found = check_recipe(BASE)
    assert found == []
    assert data is not None
    recipe = load_recipe(BASE, NAME)
    assert [p["id"] for p in recipe.phases()] == [
        "check_bag",
        "report_damage",
        "count",
        "add_media",
        "incubate",
    ]
    assert len(recipe.content_hash) == 64


# --- duplicate IDs and keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (110, "id: incubate", "id: add_media"),
            f"{NAME}:110:13 {SEED}.phases[1]: duplicate ID 'add_media' "
            f"(already used at line 95, {SEED}.phases[0])",
            id="phase",
        ),
        pytest.param(
            (91, "id: seed", "id: inspect"),
            f"{NAME}:91:9 {SEED}: duplicate ID 'inspect' "
            "(already used at line 22, unit_procedures[0].operations[0])",
            id="operation",
        ),
        pytest.param(
            (88, "id: culture", "id: receipt"),
            f"{NAME}:88:5 unit_procedures[1]: duplicate ID 'receipt' "
            "(already used at line 19, unit_procedures[0])",
            id="unit procedure",
        ),
        pytest.param(
            (110, "id: incubate", "id: seed"),
            f"{NAME}:110:13 {SEED}.phases[1]: duplicate ID 'seed' (already used at line 91, {SEED})",
            id="phase with the ID of an operation",
        ),
        pytest.param(
            (68, "target: 90", "alert_low: 90"),
            f"{NAME}:69:17 {COUNT}.inputs.viability.alert_low: "
            "duplicate key 'alert_low' (first given on line 68)",
            id="YAML key",
        ),
        pytest.param(
            (82, "dose_volume", "viability"),
            f"{NAME}:82:15 {COUNT}.calculations.viability: "
            "'viability' is already the ID of an input of this phase",
            id="calculation with the ID of an input",
        ),
    ],
)
def test_a_duplicate_is_named_where_it_is_repeated(edit, expected):
    assert problems(edited(edit)) == [expected]


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            [(117, "after: count", "after: add_media")],
            f"{NAME}:117:17 {SEED}.phases[1].timers[1]: a second timer after 'add_media': give "
            "min and max in one timer",
            id="timer after the same phase",
        ),
        pytest.param(
            [(106, "code: IL2-1", "code: MEDIA-1")],
            f"{NAME}:106:17 {SEED}.phases[0].materials[1]: material MEDIA-1 is listed twice: "
            "give its total quantity once",
            id="material",
        ),
        pytest.param(
            [(124, "- class: incubator", "- class: incubator\n              - class: incubator")],
            f"{NAME}:125:17 {SEED}.phases[1].equipment[1]: equipment 'incubator' is listed twice "
            "without a label: give each instrument its own label",
            id="equipment without labels",
        ),
        pytest.param(
            [
                (
                    124,
                    "- class: incubator",
                    "- class: incubator\n                label: Left\n"
                    "              - class: incubator\n                label: Left",
                )
            ],
            f"{NAME}:126:17 {SEED}.phases[1].equipment[1]: equipment 'incubator' is listed twice "
            "with the same label: give each instrument its own label",
            id="equipment with the same label",
        ),
    ],
)
def test_a_timer_material_or_instrument_given_twice_in_a_phase_is_refused(edits, expected):
    assert problems(edited(*edits)) == [expected]


def test_the_same_start_material_or_instrument_class_is_allowed_where_it_is_distinct():
    # Two phases may each time from 'count' (as the base recipe does), two phases may use the
    # same material, and one phase may use two instruments of a class told apart by labels.
    assert valid(
        edited(
            (
                124,
                "- class: incubator",
                "- class: incubator\n                label: Left\n"
                "              - class: incubator\n                label: Right",
            ),
            (
                122,
                "expression: 500 / count.volume",
                "expression: 500 / count.volume\n"
                "            materials:\n"
                "              - code: MEDIA-1\n"
                "                name: Culture medium\n"
                "                quantity: 100\n"
                "                unit: mL",
            ),
        )
    )


# --- references between phases --------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (60, "after: check_bag", "after: check_bags"),
            f"{NAME}:60:17 {COUNT}.timers[0]: the timer refers to unknown phase 'check_bags'",
            id="timer to an unknown phase",
        ),
        pytest.param(
            (60, "after: check_bag", "after: incubate"),
            f"{NAME}:60:17 {COUNT}.timers[0]: the timer refers to phase 'incubate', which comes "
            f"later ({SEED}.phases[1]); only earlier phases can be referred to",
            id="timer to a later phase",
        ),
        pytest.param(
            (60, "after: check_bag", "after: count"),
            f"{NAME}:60:17 {COUNT}.timers[0]: the timer refers to its own phase 'count'",
            id="timer to its own phase",
        ),
        pytest.param(
            (122, "count.volume", "incubate.volume"),
            f"{NAME}:122:17 {SEED}.phases[1].calculations.media_ratio: "
            "the calculation refers to its own phase 'incubate'",
            id="calculation to its own phase",
        ),
        pytest.param(
            (80, "volume", "add_media.volume"),
            f"{NAME}:80:17 {COUNT}.calculations.viable_volume: the calculation refers to phase "
            f"'add_media', which comes later ({SEED}.phases[0]); only earlier phases can be "
            "referred to",
            id="calculation to a later phase",
        ),
        pytest.param(
            (48, "check_bag.condition", "count.viability"),
            f"{NAME}:48:15 {REPORT_DAMAGE}.when: the condition refers to phase 'count', which "
            f"comes later ({COUNT}); only earlier phases can be referred to",
            id="condition on a later phase",
        ),
        pytest.param(
            (48, "check_bag.condition", "report_damage.volume_lost"),
            f"{NAME}:48:15 {REPORT_DAMAGE}.when: the condition refers to its own phase "
            "'report_damage'",
            id="condition on its own phase",
        ),
    ],
)
def test_a_reference_to_an_unknown_later_or_own_phase_is_refused(edit, expected):
    assert problems(edited(edit)) == [expected]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (122, "count.volume", "report_damage.volume_lost"),
            f"{NAME}:122:17 {MEDIA_RATIO}: the calculation reads 'report_damage.volume_lost', "
            "but phase 'report_damage' runs only when its condition holds, so the value may "
            "never be recorded",
            id="of a later operation",
        ),
        pytest.param(
            (80, "viability * volume / 100", "viability * report_damage.volume_lost / 100"),
            f"{NAME}:80:17 {VIABLE_VOLUME}: the calculation reads 'report_damage.volume_lost', "
            "but phase 'report_damage' runs only when its condition holds, so the value may "
            "never be recorded",
            id="of the same operation",
        ),
    ],
)
def test_a_calculation_may_not_read_a_value_of_a_phase_that_may_be_skipped(edit, expected):
    assert problems(edited(edit)) == [expected]


def test_a_timer_may_start_after_a_phase_that_may_be_skipped():
    # docs/recipe-format.md (Timers): such a timer never starts when the phase is skipped.
    assert valid(edited((60, "after: check_bag", "after: report_damage")))


@pytest.mark.parametrize("ordering", ["parallel", "any_order"])
def test_phases_of_a_parallel_or_any_order_operation_that_wait_for_each_other_are_a_cycle(
    ordering,
):
    text = edited((93, "parallel", ordering), (99, "after: count", "after: incubate"))
    assert problems(text) == [
        f"{NAME}:95:13 {SEED}.phases[0]: phases wait for each other in a cycle: "
        "add_media → incubate → add_media"
    ]


def test_in_a_sequence_a_phase_cannot_wait_for_the_next_one():
    text = edited((93, "parallel", "sequence"), (99, "after: count", "after: incubate"))
    assert problems(text) == [
        f"{NAME}:99:17 {SEED}.phases[0].timers[0]: the timer refers to phase 'incubate', which "
        f"comes later ({SEED}.phases[1]); only earlier phases can be referred to"
    ]


def test_calculations_that_depend_on_each_other_are_a_cycle_named_once():
    assert problems(edited((80, "viability * volume / 100", "dose_volume * 2"))) == [
        f"{NAME}:84:17 {COUNT}.calculations.dose_volume: calculations depend on each other in a "
        "cycle: dose_volume → viable_volume → dose_volume"
    ]


def test_a_calculation_that_refers_to_itself_is_refused():
    assert problems(edited((80, "viability * volume / 100", "viable_volume + 1"))) == [
        f"{NAME}:80:17 {COUNT}.calculations.viable_volume: "
        "the calculation 'viable_volume' refers to itself"
    ]


# --- timers and limits ------------------------------------------------------------------------


def test_a_timer_whose_min_is_above_its_max_is_refused():
    assert problems(edited((115, "min: 30 min", "min: 3 h"))) == [
        f"{NAME}:115:17 {SEED}.phases[1].timers[0]: min 3 h is above max 2 h"
    ]


def test_a_timer_needs_a_min_or_a_max():
    assert problems(edited((61, "max: 4 h", ""))) == [
        f"{NAME}:60:17 {COUNT}.timers[0]: give at least one of: min, max"
    ]


def test_durations_are_computed_exactly():
    # In binary floating point 2.3 × 86400 is 198719.99999999997 and 55.2 × 3600 is 198720.0.
    days = load_recipe(edited((9, "9 d", "2.3 d")), NAME)
    hours = load_recipe(edited((9, "9 d", "55.2 h")), NAME)
    assert days.data["expected_duration_seconds"] == 198720
    assert type(days.data["expected_duration_seconds"]) is int
    assert days.canonical == hours.canonical
    assert days.content_hash == hours.content_hash
    # A minimum equal to the maximum, written in other units, is not 'above' it.
    assert valid(edited((115, "min: 30 min", "min: 55.2 h"), (116, "max: 2 h", "max: 2.3 d")))
    # A duration that is not a whole number of seconds stays exact.
    timer = load_recipe(edited((61, "max: 4 h", "max: 0.5 s")), NAME)
    assert [p["timers"] for p in timer.phases()][2] == [
        {"after": "check_bag", "min_seconds": None, "max_seconds": 0.5}
    ]


def test_an_empty_description_is_the_same_as_none():
    text = edited(
        (4, "title: Test CAR-T recipe", 'title: Test CAR-T recipe\ndescription: ""'),
        (20, "name: Receipt", 'name: Receipt\n    description: ""'),
        (23, "name: Inspect the bag", "name: Inspect the bag\n        description: ''"),
    )
    recipe = load_recipe(text, NAME)
    assert recipe.data["description"] is None
    assert recipe.data["unit_procedures"][0]["description"] is None
    assert recipe.data["unit_procedures"][0]["operations"][0]["description"] is None
    assert recipe.content_hash == load_recipe(BASE, NAME).content_hash


VIABILITY = f"{COUNT}.inputs.viability"  # lines 63-70: decimals 1, target 90, alert_low 80, …
VOLUME = f"{COUNT}.inputs.volume"  # lines 71-76: alert_high 120, action_high 150
DOSE_VOLUME = f"{COUNT}.calculations.dose_volume"  # lines 82-87: decimals 1, action_high 100


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (68, "target: 90", "target: 75"),
            f"{NAME}:68:17 {VIABILITY}: target 75 is outside the alert limits (80 to ∞)",
            id="target outside the alert limits",
        ),
        pytest.param(
            (75, "alert_high: 120", "target: 160"),
            f"{NAME}:75:17 {VOLUME}: target 160 is outside the action limits (−∞ to 150)",
            id="target outside the action limits",
        ),
        pytest.param(
            (70, "action_low: 70", "action_low: 85"),
            f"{NAME}:70:17 {VIABILITY}: action_low 85 is above alert_low 80",
            id="action_low above alert_low",
        ),
        pytest.param(
            (76, "action_high: 150", "action_high: 100"),
            f"{NAME}:76:17 {VOLUME}: action_high 100 is below alert_high 120",
            id="action_high below alert_high",
        ),
        pytest.param(
            (68, "target: 90", "alert_high: 60"),
            f"{NAME}:69:17 {VIABILITY}: alert_low 80 is above alert_high 60",
            id="alert_low above alert_high",
        ),
        pytest.param(
            (75, "alert_high: 120", "action_low: 160"),
            f"{NAME}:75:17 {VOLUME}: action_low 160 is above action_high 150",
            id="action_low above action_high",
        ),
        pytest.param(
            (68, "target: 90", "target: 72.5"),
            f"{NAME}:68:17 {VIABILITY}: target 72.5 is outside the alert limits (80 to ∞)",
            id="decimal target",
        ),
    ],
)
def test_limits_out_of_order_are_named_at_the_limit_that_is_wrong(edit, expected):
    assert problems(edited(edit)) == [expected]


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            [(73, "type: number", "type: integer"), (75, "alert_high: 120", "alert_high: 120.5")],
            f"{NAME}:75:17 {VOLUME}: alert_high 120.5 is not a whole number, but the input is an "
            "integer",
            id="integer input",
        ),
        pytest.param(
            [(69, "alert_low: 80", "alert_low: 85.25")],
            f"{NAME}:69:17 {VIABILITY}: alert_low 85.25 has more decimals than the 1 the value "
            "is recorded with",
            id="input with decimals",
        ),
        pytest.param(
            [(87, "action_high: 100", "action_high: 99.95")],
            f"{NAME}:87:17 {DOSE_VOLUME}: action_high 99.95 has more decimals than the 1 the "
            "value is recorded with",
            id="calculation with decimals",
        ),
        pytest.param(
            [(67, "decimals: 1", "decimals: 0"), (69, "alert_low: 80", "alert_low: 80.5")],
            f"{NAME}:69:17 {VIABILITY}: alert_low 80.5 has more decimals than the 0 the value "
            "is recorded with",
            id="no decimals",
        ),
    ],
)
def test_a_limit_finer_than_the_value_is_recorded_is_refused(edits, expected):
    assert problems(edited(*edits)) == [expected]


def test_limits_as_fine_as_the_value_is_recorded_are_accepted():
    assert valid(edited((69, "alert_low: 80", "alert_low: 80.5")))
    assert valid(edited((73, "type: number", "type: integer"), (75, "120", "120.0")))
    assert valid(edited((87, "action_high: 100", "action_high: 99.9")))
    assert valid(edited((76, "action_high: 150", "action_high: 150.125")))  # no decimals given


# --- units, calculations, conditions, identity -----------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (74, "unit: mL", "unit: mls"),
            f"{NAME}:74:17 {VOLUME}: unknown unit 'mls'; use a unit from the list in "
            "docs/recipe-format.md",
            id="without a suggestion",
        ),
        pytest.param(
            (74, "unit: mL", "unit: ml"),
            f"{NAME}:74:17 {VOLUME}: unknown unit 'ml'; did you mean 'mL'?",
            id="with a suggestion",
        ),
        pytest.param(
            (105, "unit: mL", "unit: ML"),
            f"{NAME}:105:17 {SEED}.phases[0].materials[0]: unknown unit 'ML'; did you mean 'mL'?",
            id="of a material",
        ),
        pytest.param(
            (85, "unit: mL", "unit: x10^6 cells"),
            f"{NAME}:85:17 {DOSE_VOLUME}: unknown unit 'x10^6 cells'; use a "
            "unit from the list in docs/recipe-format.md",
            id="of a calculation",
        ),
    ],
)
def test_an_unknown_unit_is_named_with_a_suggestion_when_there_is_one(edit, expected):
    assert problems(edited(edit)) == [expected]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (80, "volume", "volum"),
            f"{NAME}:80:17 {VIABLE_VOLUME}: the calculation refers to unknown input 'volum'",
            id="unknown input of the phase",
        ),
        pytest.param(
            (122, "count.volume", "count.volum"),
            f"{NAME}:122:17 {MEDIA_RATIO}: the calculation refers to unknown input 'count.volum'",
            id="unknown input of an earlier phase",
        ),
        pytest.param(
            (122, "count.volume", "counts.volume"),
            f"{NAME}:122:17 {MEDIA_RATIO}: the calculation refers to unknown phase 'counts'",
            id="unknown phase",
        ),
        pytest.param(
            (122, "count.volume", "check_bag.note"),
            f"{NAME}:122:17 {MEDIA_RATIO}: 'check_bag.note' is a text input, not a number",
            id="text input",
        ),
        pytest.param(
            (122, "count.volume", "check_bag.condition"),
            f"{NAME}:122:17 {MEDIA_RATIO}: 'check_bag.condition' is a choice input, not a number",
            id="choice input",
        ),
        pytest.param(
            (80, "viability * volume / 100", "viability * (volume / 100"),
            f"{NAME}:80:17 {VIABLE_VOLUME}: the expression 'viability * (volume / 100' cannot "
            "be read: expected ')' at position 26, found the end",
            id="unbalanced parenthesis",
        ),
        pytest.param(
            (80, "viability * volume / 100", "viability ** 2"),
            f"{NAME}:80:17 {VIABLE_VOLUME}: the expression 'viability ** 2' cannot be read: "
            "unexpected '*' at position 12",
            id="power",
        ),
        pytest.param(
            (80, "viability * volume / 100", "__import__(volume)"),
            f"{NAME}:80:17 {VIABLE_VOLUME}: the expression '__import__(volume)' cannot be read: "
            "'__import__' at position 1 is not an allowed function",
            id="call",
        ),
        pytest.param(
            (80, "viability * volume / 100", "viability.real.imag"),
            f"{NAME}:80:17 {VIABLE_VOLUME}: the expression 'viability.real.imag' cannot be read: "
            "'viability.real.imag' at position 1: write a value as 'input' or 'phase.input'",
            id="attribute access",
        ),
    ],
)
def test_a_calculation_must_read_known_numbers_and_parse(edit, expected):
    assert problems(edited(edit)) == [expected]


WHEN = f"{REPORT_DAMAGE}.when"  # lines 47-49: input check_bag.condition, equals damaged


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (48, "check_bag.condition", "check_bag.colour"),
            f"{NAME}:48:15 {WHEN}: the condition refers to unknown input 'check_bag.colour'",
            id="unknown input",
        ),
        pytest.param(
            (48, "check_bag.condition", "checkbag.condition"),
            f"{NAME}:48:15 {WHEN}: the condition refers to unknown phase 'checkbag'",
            id="unknown phase",
        ),
        pytest.param(
            (48, "check_bag.condition", "check_bag.note"),
            f"{NAME}:48:15 {WHEN}: a condition can test a choice or yes/no input; "
            "'check_bag.note' is text",
            id="not a choice",
        ),
        pytest.param(
            (49, "equals: damaged", "equals: torn"),
            f"{NAME}:49:15 {WHEN}: 'torn' is not an option of 'check_bag.condition' "
            "(options: 'intact', 'damaged')",
            id="option not offered",
        ),
        pytest.param(
            (49, "equals: damaged", "in: [damaged, Torn]"),
            f"{NAME}:49:15 {WHEN}: 'Torn' is not an option of 'check_bag.condition' "
            "(options: 'intact', 'damaged')",
            id="one of several options not offered",
        ),
        pytest.param(
            (49, "equals: damaged", "equals: true"),
            f"{NAME}:49:15 {WHEN}: True is not an option of 'check_bag.condition' "
            "(options: 'intact', 'damaged')",
            id="yes for a choice",
        ),
        pytest.param(
            (36, "required: true", "required: false"),
            f"{NAME}:48:15 {WHEN}: 'check_bag.condition' is optional: a condition needs a "
            "required input, or the phase is undecided when it is left empty",
            id="optional input",
        ),
    ],
)
def test_a_condition_must_test_an_offered_option_of_an_earlier_required_choice(edit, expected):
    assert problems(edited(edit)) == [expected]


def test_a_condition_on_a_yes_no_input_compares_it_with_true_or_false():
    text = edited(
        (35, "type: choice", "type: yes_no"),
        (37, "options:", "help: Is the bag damaged?"),
        (38, "- intact", ""),
        (39, "- damaged", ""),
    )
    assert problems(text) == [
        f"{NAME}:49:15 {WHEN}: 'check_bag.condition' is yes/no: compare it with true or false, "
        "not 'damaged'"
    ]
    assert valid(edited((49, "equals: damaged", "equals: true"), text=text))


def test_an_identity_check_must_match_a_chain_of_identity_field():
    assert problems(edited((31, "matches: din", "matches: donor_din"))) == [
        f"{NAME}:31:17 {CHECK_BAG}.identity_checks[0]: "
        "'donor_din' is not in the chain of identity (declared: din, patient_id)"
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (66, 'unit: "%"', ""),
            [f"{NAME}:65:17 {VIABILITY}: a number input needs a unit"],
            id="number without a unit",
        ),
        pytest.param(
            (65, "type: number", "type: integer"),
            [f"{NAME}:67:17 {VIABILITY}: an integer input has no decimals"],
            id="integer with decimals",
        ),
        pytest.param(
            (42, "type: text", 'type: text\n                unit: "%"'),
            [
                f"{NAME}:43:17 {CHECK_BAG}.inputs.note: unit applies only to number and integer "
                "inputs, not text"
            ],
            id="unit of a text input",
        ),
        pytest.param(
            (38, "- intact", "- damaged"),
            [f"{NAME}:37:17 {CHECK_BAG}.inputs.condition: options are repeated"],
            id="repeated option",
        ),
        pytest.param(
            (43, "required: false", 'pattern: "[a-z"'),
            [
                f"{NAME}:43:17 {CHECK_BAG}.inputs.note: pattern '[a-z' is not a valid RE2 "
                "regular expression: missing ]: [a-z"
            ],
            id="invalid pattern",
        ),
        pytest.param(
            (35, "type: choice", "type: text"),
            [
                f"{NAME}:37:17 {CHECK_BAG}.inputs.condition: options apply only to choice "
                "inputs, not text",
                f"{NAME}:48:15 {WHEN}: a condition can test a choice or yes/no input; "
                "'check_bag.condition' is text",
            ],
            id="options of a text input",
        ),
        pytest.param(
            (14, "kind: isbt128_din", 'kind: isbt128_din\n    pattern: "^=.+"'),
            [f"{NAME}:15:5 chain_of_identity.din: a pattern applies only to kind 'identifier'"],
            id="pattern of a DIN",
        ),
    ],
)
def test_inputs_must_be_consistent_with_their_type(edit, expected):
    assert problems(edited(edit)) == expected


# --- the schema ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            (93, "ordering:", "order:"),
            f"{NAME}:93:9 {SEED}.order: unknown field 'order' "
            "(allowed here: description, id, name, ordering, phases)",
            id="unknown field",
        ),
        pytest.param(
            (20, "    name: Receipt", ""),
            f"{NAME}:19:5 unit_procedures[0]: 'name' is a required field",
            id="missing field",
        ),
        pytest.param(
            (104, "quantity: 500", "quantity: abc"),
            f"{NAME}:104:27 {SEED}.phases[0].materials[0].quantity: 'abc' is text, not a number",
            id="text for a number",
        ),
        pytest.param(
            (3, "version: 1", "version: abc"),
            f"{NAME}:3:10 version: 'abc' is text, not a number",
            id="text for a whole number",
        ),
        pytest.param(
            (68, "target: 90", "target: yes"),
            f"{NAME}:68:25 {VIABILITY}.target: True is not of type 'number'",
            id="yes for a number",
        ),
        pytest.param(
            (104, "quantity: 500", "quantity: 0"),
            f"{NAME}:104:27 {SEED}.phases[0].materials[0].quantity: "
            "0 is less than or equal to the minimum of 0",
            id="zero quantity",
        ),
        pytest.param(
            (65, "type: number", "type: float"),
            f"{NAME}:65:23 {VIABILITY}.type: 'float' is not one of ['number', 'integer', 'text', "
            "'choice', 'yes_no', 'datetime', 'barcode']",
            id="unknown input type",
        ),
        pytest.param(
            (40, "note:", "Note:"),
            f"{NAME}:40:15 {CHECK_BAG}.inputs.Note: 'Note' is not a valid ID: use "
            "lower-case letters, digits and '_', starting with a letter",
            id="key that is not an ID",
        ),
        pytest.param(
            (29, "id: bag_din", "id: Bag_DIN"),
            f"{NAME}:29:21 {CHECK_BAG}.identity_checks[0].id: 'Bag_DIN' is not allowed here: "
            "Lower-case letters, digits and '_', starting with a letter.",
            id="value that is not an ID",
        ),
        pytest.param(
            (2, "TEST-CART", "test-cart"),
            f"{NAME}:2:14 recipe_code: 'test-cart' is not allowed here: Upper-case letters, "
            "digits and '-'.",
            id="code",
        ),
        pytest.param(
            (116, "max: 2 h", "max: 2 hours"),
            f"{NAME}:116:22 {SEED}.phases[1].timers[0].max: '2 hours' is not allowed here: "
            "A duration such as '30 min', '48 h' or '14 d'.",
            id="duration",
        ),
        pytest.param(
            (93, "parallel", "together"),
            f"{NAME}:93:19 {SEED}.ordering: 'together' is not one of "
            "['sequence', 'any_order', 'parallel']",
            id="ordering",
        ),
        pytest.param(
            (49, "equals: damaged", "equals: damaged\n              in: [damaged]"),
            f"{NAME}:48:15 {WHEN}: give one of: equals, in",
            id="condition with both equals and in",
        ),
    ],
)
def test_a_schema_problem_is_named_at_the_field(edit, expected):
    assert problems(edited(edit)) == [expected]


# --- files that are not a recipe, or not YAML -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            edited((6, "code: CART-TEST", "code: [CART-TEST")),
            f"{NAME}:7:7: not valid YAML: while parsing a flow sequence, expected ',' or ']', "
            "but got ':'",
            id="unclosed bracket",
        ),
        pytest.param(
            edited((20, "    name: Receipt", "     name: Receipt")),
            f"{NAME}:20:10: not valid YAML: mapping values are not allowed here",
            id="bad indentation",
        ),
        pytest.param(
            edited((20, "    name: Receipt", "\tname: Receipt")),
            f"{NAME}:20:1: not valid YAML: while scanning for the next token, found character "
            "'\\t' that cannot start any token",
            id="tab",
        ),
        pytest.param(
            edited((124, "class: incubator", "class: 'incubator")),
            f"{NAME}:125:1: not valid YAML: while scanning a quoted scalar, found unexpected end "
            "of stream",
            id="unclosed quote",
        ),
        pytest.param(
            edited((4, "Test CAR-T recipe", "*title")),
            f"{NAME}:4:8: the alias *title: anchors and aliases are not allowed in a recipe; "
            "write each value out where it is used",
            id="undefined alias",
        ),
        pytest.param(
            edited((4, "Test CAR-T recipe", "!!python/object:os.system x")),
            f"{NAME}:4:8: not valid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system'",
            id="python tag",
        ),
        pytest.param("", f"{NAME}:1:1: the file is empty", id="empty"),
        pytest.param("\n# only a comment\n\n", f"{NAME}:1:1: the file is empty", id="comment"),
        pytest.param(
            "null\n",
            f"{NAME}:1:1: a recipe is a mapping of fields, not an empty document",
            id="null",
        ),
        pytest.param(
            "---\n",
            f"{NAME}:1:1: a recipe is a mapping of fields, not an empty document",
            id="document marker only",
        ),
        pytest.param(
            BASE.encode().replace(b"Receipt", b"Rec\xe9ipt"),
            f"{NAME}:20:14: the file is not UTF-8 text (byte 426)",
            id="latin-1 byte",
        ),
        pytest.param(
            b"\xff\xfeformat",
            f"{NAME}:1:1: the file is not UTF-8 text (byte 1)",
            id="UTF-16",
        ),
        pytest.param(
            BASE + "---\nformat: gmp-mes/recipe/1\n",
            f"{NAME}:125:1: not valid YAML: expected a single document in the stream, but found "
            "another document",
            id="two documents",
        ),
        pytest.param(
            "- format: gmp-mes/recipe/1\n- version: 1\n",
            f"{NAME}:1:1: a recipe is a mapping of fields, not a list",
            id="list",
        ),
        pytest.param(
            "CAR-T recipe\n", f"{NAME}:1:1: a recipe is a mapping of fields, not text", id="text"
        ),
        pytest.param(
            "\n\n  42\n", f"{NAME}:3:3: a recipe is a mapping of fields, not a number", id="number"
        ),
        pytest.param(
            edited((8, "modality: autologous_cell", "modality: autologous_cell\n  true: 1")),
            f"{NAME}:9:3 product: key 'true' is not text: keys must be names such as 'inputs' or "
            "'viability'",
            id="key that is not text",
        ),
        pytest.param(
            edited((8, "modality: autologous_cell", "modality: autologous_cell\n  [a, b]: 1")),
            f"{NAME}:9:3 product: key 'a collection' is not text: keys must be names such as "
            "'inputs' or 'viability'",
            id="key that is a list",
        ),
    ],
)
def test_a_file_that_is_not_a_yaml_mapping_is_refused_with_its_position(text, expected):
    assert problems(text) == [expected]


# --- values YAML reads but JSON cannot hold (each once crashed the hash or a rule) ------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            edited((27, "Scan the bag", "Scan\x00 the bag")),
            f"{NAME}:27:31: not valid YAML: unacceptable character #x0000: special characters "
            "are not allowed",
            id="NUL character",
        ),
        pytest.param(
            edited((68, "target: 90", "target: .nan")),
            f"{NAME}:68:25 {VIABILITY}.target: nan is not a finite number",
            id="not a number",
        ),
        pytest.param(
            edited((104, "quantity: 500", "quantity: 1e999")),
            f"{NAME}:104:27 {SEED}.phases[0].materials[0].quantity: inf is not a finite number",
            id="overflowing number",
        ),
        pytest.param(
            edited((3, "version: 1", "version: 9007199254740992")),
            f"{NAME}:3:10 version: 9007199254740992 is too large: whole numbers go up to "
            "9007199254740991",
            id="integer beyond JSON's exact range",
        ),
        pytest.param(
            edited((116, "max: 2 h", "max: 3651 d")),
            f"{NAME}:116:17 {SEED}.phases[1].timers[0]: max 3651 d is longer than 3650 d",
            id="timer too long",
        ),
        pytest.param(
            edited((9, "9 d", "99999999999999999999 h")),
            f"{NAME}:9:1 expected_duration: 99999999999999999999 h is longer than 3650 d",
            id="expected duration too long",
        ),
        pytest.param(
            edited((64, "label: Viability", 'label: "Viability \\ud800"')),
            f"{NAME}:64:24 {VIABILITY}.label: the text contains an unpaired surrogate (an escape "
            "such as \\ud800), which is not a valid character",
            id="lone surrogate",
        ),
        pytest.param(
            edited((4, "Test CAR-T recipe", "2026-13-01")),
            f"{NAME}:4:8 title: unreadable value: month must be in 1..12",
            id="impossible date",
        ),
        pytest.param(
            edited((4, "Test CAR-T recipe", "2026-11-21")),
            f"{NAME}:4:8 title: datetime.date(2026, 11, 21) is not of type 'string'",
            id="date for text",
        ),
        pytest.param(
            edited((29, "id: bag_din", 'id: "bag_din\\n"')),
            f"{NAME}:29:21 {CHECK_BAG}.identity_checks[0].id: 'bag_din\\n' is not allowed here: "
            "Lower-case letters, digits and '_', starting with a letter.",
            id="ID with a final newline",
        ),
        pytest.param(
            edited((84, "round(viable_volume / 2, 1)", "round(viable_volume, 1e400)")),
            f"{NAME}:84:17 {DOSE_VOLUME}: the expression "
            "'round(viable_volume, 1e400)' cannot be read: the number 1e400 at position 22 is "
            "too large",
            id="number too large in an expression",
        ),
    ],
)
def test_a_value_that_cannot_be_recorded_is_refused_not_crashed_on(text, expected):
    assert problems(text) == [expected]


def test_a_huge_or_deeply_nested_document_is_refused():
    nested = "a: " + "[" * 100 + "]" * 100 + "\n"
    assert problems(nested) == [
        f"{NAME}:1:68: the document is too large or nested too deeply "
        "(over 200000 values or 64 levels)"
    ]
    recursive = "a: &x [*x]\n"
    assert problems(recursive) == [
        f"{NAME}:1:4: the anchor &x: anchors and aliases are not allowed in a recipe; write each "
        "value out where it is used"
    ]


# --- all problems, in file order --------------------------------------------------------------


def test_every_problem_of_a_file_is_listed_in_file_order():
    text = edited(
        (116, "max: 2 h", "max: 10 min"),  # timer min 30 min above max
        (3, "version: 1", "version: abc"),  # schema
        (104, "quantity: 500", "quantity: abc"),  # schema, in a later unit procedure
        (60, "after: check_bag", "after: incubate"),  # later phase
        (74, "unit: mL", "unit: mls"),  # unknown unit
        (70, "action_low: 70", "action_low: 85"),  # action inside alert
        (80, "volume", "volum"),  # unknown input
        (31, "matches: din", "matches: donor"),  # chain of identity
        (36, "required: true", "required: false"),  # condition on an optional input
        (87, "action_high: 100", "action_high: 100.25"),  # finer than recorded
        (106, "code: IL2-1", "code: MEDIA-1"),  # material twice
        (122, "count.volume", "report_damage.volume_lost"),  # value of a conditional phase
        (68, "target: 90", "target: 90\n                target: 91"),  # duplicate key (+1 line)
    )
    assert problems(text) == [
        f"{NAME}:3:10 version: 'abc' is text, not a number",
        f"{NAME}:31:17 {CHECK_BAG}.identity_checks[0]: 'donor' is not in the chain of identity "
        "(declared: din, patient_id)",
        f"{NAME}:48:15 {WHEN}: 'check_bag.condition' is optional: a condition needs a required "
        "input, or the phase is undecided when it is left empty",
        f"{NAME}:60:17 {COUNT}.timers[0]: the timer refers to phase 'incubate', which comes later "
        f"({SEED}.phases[1]); only earlier phases can be referred to",
        f"{NAME}:69:17 {VIABILITY}.target: duplicate key 'target' (first given on line 68)",
        f"{NAME}:71:17 {VIABILITY}: action_low 85 is above alert_low 80",
        f"{NAME}:75:17 {VOLUME}: unknown unit 'mls'; use a unit from the list in "
        "docs/recipe-format.md",
        f"{NAME}:81:17 {VIABLE_VOLUME}: the calculation refers to unknown input 'volum'",
        f"{NAME}:88:17 {DOSE_VOLUME}: action_high 100.25 has more decimals than the 1 the value "
        "is recorded with",
        f"{NAME}:105:27 {SEED}.phases[0].materials[0].quantity: 'abc' is text, not a number",
        f"{NAME}:107:17 {SEED}.phases[0].materials[1]: material MEDIA-1 is listed twice: give "
        "its total quantity once",
        f"{NAME}:116:17 {SEED}.phases[1].timers[0]: min 30 min is above max 10 min",
        f"{NAME}:123:17 {MEDIA_RATIO}: the calculation reads 'report_damage.volume_lost', but "
        "phase 'report_damage' runs only when its condition holds, so the value may never be "
        "recorded",
    ]


def test_the_error_summary_counts_every_problem_and_shows_the_first_three():
    text = edited((3, "version: 1", "version: abc"), (74, "unit: mL", "unit: mls"))
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(text, NAME)
    assert str(caught.value).startswith(
        f"{NAME} is not a valid recipe (2 problems): {NAME}:3:10 version: 'abc' is text, not a "
        f"number; {NAME}:74:17 {VOLUME}: unknown unit 'mls'"
    )
    assert caught.value.http_status == 422


def test_a_calculation_may_not_read_an_optional_input():
    # 'volume' (line 71) becomes optional: the line after it gains 'required: false', so the
    # calculations that read it (in its phase, and in a later one) move down one line.
    text = edited((72, "label: Volume", "label: Volume\n                required: false"))
    assert problems(text) == [
        f"{NAME}:81:17 {COUNT}.calculations.viable_volume: the calculation reads 'volume', which "
        "is optional: a calculation needs required inputs, or it cannot be worked out when one "
        "is left empty",
        f"{NAME}:123:17 {SEED}.phases[1].calculations.media_ratio: the calculation reads "
        "'count.volume', which is optional: a calculation needs required inputs, or it cannot be "
        "worked out when one is left empty",
    ]


# --- inputs, calculations and chain-of-identity fields as lists of items with IDs ----------------

INPUT_LINE = (  # line 24 of recipe_helpers.recipe_text, the phase's only input
    '              - {id: viability, label: Viability, type: number, unit: "%", decimals: 1, '
    "target: 95, alert_low: 85, action_low: 80}\n"
)
SCAN_BAG = "unit_procedures[0].operations[0].phases[0]"


def listed(*extra_lines: str, after: str = INPUT_LINE) -> list[str]:
    """The problems of the small list-form recipe with ``extra_lines`` after ``after``."""
    text = recipe_text()
    assert text.count(after) == 1
    _, found = check_recipe(text.replace(after, after + "".join(extra_lines)))
    return [p.text("mini.yaml") for p in found]


def test_the_list_form_is_valid_and_warns_of_nothing():
    assert listed() == []
    assert load_recipe(recipe_text(), "mini.yaml").warnings == ()


def test_two_items_of_a_list_with_the_same_id_are_refused_naming_the_first():
    assert listed("              - {id: viability, label: Again, type: yes_no}\n") == [
        f"mini.yaml:25:18 {SCAN_BAG}.inputs[1]: duplicate input ID 'viability' "
        "(first given on line 24)"
    ]
    din = "  - {id: din, label: Donation identification number, kind: isbt128_din}\n"
    assert listed("  - {id: din, label: Again, kind: identifier}\n", after=din) == [
        "mini.yaml:10:6 chain_of_identity[1]: duplicate chain-of-identity field ID 'din' "
        "(first given on line 9)"
    ]


def test_an_item_of_a_list_without_an_id_is_refused():
    assert listed("              - {label: Bag intact, type: yes_no}\n") == [
        f"mini.yaml:25:17 {SCAN_BAG}.inputs[1]: 'id' is a required field"
    ]


def test_a_calculation_with_the_id_of_an_input_is_refused_in_the_list_form_too():
    calculation = (
        "            calculations:\n"
        "              - {id: viability, label: Viability, expression: '2', unit: '%'}\n"
    )
    assert listed(calculation) == [
        f"mini.yaml:26:18 {SCAN_BAG}.calculations[0]: 'viability' is already the ID of an input "
        "of this phase"
    ]


def test_an_id_field_inside_the_older_mapping_form_is_refused():
    text = recipe_text().replace(
        "  - {id: din, label: Donation", "  din: {id: dna, label: Donation"
    )
    (problem,) = check_recipe(text)[1]
    assert problem.text("mini.yaml") == (
        "mini.yaml:9:9 chain_of_identity.din: in the mapping form of chain_of_identity the key "
        "is the ID: remove 'id', or write chain_of_identity as a list"
    )
    with pytest.raises(RecipeInvalid) as refused:
        load_recipe(text, "mini.yaml")
    (warning,) = refused.value.warning_lines()
    assert warning.startswith("mini.yaml:8:1 chain_of_identity: warning: chain_of_identity is ")
