"""A recipe version's content identity: the SHA-256 of the RFC 8785 canonical JSON of its
compiled form, the same whatever the key order, whitespace, comments or YAML style of the file,
and different as soon as anything the recipe says changes."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import yaml

from mes.core.recipe import CompiledRecipe, check_recipe, inspect_recipe, load_recipe

BLOCK = """\
format: gmp-mes/recipe/1
recipe_code: FILL-MRNA
version: 2
title: Fill and finish
product:
  code: MRNA-01
  name: mRNA vaccine
  modality: mrna
expected_duration: 1.5 h
change_reason: Lower alert limit for the particle count
chain_of_identity:
  lot:
    label: Lot number
    kind: identifier
    pattern: ^L[0-9]{6}$
unit_procedures:
  - id: fill
    name: Fill
    operations:
      - id: dispense
        name: Dispense
        phases:
          - id: weigh
            name: Weigh the bulk
            instructions: Weigh the bulk bag on the balance.
            inputs:
              particles:
                label: Particle count
                type: number
                unit: each
                alert_high: 1e9
                action_high: 2000000000
              mass:
                label: Bulk mass
                type: number
                unit: g
                decimals: 2
          - id: label_vials
            name: Label the vials
            instructions: Print and apply the labels.
            perform: supervisor
            timers:
              - after: weigh
                max: 90 min
            calculations:
              vials:
                label: Vials to fill
                expression: round(weigh.mass / 0.5)
                unit: vial
"""

FLOW = """\
{"version": 2, "format": "gmp-mes/recipe/1", "title": "Fill and finish",
 "recipe_code": "FILL-MRNA", "product": {"modality": mrna, "name": "mRNA vaccine",
 code: MRNA-01}, change_reason: "Lower alert limit for the particle count",
 expected_duration: "1.5 h",
 chain_of_identity: {lot: {pattern: "^L[0-9]{6}$", kind: identifier, label: Lot number}},
 unit_procedures: [{name: Fill, id: fill, operations: [{name: Dispense, id: dispense,
   phases: [
     {instructions: Weigh the bulk bag on the balance., name: Weigh the bulk, id: weigh,
      inputs: {particles: {unit: each, type: number, label: Particle count,
                           action_high: 2000000000, alert_high: 1000000000.0},
               mass: {decimals: 2, unit: g, type: number, label: Bulk mass}}},
     {timers: [{max: 90 min, after: weigh}], perform: supervisor, id: label_vials,
      name: Label the vials, instructions: Print and apply the labels.,
      calculations: {vials: {unit: vial, expression: round(weigh.mass / 0.5),
                             label: Vials to fill}}}]}]}]}
"""

COMMENTED = """\
# Fill and finish of the mRNA vaccine; comments and blank lines are not part of the recipe.

format:    "gmp-mes/recipe/1"
recipe_code: 'FILL-MRNA'      # stable across versions
version: 2
title: "Fill and finish"
product:
    code:     MRNA-01
    name:     'mRNA vaccine'
    modality: mrna
expected_duration: "1.5 h"
change_reason: >-
    Lower alert limit
    for the particle count
chain_of_identity:
    lot:
        label: Lot number
        kind: identifier
        pattern: '^L[0-9]{6}$'

unit_procedures:
-   id: fill
    name: Fill
    operations:
    -   id: dispense
        name: Dispense
        phases:
        -   id: weigh
            name: Weigh the bulk
            instructions: "Weigh the bulk bag on the balance."
            inputs:
                particles:
                    label: Particle count
                    type: number
                    unit: each
                    alert_high: 1.0e+9         # the same number as 1e9
                    action_high: 2_000_000_000
                mass: {label: Bulk mass, type: number, unit: g, decimals: 2}
        -   id: label_vials
            name: Label the vials
            instructions: Print and apply the labels.
            perform: supervisor
            timers: [{after: weigh, max: 90 min}]
            calculations:
                vials:
                    label: Vials to fill
                    expression: "round(weigh.mass / 0.5)"
                    unit: vial
