"""Recipe hardening: patterns matched in linear time, one-line names, no YAML anchors, bounded
numbers, free text refused (never cut) over its limit (issue 13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources

import pytest
from recipe_helpers import recipe_text
from support import finishes_within

from mes.core.errors import InvalidInput
from mes.core.identity import normalise_identifier
from mes.core.limits import InvalidValue, parse_value
from mes.core.recipe import check_recipe

NAME = "mini.yaml"
CATASTROPHIC = "^([A-Z0-9]+-?)*$"  # approved once; 18.7 s on a 26-character mis-scan with `re`
AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def problems(text: str) -> list[str]:
    _, found = check_recipe(text)
    return [p.text(NAME) for p in found]


def with_patient_pattern(pattern: str) -> str:
    return recipe_text().replace(
        "  - {id: din, label: Donation identification number, kind: isbt128_din}\n",
        "  - {id: din, label: Donation identification number, kind: isbt128_din}\n"
        f"  - {{id: patient, label: Patient, kind: identifier, pattern: {json.dumps(pattern)}}}\n",
    )


# --- patterns: RE2, linear time -----------------------------------------------------------------


def test_recipe_patterns_are_compiled_by_re2_not_by_a_backtracking_engine():
    import re2

    from mes.core.patterns import compile_pattern

    assert isinstance(compile_pattern(CATASTROPHIC), re2._Regexp)


@pytest.mark.parametrize("length", [26, 100])
def test_a_catastrophic_identifier_pattern_answers_a_long_mis_scan_at_once(length):
    mis_scan = "A" * (length - 1) + "!"  # identifiers are at most 100 characters
    with finishes_within(20), pytest.raises(InvalidInput, match="does not have the form"):
        normalise_identifier("identifier", mis_scan, "Patient", CATASTROPHIC)


def test_a_catastrophic_text_pattern_answers_a_long_value_at_once():
    spec = {"label": "Lot", "type": "barcode", "pattern": CATASTROPHIC}
    with finishes_within(20), pytest.raises(InvalidValue, match="does not have the expected form"):
        parse_value(spec, "A" * 100 + "!", at=AT, time_zone="UTC")


def test_patterns_are_searched_in_the_value_as_before():
    assert normalise_identifier("identifier", "xch1y", "Patient", "CH[0-9]") == "XCH1Y"
    assert normalise_identifier("identifier", "ch1", "Patient", "^CH[0-9]$") == "CH1"
    with pytest.raises(InvalidInput):
        normalise_identifier("identifier", "ch12", "Patient", "^CH[0-9]$")


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        (
            r"^(A)\1$",
            "invalid escape sequence: \\1 (backreferences cannot be matched in linear time)",
        ),
        ("^(?=A)A$", "invalid perl operator: (?= (look-ahead cannot be matched in linear time"),
        (r"^A\Z", "invalid escape sequence: \\Z (write \\z (or $) for the end of the text)"),
    ],
)
def test_a_pattern_re2_cannot_compile_is_refused_with_its_position(pattern, said):
    (problem,) = problems(with_patient_pattern(pattern))
    assert problem.startswith(f"{NAME}:10:53 chain_of_identity[1]: pattern ")
    assert "is not a valid RE2 regular expression" in problem and said in problem


def test_the_catastrophic_pattern_itself_is_valid_re2():
    assert problems(with_patient_pattern(CATASTROPHIC)) == []


# --- one-line texts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            "name: Mini product",
            'name: "Mini\\rproduct"',
            "5:29 product.name: the text contains a carriage return (U+000D) at character 5",
        ),
        (
            "title: Minimal test recipe",
            'title: "Minimal\\ftest"',
            "4:8 title: the text contains a form feed (U+000C) at character 8",
        ),
        (
            "name: Scan the bag",
            'name: "Scan\\u2028the bag"',
            "18:19 unit_procedures[0].operations[0].phases[0].name: the text contains a line separator (U+2028) at character 5",
        ),
        (
            "label: Bag DIN",
            'label: "Bag\\x85DIN"',
            "22:38 unit_procedures[0].operations[0].phases[0].identity_checks[0].label: the text contains a next-line character (U+0085) at character 4",
        ),
        (
            "label: Viability",
            'label: "Via\\tbility"',
            "24:40 unit_procedures[0].operations[0].phases[0].inputs[0].label: the text contains a tab (U+0009) at character 4",
        ),
    ],
)
def test_single_line_recipe_texts_refuse_control_characters_with_their_position(old, new, where):
    text = recipe_text().replace(old, new, 1)
    assert problems(text) == [f"{NAME}:{where}: it must be one line"]


def test_free_texts_of_a_recipe_keep_line_breaks_but_refuse_other_controls():
    multi = recipe_text().replace(
        "instructions: Scan the **bag** label.",
        'instructions: "Scan the bag.\\n\\n- then the label"',
    )
    assert problems(multi) == []
    bent = recipe_text().replace(
        "instructions: Scan the **bag** label.", 'instructions: "Scan\\r the bag"'
    )
    assert problems(bent) == [
        f"{NAME}:19:27 unit_procedures[0].operations[0].phases[0].instructions: the text "
        "contains a carriage return (U+000D) at character 5"
    ]


@pytest.mark.parametrize(
    "char", ["\x00", "\r", "\n", "\t", "\x1b", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"]
)
def test_a_one_line_text_refuses_every_control_character(char):
    from mes.core.text import is_one_line, one_line  # new in issue 13

    assert not is_one_line(f"Ada{char}Lovelace")
    with pytest.raises(InvalidInput, match="must be one line"):
        one_line(f"Ada{char}Lovelace", "The full name")
    assert one_line("  Ada Lovelace ", "The full name") == "Ada Lovelace"


# --- anchors, aliases, merge keys ------------------------------------------------------------------


def test_anchors_aliases_and_merge_keys_are_refused_where_they_are_written():
    anchored = recipe_text().replace("title: Minimal test recipe", "title: &t Minimal test recipe")
    assert problems(anchored) == [
        f"{NAME}:4:8: the anchor &t: anchors and aliases are not allowed in a recipe; write each "
        "value out where it is used"
    ]
    merged = recipe_text().replace(
        "product: {code: MINI, name: Mini product, modality: autologous_cell}",
        "product: {<<: {code: MINI}, name: Mini product, modality: autologous_cell}",
    )
    assert problems(merged) == [
        f"{NAME}:5:11 product: merge keys (<<) are not allowed in a recipe; write the fields out",
        f"{NAME}:5:10 product: 'code' is a required field",  # the merge is not expanded
    ]


def test_a_nested_alias_bomb_is_refused_before_anything_is_expanded():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} {{<<: *{chr(97 + i)}, k: [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]}}\n"
        for i in range(12)
    )
    with finishes_within(20):
        assert problems(bomb) == [
            f"{NAME}:1:4: the anchor &a: anchors and aliases are not allowed in a recipe; write "
            "each value out where it is used"
        ]


# --- numbers ---------------------------------------------------------------------------------------


def test_a_number_without_declared_decimals_is_bounded_at_entry():
    spec = {"label": "Volume", "type": "number", "unit": "mL"}
    assert parse_value(spec, "1.123456", at=AT, time_zone="UTC") == "1.123456"
    with pytest.raises(InvalidValue) as refused:
        parse_value(spec, "1.1234567", at=AT, time_zone="UTC")
    assert refused.value.message == (
        "Volume: 1.1234567 has 7 decimals; a value is recorded to at most 6."
    )
    with pytest.raises(InvalidValue) as refused:
        parse_value(spec, "0." + "1" * 1_500_000, at=AT, time_zone="UTC")
    assert refused.value.message.startswith(
        "Volume: the value typed has 1,500,002 characters; a number is entered in at most 40"
    )
    assert len(refused.value.message) < 300  # the refusal does not echo what was typed
    for huge in ("1e999999", "9" * 5000, "0" * 5000 + "1"):
        with pytest.raises(InvalidValue):
            parse_value(spec, huge, at=AT, time_zone="UTC")


def test_the_schema_allows_no_more_decimals_than_entry_records():
    from mes.core.limits import MAX_DECIMALS  # new in issue 13

    schema = json.loads(
        resources.files("mes.core").joinpath("schema/recipe.schema.json").read_text("utf-8")
    )
    for part in ("input", "calculation"):
        assert schema["$defs"][part]["properties"]["decimals"]["maximum"] == MAX_DECIMALS


# --- free text -------------------------------------------------------------------------------------


def test_free_text_over_its_limit_is_refused_naming_the_limit_never_cut():
    from mes.core.text import free_text  # new in issue 13

    assert free_text("x" * 2000, "The comment") == "x" * 2000
    with pytest.raises(InvalidInput) as refused:
        free_text("x" * 2001, "The comment")
    assert refused.value.message == (
        "The comment is 2,001 characters long; at most 2,000 are allowed."
    )
    assert "nothing was saved" in refused.value.what_to_do
    assert free_text("line one\r\nline two\ttab", "The comment") == "line one\nline two\ttab"
    with pytest.raises(InvalidInput, match="form feed"):
        free_text("a\fb", "The comment")
