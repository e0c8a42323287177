"""Recorded values: typed as the recipe declares, judged against alert and action limits."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes.core.limits import (
    InvalidValue,
    LimitStatus,
    calculate,
    has_limits,
    limit_status,
    limits_text,
    numeric,
    parse_value,
    status_words,
)
from mes.core.text import MAX_FREE_TEXT as MAX_TEXT

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET, UTC+1)
ZONE = "Europe/Berlin"
VIABILITY = {"alert_low": 85, "action_low": 70, "target": 95}
TEMPERATURE = {"alert_low": 2.5, "alert_high": 7.5, "action_low": 2, "action_high": 8}


def spec(kind: str, **more) -> dict:
    return {"label": "Value", "type": kind, **more}


def parse(kind: str, raw, **more):
    return parse_value(spec(kind, **more), raw, at=AT, time_zone=ZONE)


def refused(kind: str, raw, **more) -> InvalidValue:
    with pytest.raises(InvalidValue) as caught:
        parse(kind, raw, **more)
    return caught.value


# --- limit_status ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (95, LimitStatus.OK),
        (85, LimitStatus.OK),  # on the alert limit: inside
        ("84.9", LimitStatus.ALERT),
        (70, LimitStatus.ALERT),  # on the action limit: inside it, outside the alert limit
        ("69.99", LimitStatus.ACTION),
        (0, LimitStatus.ACTION),
        (1000, LimitStatus.OK),  # no upper limits
    ],
)
def test_a_value_is_judged_against_one_sided_inclusive_limits(value, expected):
    assert limit_status(value, VIABILITY) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5.0", LimitStatus.OK),
        ("2.5", LimitStatus.OK),
        ("7.5", LimitStatus.OK),
        ("2.4", LimitStatus.ALERT),
        ("7.6", LimitStatus.ALERT),
        ("2", LimitStatus.ALERT),
        ("8.0", LimitStatus.ALERT),
        ("1.9", LimitStatus.ACTION),
        ("8.1", LimitStatus.ACTION),
        ("-40", LimitStatus.ACTION),
    ],
)
def test_a_value_is_judged_against_two_sided_inclusive_limits(value, expected):
    assert limit_status(value, TEMPERATURE) is expected


def test_alert_limits_alone_only_flag():
    alert_only = {"alert_low": 10, "alert_high": 20}
    assert limit_status(15, alert_only) is LimitStatus.OK
    assert limit_status(-1e9, alert_only) is LimitStatus.ALERT
    assert limit_status(1e9, alert_only) is LimitStatus.ALERT


def test_action_limits_alone_raise_a_deviation_with_nothing_in_between():
    action_only = {"action_high": 8}
    assert limit_status("8", action_only) is LimitStatus.OK
    assert limit_status("8.0001", action_only) is LimitStatus.ACTION


def test_a_value_without_limits_is_within_limits():
    assert limit_status("123456.789", {}) is LimitStatus.OK
    assert limit_status(-5, {"target": 1}) is LimitStatus.OK


def test_limits_are_compared_as_written_not_as_binary_floats():
    # 0.1 + 0.2 is 0.30000000000000004 in binary; the text "0.3" is exactly on the limit.
    assert limit_status("0.3", {"action_high": 0.3}) is LimitStatus.OK
    assert limit_status(Decimal("0.30000000000000004"), {"action_high": 0.3}) is (
        LimitStatus.ACTION
    )


def test_has_limits_is_true_only_for_alert_or_action_limits():
    assert has_limits(VIABILITY)
    assert has_limits({"action_high": 0})
    assert not has_limits({"target": 95})
    assert not has_limits({})


# --- limits_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "text"),
    [
        (VIABILITY, "acceptable ≥ 70; alert below 85; target 95"),
        (TEMPERATURE, "acceptable 2 – 8; alert outside 2.5 – 7.5"),
        ({"action_high": 8}, "acceptable ≤ 8"),
        ({"alert_low": 0.50, "target": 1.0}, "alert below 0.5; target 1"),
        ({"alert_high": 3}, "alert above 3"),
        ({"action_low": 100}, "acceptable ≥ 100"),  # not 1E+2
        ({"action_low": -0.5, "action_high": 1e-7}, "acceptable -0.5 – 0.0000001"),
        ({}, ""),
    ],
)
def test_limits_read_as_an_operator_says_them(limits, text):
    assert limits_text(limits) == text


def test_limits_say_what_is_acceptable_and_where_the_alert_starts_with_the_unit():
    # "alert ≥ 90; action ≥ 80" read as "acceptable from 90": the words say what each limit means
    viability = {"alert_low": 90, "action_low": 80, "unit": "%"}
    assert limits_text(viability) == "acceptable ≥ 80 %; alert below 90 %"
    assert limits_text({**TEMPERATURE, "unit": "°C"}) == (
        "acceptable 2 – 8 °C; alert outside 2.5 – 7.5 °C"
    )


def test_a_value_without_limits_is_said_to_have_none_not_to_be_within_them():
    assert status_words("ok", {"unit": "mL"}) == "no limits"
    assert status_words("ok", {"target": 95}) == "no limits"
    assert status_words("ok", VIABILITY) == "Within limits"
    assert status_words("alert", VIABILITY) == "Outside alert limits"
    assert status_words(None, VIABILITY) == ""


# --- parse_value: numbers ---------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["95", "95.0", "95.", ".5", "+1.5", "-0.0", "0", " 95.0 "])
def test_a_number_is_kept_as_the_text_entered(typed):
    assert parse("number", typed, decimals=1) == typed.strip()


def test_a_number_given_as_a_number_is_kept_as_its_text():
    assert parse("number", 12.5, decimals=1) == "12.5"
    assert parse("number", 7) == "7"


def test_a_number_with_more_decimals_than_recorded_is_refused_not_rounded():
    err = refused("number", "95.25", decimals=1, label="Viability")
    assert err.message == "Viability: 95.25 has 2 decimals; this value is recorded to 1."
    assert err.what_to_do == "Enter it with at most 1 decimals, as read on the instrument."
    assert refused("number", "95.10", decimals=1).message.endswith(
        "has 2 decimals; this value is recorded to 1."
    )
    assert refused("number", "200.0", decimals=0).message.endswith(
        "has 1 decimals; this value is recorded to 0."
    )
    assert parse("number", "95.123456", decimals=None) == "95.123456"


def test_a_decimal_comma_is_refused_with_the_point_form_to_type():
    err = refused("number", "95,5", label="Viability")
    assert err.message == "Viability: '95,5' uses a comma; decimals are written with a point."
    assert err.what_to_do == "Enter 95.5."


@pytest.mark.parametrize(
    "typed",
    [
        "abc",
        "\uff11\uff12.\uff15",
        "\u0669\u0665",
        "1,000.5",
        "1e3",
        "1 000",
        "--1",
        "0x10",
        "inf",
        "NaN",
        ".",
    ],
)
def test_anything_else_is_not_a_number(typed):
    err = refused("number", typed, label="Volume")
    assert err.message == f"Volume: '{typed.strip()}' is not a number."
    assert err.what_to_do == "Enter a number."


def test_an_implausibly_large_number_is_refused():
    assert parse("number", "999999999999999") == "999999999999999"
    assert "too large to be a plausible value" in refused("number", "1000000000000000").message


# --- integers, yes/no, choices ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"), [("3", "3"), ("+3", "3"), ("-12", "-12"), ("007", "7"), (5, "5")]
)
def test_a_whole_number_is_recorded_in_its_plain_form(typed, kept):
    assert parse("integer", typed) == kept


def test_an_implausibly_large_whole_number_is_refused_like_a_number():
    assert parse("integer", "999999999999999") == "999999999999999"
    assert parse("integer", "-000999999999999999") == "-999999999999999"
    err = refused("integer", "1000000000000000", label="Count")
    assert err.message == "Count: 1000000000000000 is too large to be a plausible value."
    err = refused("integer", "9" * 5000, label="Count")  # int() alone fails beyond 4300 digits
    assert err.message.startswith("Count: the value typed has 5,000 characters; a number is")


@pytest.mark.parametrize("typed", ["3.0", "3.5", "three", "1e3", "3,0"])
def test_an_integer_input_refuses_anything_but_digits(typed):
    err = refused("integer", typed, label="Count")
    assert err.message == f"Count: '{typed}' is not a whole number."
    assert err.what_to_do == "Enter digits only."


@pytest.mark.parametrize(
    ("typed", "answer"),
    [("yes", True), ("YES", True), ("y", True), ("true", True), ("1", True), (True, True),
     ("no", False), ("No", False), ("n", False), ("false", False), ("0", False), (False, False)],
)  # fmt: skip
def test_yes_no_is_recorded_as_true_or_false(typed, answer):
    assert parse("yes_no", typed) is answer


def test_yes_no_refuses_anything_else():
    assert refused("yes_no", "maybe", label="Bag intact").message == "Bag intact: answer yes or no."


def test_a_choice_must_be_one_of_the_options():
    options = ["pass", "fail"]
    assert parse("choice", " pass ", options=options) == "pass"
    err = refused("choice", "PASS", options=options, label="Result")
    assert err.message == "Result: 'PASS' is not one of the options."
    assert err.what_to_do == "Choose one of: pass, fail."


# --- date and time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "utc"),
    [
        ("2026-11-21 09:30", "2026-11-21T08:30:00.000000Z"),  # CET: UTC+1
        ("2026-11-21T09:30:15", "2026-11-21T08:30:15.000000Z"),
        ("2026-07-01 12:00", "2026-07-01T10:00:00.000000Z"),  # CEST: UTC+2
        ("2026-11-21T09:00:00+00:00", "2026-11-21T09:00:00.000000Z"),  # an explicit offset wins
        ("20/11/2026 00:00", "2026-11-19T23:00:00.000000Z"),  # midnight, site time, day first
        ("21.11.2026 09:30", "2026-11-21T08:30:00.000000Z"),
    ],
)
def test_a_date_and_time_is_read_in_the_site_zone_and_recorded_in_utc(typed, utc):
    assert parse("datetime", typed) == utc


def test_a_time_up_to_five_minutes_ahead_is_a_fast_clock_beyond_that_the_future():
    assert parse("datetime", "2026-11-21 10:05") == "2026-11-21T09:05:00.000000Z"
    err = refused("datetime", "2026-11-21 10:05:01", label="Collection time")
    assert err.message == "Collection time: 2026-11-21 10:05:01 is in the future."
    assert "cannot be ahead of now" in err.what_to_do
    assert (
        "is in the future" in refused("datetime", AT.isoformat().replace("09:00", "09:06")).message
    )


def test_a_date_and_time_that_cannot_be_read_is_refused():
    err = refused("datetime", "11/21/2026 10:00", label="Collection time")  # month first
    assert err.message == "Collection time: '11/21/2026 10:00' is not a date of the calendar."
    assert err.what_to_do == (
        "Enter a date and time as DD/MM/YYYY HH:MM (e.g. 05/12/2026 14:30), on the 24-hour "
        "clock, in site time."
    )
    assert "has no time of day" in refused("datetime", "2026-11-20").message


# --- text ---------------------------------------------------------------------------------------


def test_text_is_kept_trimmed_with_its_line_breaks_and_tabs():
    assert parse("text", "  torn seal\n\tcorner  ") == "torn seal\n\tcorner"


def test_text_line_endings_from_a_browser_are_kept_as_plain_line_breaks():
    assert parse("text", "torn seal\r\ncorner\rtape") == "torn seal\ncorner\ntape"


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b"])
def test_text_with_control_characters_is_refused(control):
    err = refused("text", f"torn{control}seal", label="Damage")
    assert err.message == (
        f"Damage: the text contains a {'NUL character' if control == chr(0) else 'control character'} "
        f"(U+{ord(control):04X}) at character 5."
    )


def test_text_longer_than_the_maximum_is_refused():
    assert parse("text", "x" * MAX_TEXT) == "x" * MAX_TEXT
    err = refused("text", "x" * (MAX_TEXT + 1), label="Damage")
    assert err.message == (
        f"Damage: the text is {MAX_TEXT + 1:,} characters long; at most {MAX_TEXT:,} are allowed."
    )


def test_text_must_have_the_form_of_its_pattern():
    assert parse("text", "LOT-123", pattern=r"^LOT-\d+$") == "LOT-123"
    err = refused("text", "LOT-12A", pattern=r"^LOT-\d+$", label="Lot")
    assert err.message == "Lot: 'LOT-12A' does not have the expected form."
    assert err.what_to_do.startswith("Check the value")


# --- required and optional -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["number", "integer", "yes_no", "choice", "datetime", "text"])
@pytest.mark.parametrize("empty", [None, "", "   "])
def test_an_empty_required_value_is_refused_and_an_empty_optional_one_is_absent(kind, empty):
    err = refused(kind, empty, label="Volume")
    assert err.message == "Volume: a value is required."
    assert err.what_to_do == "Enter the value."
    assert parse(kind, empty, required=False) is None


def test_an_invalid_value_may_carry_its_field_messages():
    err = InvalidValue("two problems", fields={"a": "A is wrong", "b": "B is wrong"})
    assert err.fields == {"a": "A is wrong", "b": "B is wrong"}
    assert err.http_status == 422
    assert InvalidValue("one").fields == {}


# --- numeric and calculate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "number"),
    [("95.0", 95.0), ("-3", -3.0), (7, 7.0), (None, None), (True, None), ("pass", None), ("1e999", None)],
)  # fmt: skip
def test_numeric_reads_recorded_numbers_only(recorded, number):
    assert numeric(recorded) == number


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (2.5, 0, "3"),
        (-2.5, 0, "-3"),  # half away from zero, not half to even
        (3.5, 0, "4"),
        (2.675, 2, "2.68"),  # as written, though the binary float is 2.67499…
        (-2.675, 2, "-2.68"),
        (1.005, 2, "1.01"),
        (0.125, 2, "0.13"),
        (1000.0, 1, "1000.0"),  # padded to the declared decimals
        (2.0, 3, "2.000"),
        (0.04, 1, "0.0"),
    ],
)
def test_a_calculation_is_rounded_half_away_from_zero_to_its_decimals(value, decimals, text):
    assert calculate({"label": "X", "expression": "v", "decimals": decimals}, {"v": value}) == text


def test_a_calculation_without_decimals_is_shown_in_full_without_exponent():
    assert calculate({"label": "X", "expression": "a / b"}, {"a": 1, "b": 4}) == "0.25"
    assert calculate({"label": "X", "expression": "a * 1"}, {"a": 1e20}) == "100000000000000000000"


def test_a_calculation_works_out_the_recipe_expression():
    spec = {
        "label": "Total viable cells",
        "expression": "round(viable_conc * volume, 1)",
        "decimals": 1,
    }
    assert calculate(spec, {"viable_conc": 5.0, "volume": 200.0}) == "1000.0"
    assert calculate(spec, {"viable_conc": 0.123, "volume": 3.0}) == "0.4"


def test_a_division_by_zero_is_reported_with_the_calculation_named():
    with pytest.raises(InvalidValue) as caught:
        calculate(
            {"label": "Dose volume", "expression": "dose / conc", "decimals": 2},
            {"dose": 5, "conc": 0},
        )
    assert caught.value.message == "Dose volume cannot be calculated: division by zero."
    assert caught.value.what_to_do == "Check the values it is calculated from."


def test_a_missing_value_is_reported_with_its_name():
    with pytest.raises(InvalidValue, match="no value recorded for 'conc'"):
        calculate({"label": "Dose volume", "expression": "dose / conc"}, {"dose": 5})


def test_a_result_that_is_not_finite_is_refused():
    with pytest.raises(InvalidValue, match="does not give a finite number"):
        calculate({"label": "X", "expression": "a * b", "decimals": 1}, {"a": 1e200, "b": 1e200})


@settings(max_examples=200, database=None, deadline=None)
@given(
    text=st.from_regex(r"\A[+-]?[0-9]{1,6}(\.[0-9]{1,3})?\Z"),
    decimals=st.integers(0, 3),
)
def test_any_well_formed_number_within_its_decimals_is_kept_exactly_as_typed(text, decimals):
    places = len(text.split(".")[1]) if "." in text else 0
    if places <= decimals:
        assert parse("number", text, decimals=decimals) == text
    else:
        assert (
            "decimals; this value is recorded to"
            in refused("number", text, decimals=decimals).message
        )