"""

ID_MAPPINGS = ("inputs", "calculations", "chain_of_identity")  # their order is the form's order


def reordered(value: Any, parent: str | None = None) -> Any:
    """``value`` with the fields of every mapping in reverse order (IDs keep their order)."""
    if isinstance(value, list):
        return [reordered(item) for item in value]
    if not isinstance(value, dict):
        return value
    items = [(key, reordered(item, key)) for key, item in value.items()]
    return dict(items if parent in ID_MAPPINGS else reversed(items))


def compiled(text: str | bytes) -> CompiledRecipe:
    return load_recipe(text, "fill.yaml")


REFERENCE = compiled(BLOCK)
DATA = check_recipe(BLOCK)[0]  # as the recipe loader reads it (1e9 is a number, as in YAML 1.2)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(FLOW, id="flow style, keys reordered, 1000000000.0"),
        pytest.param(COMMENTED, id="comments, quoting, indentation, 1.0e+9, 2_000_000_000"),
        pytest.param(BLOCK.replace("1e9", "1000000000"), id="1e9 written as an integer"),
        pytest.param(BLOCK.replace("1e9", "1000000000.0"), id="1e9 written with a decimal point"),
        pytest.param(BLOCK.replace("1.5 h", "'1.5 h'"), id="quoted duration"),
        pytest.param(BLOCK.replace("90 min", "1.5 h"), id="the same duration in other units"),
        pytest.param(BLOCK.replace("\n", "\r\n"), id="CRLF line ends"),
        pytest.param(BLOCK.replace(":\n", ":   \n") + "\n\n# end\n", id="trailing whitespace"),
        pytest.param("\ufeff" + BLOCK, id="byte order mark"),
        pytest.param(BLOCK.encode("utf-8"), id="bytes"),
        pytest.param(
            yaml.safe_dump(reordered(DATA), sort_keys=False, default_flow_style=False),
            id="every field in reverse order",
        ),
        pytest.param(
            yaml.safe_dump(DATA, sort_keys=False, default_flow_style=True, width=60),
            id="PyYAML flow",
        ),
        pytest.param(json.dumps(reordered(DATA), indent=3), id="JSON"),
    ],
)
def test_the_same_recipe_written_differently_has_the_same_identity(text):
    other = compiled(text)
    assert other.canonical == REFERENCE.canonical
    assert other.content_hash == REFERENCE.content_hash


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("alert_high: 1e9", "alert_high: 1.1e9", id="a limit"),
        pytest.param("version: 2", "version: 3", id="the version"),
        pytest.param("max: 90 min", "max: 91 min", id="a timer"),
        pytest.param("perform: supervisor", "perform: qa", id="who performs"),
        pytest.param("decimals: 2", "decimals: 3", id="decimals"),
        pytest.param("round(weigh.mass / 0.5)", "round(weigh.mass * 2)", id="an expression"),
        pytest.param("on the balance.", "on the balance", id="a full stop"),
        pytest.param("Weigh the bulk bag", "Weigh  the bulk bag", id="a space inside text"),
        pytest.param(
            "                unit: each\n                alert_high: 1e9\n",
            "                unit: each\n                required: false\n                alert_high: 1e9\n",
            id="an optional input",
        ),
    ],
)
def test_any_change_to_what_the_recipe_says_changes_its_identity(old, new):
    assert BLOCK.count(old) == 1
    other = compiled(BLOCK.replace(old, new))
    assert other.content_hash != REFERENCE.content_hash
    assert other.canonical != REFERENCE.canonical


def test_the_order_of_inputs_is_part_of_the_recipe_it_is_the_order_of_the_form():
    data = check_recipe(BLOCK)[0]
    phase = data["unit_procedures"][0]["operations"][0]["phases"][0]
    phase["inputs"] = dict(reversed(phase["inputs"].items()))
    other = compiled(yaml.safe_dump(data, sort_keys=False))
    assert other.content_hash != REFERENCE.content_hash
    assert [i["id"] for i in next(other.phases())["inputs"]] == ["mass", "particles"]


def test_an_explicit_default_gives_the_same_identity_as_the_default_left_out():
    explicit = (
        BLOCK.replace(
            "        name: Dispense\n", "        name: Dispense\n        ordering: sequence\n"
        )
        .replace(
            "                decimals: 2\n",
            "                decimals: 2\n                required: true\n",
        )
        .replace(
            "            name: Weigh the bulk\n",
            "            name: Weigh the bulk\n            perform: operator\n",
        )
    )
    assert compiled(explicit).content_hash == REFERENCE.content_hash


def test_the_compiled_form_has_every_default_filled_in_and_durations_in_seconds():
    data = REFERENCE.data
    assert data["format"] == "gmp-mes/recipe/1"
    assert data["description"] is None
    assert data["expected_duration_seconds"] == 5400
    assert data["chain_of_identity"] == [
        {"id": "lot", "label": "Lot number", "kind": "identifier", "pattern": "^L[0-9]{6}$"}
    ]
    (unit,) = data["unit_procedures"]
    (operation,) = unit["operations"]
    assert unit["description"] is None
    assert operation["ordering"] == "sequence"
    weigh, label_vials = operation["phases"]
    assert (weigh["perform"], weigh["verify"], weigh["when"]) == ("operator", None, None)
    assert (weigh["timers"], weigh["calculations"], weigh["materials"]) == ([], [], [])
    assert (weigh["equipment"], weigh["identity_checks"]) == ([], [])
    particles, mass = weigh["inputs"]
    assert particles == {
        "id": "particles",
        "label": "Particle count",
        "type": "number",
        "unit": "each",
        "decimals": None,
        "target": None,
        "alert_low": None,
        "alert_high": 1e9,
        "action_low": None,
        "action_high": 2000000000,
        "required": True,
        "options": None,
        "pattern": None,
        "help": None,
    }
    assert (mass["id"], mass["required"], mass["decimals"]) == ("mass", True, 2)
    assert label_vials["perform"] == "supervisor"
    assert label_vials["timers"] == [{"after": "weigh", "min_seconds": None, "max_seconds": 5400}]
    assert label_vials["calculations"] == [
        {
            "id": "vials",
            "label": "Vials to fill",
            "type": "calculation",
            "unit": "vial",
            "decimals": None,
            "target": None,
            "alert_low": None,
            "alert_high": None,
            "action_low": None,
            "action_high": None,
            "expression": "round(weigh.mass / 0.5)",
        }
    ]


def test_a_condition_with_equals_compiles_as_a_list_of_one():
    text = BLOCK.replace(
        "            perform: supervisor\n",
        "            perform: supervisor\n            when:\n              input: weigh.ok\n"
        "              equals: true\n",
    ).replace(
        "                decimals: 2\n",
        "                decimals: 2\n              ok:\n                label: Bag intact\n"
        "                type: yes_no\n",
    )
    phase = list(compiled(text).phases())[1]
    assert phase["when"] == {"input": "weigh.ok", "in": [True]}


def test_the_canonical_json_is_rfc_8785_and_the_identity_is_its_sha256():
    canonical = REFERENCE.canonical
    assert rfc8785.dumps(json.loads(canonical)) == canonical
    assert json.loads(canonical) == REFERENCE.data
    assert canonical == json.dumps(
        json.loads(canonical), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert b"\n" not in canonical and b": " not in canonical and b", " not in canonical
    assert b'"alert_high":1000000000,' in canonical  # 1e9, written as JSON writes numbers
    assert REFERENCE.content_hash == hashlib.sha256(canonical).hexdigest()


def test_compiling_twice_gives_the_same_bytes():
    assert compiled(BLOCK).canonical == compiled(BLOCK).canonical


# --- the order of inputs, calculations and chain-of-identity fields is written as a list ---------

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "recipes").glob("*.yaml"))
# The content hash of each example recipe, with its criticality, milestones, turnaround target
# and bedside check.
EXAMPLE_HASHES = {
    "car-t-cryo.yaml": "68f3dfd24ff32bbac7e4abc53ddac66e3a1041cfed5b66134b3275d3d1a7a743",
    "car-t-fresh.yaml": "d71ed5ab337ac2303350dadf102f48adc0074091fcca715e45d7be890fc79c19",
    "mrna-vaccine-fill.yaml": "946b488113b73c34f9944cddd1d39d946d99b2a657f1930ffef68407213b0c72",
}
# ... and without them: the hash each had as approved before its ordered fields became lists
# (and before the criticality keys existed), which a recipe that does not declare them keeps.
UNANNOTATED_HASHES = {
    "car-t-cryo.yaml": "a0cca728e81409732d68d897bb0f4fbf250b1a9ada5efcb229469bc2aa67dfdf",  # logger import (issue 17)
    "car-t-fresh.yaml": "36849a44d5e9355f506c97fd4580b8291e5ab422d76f9df75b623018631ab959",
    "mrna-vaccine-fill.yaml": "6377a266ba5f249d42d4fb29ec580da9936b85a210913a2369f49c01082837bd",
}
CRITICALITY_KEYS = ("criticality", "milestone", "turnaround", "pending_results", "bedside")


def without_criticality(value: Any) -> Any:
    """``value`` without any criticality, milestone or turnaround key, at any depth."""
    if isinstance(value, list):
        return [without_criticality(item) for item in value]
    if isinstance(value, dict):
        return {
            key: without_criticality(item)
            for key, item in value.items()
            if key not in CRITICALITY_KEYS
        }
    return value


class _DoubleQuoted(yaml.SafeDumper):
    """Writes every text double-quoted (numbers and true/false stay plain)."""


_DoubleQuoted.add_representer(
    str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
)

REFORMATS = {
    "sorted keys": lambda data: yaml.safe_dump(data, sort_keys=True, allow_unicode=True),
    "sorted keys, flow style": lambda data: yaml.safe_dump(
        data, sort_keys=True, default_flow_style=True, allow_unicode=True
    ),
    "every text double-quoted": lambda data: yaml.dump(
        data, Dumper=_DoubleQuoted, sort_keys=True, allow_unicode=False, width=70
    ),
    "every field in reverse order": lambda data: yaml.safe_dump(
        reversed_fields(data), sort_keys=False, allow_unicode=True
    ),
    "JSON with sorted keys": lambda data: json.dumps(data, sort_keys=True, indent=1),
}


def reversed_fields(value: Any) -> Any:
    """``value`` with the fields of every mapping in reverse order (lists keep theirs)."""
    if isinstance(value, list):
        return [reversed_fields(item) for item in value]
    if isinstance(value, dict):
        return {key: reversed_fields(item) for key, item in reversed(value.items())}
    return value


def as_mappings(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its ordered fields in the older form: a mapping of ID → fields."""

    def mapping(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {item["id"]: {k: v for k, v in item.items() if k != "id"} for item in items}

    older = copy.deepcopy(data)
    older["chain_of_identity"] = mapping(older["chain_of_identity"])
    for unit in older["unit_procedures"]:
        for operation in unit["operations"]:
            for phase in operation["phases"]:
                for name in ("inputs", "calculations"):
                    if name in phase:
                        phase[name] = mapping(phase[name])
    return older


def test_the_example_recipes_keep_the_content_hash_they_had_as_mappings():
    assert [path.name for path in EXAMPLES] == sorted(EXAMPLE_HASHES)
    for path in EXAMPLES:
        recipe = load_recipe(path.read_bytes(), path.name)
        assert recipe.content_hash == EXAMPLE_HASHES[path.name], path.name
        assert recipe.warnings == ()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_an_example_recipe_without_its_criticality_keys_has_its_earlier_hash(path):
    data = check_recipe(path.read_bytes())[0]
    stripped = without_criticality(data)
    assert stripped != data  # every example declares some
    recipe = load_recipe(yaml.safe_dump(stripped, sort_keys=False, allow_unicode=True), path.name)
    assert recipe.content_hash == UNANNOTATED_HASHES[path.name]


@pytest.mark.parametrize("reformat", REFORMATS.values(), ids=REFORMATS.keys())
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_an_example_recipe_written_in_another_yaml_style_keeps_its_content_hash(path, reformat):
    data = check_recipe(path.read_bytes())[0]
    text = reformat(data)
    assert text != path.read_text("utf-8")
    recipe = load_recipe(text, path.name)
    assert recipe.content_hash == EXAMPLE_HASHES[path.name]
    assert recipe.canonical == load_recipe(path.read_bytes(), path.name).canonical
    assert recipe.warnings == ()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_the_older_mapping_form_compiles_to_the_same_hash_with_a_warning_per_mapping(path):
    data = check_recipe(path.read_bytes())[0]
    recipe = load_recipe(yaml.safe_dump(as_mappings(data), sort_keys=False), path.name)
    assert recipe.content_hash == EXAMPLE_HASHES[path.name]
    mappings = 1 + sum(  # the chain of identity, and every phase's inputs and calculations
        name in phase
        for unit in data["unit_procedures"]
        for operation in unit["operations"]
        for phase in operation["phases"]
        for name in ("inputs", "calculations")
    )
    assert len(recipe.warnings) == mappings > 10
    assert all(f"{path.name}:" in line and ": warning: " in line for line in recipe.warnings)
    assert (
        " chain_of_identity: warning: chain_of_identity is written as a mapping, "
        in (recipe.warnings[0])
    )


def test_the_mapping_form_re_dumped_with_sorted_keys_is_another_recipe_which_is_why_it_warns():
    data = as_mappings(check_recipe(EXAMPLES[0].read_bytes())[0])
    same = load_recipe(yaml.safe_dump(data, sort_keys=False), "a.yaml")
    sorted_keys = load_recipe(yaml.safe_dump(data, sort_keys=True), "a.yaml")
    assert same.content_hash == EXAMPLE_HASHES[EXAMPLES[0].name]
    assert sorted_keys.content_hash != same.content_hash
    assert same.warnings and sorted_keys.warnings


LISTED = (
    BLOCK.replace("  lot:\n    label", "  - id: lot\n    label")
    .replace("              particles:\n", "              - id: particles\n")
    .replace("              mass:\n", "              - id: mass\n")
    .replace("              vials:\n", "              - id: vials\n")
)


def test_the_list_form_of_a_recipe_is_the_same_recipe_as_its_mapping_form_without_warnings():
    data, problems, warnings = inspect_recipe(LISTED)
    assert (problems, warnings) == ([], [])
    assert compiled(LISTED).canonical == REFERENCE.canonical
    assert compiled(json.dumps(reversed_fields(data))).canonical == REFERENCE.canonical


def test_each_mapping_of_the_older_form_is_named_in_a_warning_with_its_position():
    older_warnings = inspect_recipe(BLOCK)[2]
    assert [w.text("fill.yaml") for w in older_warnings] == [
        "fill.yaml:11:1 chain_of_identity: warning: chain_of_identity is written as a mapping, but "
        "the order of its keys is significant: it is the order shown on screen and in the record, "
        "and part of the recipe's content hash, while YAML tools may reorder a mapping's keys. "
        "Write chain_of_identity as a list, one item per chain-of-identity field starting with "
        "its ID (- id: lot, then its fields)",
        "fill.yaml:26:13 unit_procedures[0].operations[0].phases[0].inputs: warning: inputs is "
        "written as a mapping, but the order of its keys is significant: it is the order shown "
        "on screen and in the record, and part of the recipe's content hash, while YAML tools "
        "may reorder a mapping's keys. Write inputs as a list, one item per input starting with "
        "its ID (- id: particles, then its fields)",
        "fill.yaml:45:13 unit_procedures[0].operations[0].phases[1].calculations: warning: "
        "calculations is written as a mapping, but the order of its keys is significant: it is "
        "the order shown on screen and in the record, and part of the recipe's content hash, "
        "while YAML tools may reorder a mapping's keys. Write calculations as a list, one item "
        "per calculation starting with its ID (- id: vials, then its fields)",
    ]


def test_reordering_the_items_of_a_list_is_a_change_of_the_recipe():
    reordered_inputs = LISTED.replace(
        "              - id: mass\n"
        "                label: Bulk mass\n"
        "                type: number\n"
        "                unit: g\n"
        "                decimals: 2\n",
        "",
    ).replace(
        "              - id: particles\n",
        "              - id: mass\n"
        "                label: Bulk mass\n"
        "                type: number\n"
        "                unit: g\n"
        "                decimals: 2\n"
        "              - id: particles\n",
    )
    other = compiled(reordered_inputs)
    assert [i["id"] for i in next(other.phases())["inputs"]] == ["mass", "particles"]
    assert other.content_hash != REFERENCE.content_hash
