"""The calculation language: arithmetic on recorded values with min, max and round, parsed by
a small recursive-descent parser (never ``eval``); everything else is refused with the position
of the first character that is wrong."""

from __future__ import annotations

import builtins

import pytest

from mes.core.expressions import MAX_DEPTH, MAX_LENGTH, ExpressionError, parse


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left to right
        ("2 * 3 / 4", 1.5),
        ("8 / 4 / 2", 1),  # left to right
        ("1 + 6 / 2 * 3 - 4", 6),
        ("-2 * 3", -6),
        ("2 * -3", -6),
        ("1 - -1", 2),
        ("--2", 2),
        ("-(1 + 2)", -3),
        ("+3", 3),
        ("-2 + 5", 3),  # unary minus binds tighter than +
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2)", 3),
        ("max(-1, -2)", -1),
        ("min(1 + 1, 3) * max(2, 4)", 8),
        ("round(2.4)", 2),
        ("round(2.5)", 3),  # half away from zero (USP), not Python's half to even
        ("round(3.5)", 4),
        ("round(-2.5)", -3),
        ("round(2.675, 2)", 2.68),  # the number as written, not its binary approximation
        ("round(0.125, 2)", 0.13),
        ("round(1 / 3, 4)", 0.3333),
        ("round(1234.5678, 0)", 1235),
        ("1e9", 1e9),
        ("2.5e-3 * 1E3", 2.5),
        ("1.5e+2", 150),
        (".5 + 5.", 5.5),
        ("007", 7),
        ("  1\t+\n2  ", 3),
    ],
)
def test_arithmetic_follows_the_usual_rules(text, value):
    assert parse(text).evaluate({}) == pytest.approx(value, rel=1e-12, abs=0)


def test_values_are_read_by_name_and_by_phase_and_name():
    expression = parse("round(viable_conc * check_bag.bag_volume / 1000, 2)")
    values = {"viable_conc": 12.5, "check_bag.bag_volume": 250}
    assert expression.evaluate(values) == 3.13  # 3.125, half away from zero
    assert expression.names == ("viable_conc", "check_bag.bag_volume")


def test_names_are_listed_once_in_order_of_first_use():
    expression = parse("b + a * (b - count.volume) / max(a, c, count.volume) + _x1")
    assert expression.names == ("b", "a", "count.volume", "c", "_x1")
    assert parse("1 + 2").names == ()
    assert parse("-(-(x))").names == ("x",)


def test_the_expression_keeps_its_text():
    assert parse(" a + 1 ").text == " a + 1 "


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("__import__('os')", 'unexpected character "\'" at position 12', 12),
        ("__import__(os)", "'__import__' at position 1 is not an allowed function", 1),
        ("exp(1)", "'exp' at position 1 is not an allowed function", 1),
        ("1 + abs(x)", "'abs' at position 5 is not an allowed function", 5),
        ("eval(x)", "'eval' at position 1 is not an allowed function", 1),
        ("a.b.c", "'a.b.c' at position 1: write a value as 'input' or 'phase.input'", 1),
        (
            "x.__class__.__bases__",
            "'x.__class__.__bases__' at position 1: write a value as 'input' or 'phase.input'",
            1,
        ),
        ("min(a, b).real", "unexpected character '.' at position 10", 10),
        ("(a).b", "unexpected character '.' at position 4", 4),
        ("x[0]", "unexpected character '[' at position 2", 2),
        ("a ** 2", "unexpected '*' at position 4", 4),
        ("a ^ 2", "unexpected character '^' at position 3", 3),
        ("a % 2", "unexpected character '%' at position 3", 3),
        ("a // 2", "unexpected '/' at position 4", 4),
        ("lambda: 0", "unexpected character ':' at position 7", 7),
        ("lambda x: x", "unexpected character ':' at position 9", 9),
        ('"text"', "unexpected character '\"' at position 1", 1),
        ("'a' + 1", 'unexpected character "\'" at position 1', 1),
        ("a > 1", "unexpected character '>' at position 3", 3),
        ("a == b", "unexpected character '=' at position 3", 3),
        ("a if b else c", "unexpected 'if' at position 3", 3),
        ("a b", "unexpected 'b' at position 3", 3),
        ("1 2", "unexpected '2' at position 3", 3),
        ("", "the expression is empty", 1),
        ("   ", "the expression is empty", 1),
        ("(a + b", "expected ')' at position 7, found the end", 7),
        ("((a)", "expected ')' at position 5, found the end", 5),
        ("a + b)", "unexpected ')' at position 6", 6),
        ("()", "unexpected ')' at position 2", 2),
        ("a +", "the expression ends too early at position 4", 4),
        ("-", "the expression ends too early at position 2", 2),
        ("min(a b)", "expected ')' or ',' at position 7, found 'b'", 7),
        ("min(a,)", "unexpected ')' at position 7", 7),
        ("min(a)", "min at position 1 needs at least two values", 1),
        ("max()", "unexpected ')' at position 5", 5),
        ("min", "'min' at position 1 is a function: write min(...)", 1),
        ("2 * round", "'round' at position 5 is a function: write round(...)", 5),
        (
            "round(a, 1, 2)",
            "round at position 1 takes a value and optionally the number of decimals",
            1,
        ),
        (
            "round(a, b)",
            "round at position 1: the number of decimals must be a whole number from 0 to 15",
            1,
        ),
        (
            "round(a, -1)",
            "round at position 1: the number of decimals must be a whole number from 0 to 15",
            1,
        ),
        (
            "round(a, 1.5)",
            "round at position 1: the number of decimals must be a whole number from 0 to 15",
            1,
        ),
        (
            "x + round(a, 16)",
            "round at position 5: the number of decimals must be a whole number from 0 to 15",
            5,
        ),
        ("round(a, 1e400)", "the number 1e400 at position 10 is too large", 10),
        ("1e999 * 0", "the number 1e999 at position 1 is too large", 1),
        ("a = 1", "unexpected character '=' at position 3", 3),
        ("a; b", "unexpected character ';' at position 2", 2),
        ("viabilité", "unexpected character 'é' at position 9", 9),
    ],
)
def test_anything_but_arithmetic_is_refused_with_its_position(text, message, position):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert caught.value.message == message
    assert caught.value.position == position


