"""The procedure's ``custody:`` window (issue 17): the shipments' temperature window a custody
transfer's logger file is checked against. Compiled only when declared (a recipe without it
keeps its identity), refused with the line when low is not below high or a key is wrong."""

from __future__ import annotations

from test_recipe_validation import BASE, NAME, problems

from mes.core.recipe import load_recipe

ANCHOR = "change_reason: First version for the tests\n"
CUSTODY = (
    "custody:\n"
    '  window: {low: 2, high: 8, unit: "°C", max_minutes_outside: 15}\n'
    "  sampling_minutes: 5\n"
)


def with_custody(block: str = CUSTODY) -> str:
    assert ANCHOR in BASE
    return BASE.replace(ANCHOR, ANCHOR + block, 1)


def test_without_it_the_recipe_compiles_without_the_key_and_keeps_its_identity():
    plain = load_recipe(BASE, NAME)
    assert "custody" not in plain.data
    declared = load_recipe(with_custody(), NAME)
    assert declared.data["custody"] == {
        "window": {"low": 2, "high": 8, "unit": "°C", "max_minutes_outside": 15},
        "sampling_minutes": 5,
    }
    assert declared.content_hash != plain.content_hash
    rest = {k: v for k, v in declared.data.items() if k != "custody"}
    assert rest == plain.data


def test_a_window_whose_low_is_not_below_its_high_is_refused_with_its_line():
    found = problems(with_custody(CUSTODY.replace("low: 2", "low: 9")))
    assert len(found) == 1 and "custody.window.low" in found[0]
    assert "the window's low (9 °C) must be below its high (8 °C)" in found[0]


def test_a_window_in_another_unit_or_without_sampling_is_refused():
    assert problems(with_custody(CUSTODY.replace('unit: "°C"', 'unit: "°F"')))
    assert problems(with_custody(CUSTODY.replace("  sampling_minutes: 5\n", "")))


def test_a_changed_window_is_one_change_in_words():
    from mes.core.recipe_diff import diff_recipes

    before = load_recipe(with_custody(), NAME).data
    after = load_recipe(with_custody(CUSTODY.replace("high: 8", "high: 6")), NAME).data
    changes = diff_recipes(before, after)
    assert [c.field for c in changes if "custody" in c.field] == ["custody window"]
    assert not [c for c in diff_recipes(before, before) if "custody" in c.field]