def test_a_too_long_expression_is_refused():
    text = "1+" * (MAX_LENGTH // 2) + "1"
    assert len(text) == MAX_LENGTH + 1
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert caught.value.message == "the expression is longer than 500 characters"
    assert caught.value.position == 1
    assert parse("1+" * (MAX_LENGTH // 2 - 1) + "11").evaluate({}) == 260  # exactly 500


@pytest.mark.parametrize(
    ("text", "position"),
    [
        pytest.param("(" * 200 + "1" + ")" * 200, MAX_DEPTH + 2, id="parentheses"),
        pytest.param("-" * 499 + "1", MAX_DEPTH + 2, id="unary minus"),
        pytest.param("min(" * 50 + "1" + ", 1)" * 50, 4 * (MAX_DEPTH + 1) + 1, id="calls"),
        pytest.param("-(" * 166 + "1" + ")" * 166, MAX_DEPTH + 2, id="mixed"),
    ],
)
def test_too_deep_nesting_is_refused_without_exhausting_the_stack(text, position):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert caught.value.message == f"the expression nests deeper than {MAX_DEPTH} levels"
    assert caught.value.position == position


def test_nesting_up_to_the_limit_is_read():
    assert parse("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH).evaluate({}) == 1
    assert parse("-" * MAX_DEPTH + "1").evaluate({}) == 1


def test_a_long_flat_chain_is_read_and_evaluated():
    assert parse("+".join(["x"] * 250)).evaluate({"x": 2}) == 500
    assert parse("-".join(["1"] * 250)).evaluate({}) == -248


@pytest.mark.parametrize(
    ("text", "values", "message", "position"),
    [
        ("a + b", {"a": 1}, "no value recorded for 'b'", 5),
        ("a + count.b", {"a": 1, "count.b": None}, "no value recorded for 'count.b'", 5),
        ("a / (b - b)", {"a": 1, "b": 2}, "division by zero", None),
        ("a / 0", {"a": 0}, "division by zero", None),
        ("a * a", {"a": 1e200}, "'a * a' does not give a finite number", None),
        ("1e308 * 10", {}, "'1e308 * 10' does not give a finite number", None),
        ("a / 1e-300", {"a": 1e10}, "'a / 1e-300' does not give a finite number", None),
        ("max(a, 1)", {"a": float("inf")}, "'max(a, 1)' does not give a finite number", None),
        ("a + 1", {"a": float("nan")}, "'a + 1' does not give a finite number", None),
        ("a + 1", {"a": "ten"}, "the value recorded for 'a' is not a number", 1),
        ("a + 1", {"a": [1]}, "the value recorded for 'a' is not a number", 1),
        ("a + 1", {"a": 10**400}, "the value recorded for 'a' is not a number", 1),
    ],
)
def test_evaluation_errors_are_expression_errors(text, values, message, position):
    with pytest.raises(ExpressionError) as caught:
        parse(text).evaluate(values)
    assert caught.value.message == message
    assert caught.value.position == position


def test_round_of_the_largest_numbers_stays_exact():
    assert parse("round(a, 15)").evaluate({"a": 1.7976931348623157e308}) == 1.7976931348623157e308
    assert parse("round(a, 15)").evaluate({"a": 5e-324}) == 0
    assert parse("round(a)").evaluate({"a": 1e17 + 0.5}) == 1e17


def test_parsing_and_evaluating_never_call_eval_exec_or_compile(monkeypatch):
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("eval, exec and compile must not be used")

    for name in ("eval", "exec", "compile", "__import__"):
        monkeypatch.setattr(builtins, name, forbidden)
    expression = parse("round(max(a, b) * 2 / c.d - -1, 2)")
    assert expression.evaluate({"a": 1, "b": 2, "c.d": 3}) == 2.33
