"""Chain of identity: ISBT 128 DIN reading, its Mod 37-2 check, and the batch's identifiers.

The check character is compared with an independent implementation of ISO/IEC 7064 Mod 37-2
(python-stdnum). Every DIN here uses a fake facility number (A9999, B9999, …): test data, not
a real ICCBBA-assigned FIN.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_2

from mes.core.errors import InvalidInput
from mes.core.identity import (
    ALPHABET,
    Din,
    InvalidDin,
    identity_text,
    mod37_2,
    normalise_identifier,
    parse_din,
    scan_matches,
)

DIN = "A999926123456"  # fake FIN A9999, year 26, sequence 123456
CHECK = mod_37_2.calc_check_digit(DIN)
OTHER = "A999926654321"
WRONG_CHECKS = [c for c in ALPHABET if c != CHECK]
FIN_FIRST = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"  # never O (letter) or 0 (digit)
PROPERTY = settings(max_examples=200, database=None, deadline=None)

dins = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(FIN_FIRST),
    st.text("0123456789", min_size=12, max_size=12),
)


def refusal(text: str) -> InvalidDin:
    with pytest.raises(InvalidDin) as caught:
        parse_din(text)
    return caught.value


# --- the check character against the oracle ------------------------------------------------


@PROPERTY
@given(text=st.text(ALPHABET, min_size=1, max_size=40))
def test_mod37_2_agrees_with_python_stdnum_on_any_text_of_the_alphabet(text):
    assert mod37_2(text) == mod_37_2.calc_check_digit(text)
    assert mod_37_2.is_valid(text + mod37_2(text))


@PROPERTY
@given(din=dins)
def test_every_well_formed_din_with_its_check_character_is_read(din):
    check = mod_37_2.calc_check_digit(din)
    assert parse_din(din + check) == Din(din=din, flags=None)
    assert parse_din(f"{din[:5]} {din[5:7]} {din[7:]} 00 {check}") == Din(din=din, flags="00")
    assert Din(din, "00").check_character == check


@PROPERTY
@given(din=dins, data=st.data())
def test_every_single_character_substitution_changes_the_check(din, data):
    typed = din + mod37_2(din)
    position = data.draw(st.integers(0, len(typed) - 1), label="position")
    replacement = data.draw(
        st.sampled_from([c for c in ALPHABET if c != typed[position]]), label="replacement"
    )
    mistyped = typed[:position] + replacement + typed[position + 1 :]
    assert not mod_37_2.is_valid(mistyped)
    assert mod37_2(mistyped[:13]) != mistyped[13]
    with pytest.raises(InvalidDin):
        parse_din(mistyped)


@PROPERTY
@given(din=dins, data=st.data())
def test_every_adjacent_transposition_changes_the_check(din, data):
    typed = din + mod37_2(din)
    swaps = [i for i in range(len(typed) - 1) if typed[i] != typed[i + 1]]
    i = data.draw(st.sampled_from(swaps), label="position")
    swapped = typed[:i] + typed[i + 1] + typed[i] + typed[i + 2 :]
    assert not mod_37_2.is_valid(swapped)
    assert mod37_2(swapped[:13]) != swapped[13]
    with pytest.raises(InvalidDin):
        parse_din(swapped)


# --- the accepted forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "flags"),
    [
        (f"{DIN}00{CHECK}", "00"),  # 13 + 2 flags + check (16)
        (f"A9999 26 123456 00 {CHECK}", "00"),  # as printed, with spaces
        (f"  A9999\t26 123456 00 {CHECK}\n", "00"),  # any white space
        (f"{DIN}{CHECK}", None),  # 13 + check (14)
        (f"{DIN.lower()}{CHECK.lower()}", None),  # typed in lower case: upper-cased
        (f"={DIN}00", "00"),  # bar code: = + 13 + 2 flags
        (f"={DIN}0A", "0A"),  # bar code with non-numeric flags: nothing to check
        (f"={DIN}59", "59"),  # Type 1 flags (below 60) carry no check
        (f"={DIN}97", "97"),  # 97-99 are not Type 3 flags
        (f"={DIN}{60 + ALPHABET.index(CHECK)}", str(60 + ALPHABET.index(CHECK))),  # Type 3
    ],
)
def test_a_din_is_read_in_each_accepted_form(typed, flags):
    assert parse_din(typed) == Din(din=DIN, flags=flags)


def test_type_3_flags_hold_the_check_character_as_60_plus_its_value():
    for din in (DIN, OTHER, "B999925000001", "Z999999999999", "1999900000000"):
        check = mod_37_2.calc_check_digit(din)
        assert parse_din(f"={din}{60 + ALPHABET.index(check)}").din == din


def test_the_eye_readable_form_shows_the_parts_flags_and_check():
    assert Din(DIN, "00").eye_readable == f"A9999 26 123456 00 {CHECK}"
    assert Din(DIN, None).eye_readable == f"A9999 26 123456 {CHECK}"
    assert Din(DIN, "00").as_dict() == {"din": DIN, "flags": "00", "check": CHECK}


# --- the refused inputs: each message says what is wrong -----------------------------------


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "No DIN was given."),
        ("   ", "No DIN was given."),
        (DIN, "it has 13 characters without spaces"),
        (f"{DIN}0{CHECK}", "it has 15 characters without spaces"),
        (f"{DIN}000{CHECK}", "it has 17 characters without spaces"),
        (f"O{DIN[1:]}{CHECK}", "a letter other than O, or a digit 1-9"),
        (f"0{DIN[1:]}{CHECK}", "a letter other than O, or a digit 1-9"),
        (f"AB99926123456{CHECK}", "then 4 digits"),  # a letter where a digit belongs
        (f"A9999-6123456{CHECK}", "is not a DIN"),  # a character outside the alphabet
        (f"{DIN}0-{CHECK}", "The flag characters '0-' of the DIN are not valid."),
        (f"{DIN}-", "'-' cannot be a check character."),
        (f"{DIN}00?", "'?' cannot be a check character."),
        (f"={DIN}", "is not an ISBT 128 DIN bar code (=, 13 characters and 2 flags)"),
        (f"={DIN}000", "is not an ISBT 128 DIN bar code"),
        (f"=O{DIN[1:]}00", "a letter other than O"),
        (f"={DIN}-!", "The flag characters '-!' of the DIN are not valid."),
        (f"={DIN}0*", "The flag characters '0*' of the DIN are not valid."),
        (f"={DIN}\u0666\u0660", "The flag characters '\u0666\u0660' of the DIN are not valid."),
    ],
)
def test_a_malformed_din_is_refused_saying_what_is_wrong(typed, says):
    err = refusal(typed)
    assert says in err.message
    assert isinstance(err, InvalidInput)


@pytest.mark.parametrize("wrong", WRONG_CHECKS)
def test_a_wrong_check_character_is_refused_without_revealing_the_right_one(wrong):
    for typed in (f"{DIN}{wrong}", f"{DIN}00{wrong}", f"A9999 26 123456 00 {wrong}"):
        err = refusal(typed)
        # The message is fixed by what was typed: nothing in it depends on the right character.
        assert err.message == (
            f"The check character '{wrong}' does not match DIN {DIN}: the DIN or the check "
            "character was mistyped."
        )
        assert err.what_to_do == (
            "Check the DIN for a typing error (compare it with the label), or scan the bar "
            "code instead."
        )
        assert f"'{CHECK}'" not in str(err)


@pytest.mark.parametrize("flags", [f for f in range(60, 97) if f != 60 + ALPHABET.index(CHECK)])
def test_type_3_flags_that_do_not_match_the_din_are_refused_without_revealing_the_right_ones(
    flags,
):
    err = refusal(f"={DIN}{flags}")
    assert err.message == f"The check flags '{flags}' do not match DIN {DIN}."
    assert str(60 + ALPHABET.index(CHECK)) not in str(err).replace(DIN, "")
    assert "stop and call the supervisor" in err.what_to_do


def test_the_typed_form_with_type_3_flags_checks_both_the_flags_and_the_check_character():
    good_flags = str(60 + ALPHABET.index(CHECK))
    bad_flags = "60" if good_flags != "60" else "61"
    assert parse_din(f"{DIN}{good_flags}{CHECK}").flags == good_flags
    assert "check flags" in refusal(f"{DIN}{bad_flags}{CHECK}").message


# --- the batch's identifiers -----------------------------------------------------------------


def test_a_din_identifier_is_normalised_to_its_checked_parts():
    assert normalise_identifier("isbt128_din", f"a9999 26 123456 00 {CHECK}", "DIN") == {
        "din": DIN,
        "flags": "00",
        "check": CHECK,
    }


def test_a_din_identifier_refusal_names_the_identifier_and_keeps_the_din_message():
    with pytest.raises(InvalidDin) as caught:
        normalise_identifier("isbt128_din", f"{DIN}{WRONG_CHECKS[0]}", "Apheresis DIN")
    assert caught.value.message.startswith(
        f"Apheresis DIN: The check character '{WRONG_CHECKS[0]}' does not match"
    )
    assert caught.value.what_to_do.startswith("Check the DIN for a typing error")


@pytest.mark.parametrize("kind", ["isbt128_din", "identifier", "date"])
@pytest.mark.parametrize("value", ["", "   ", None])
def test_every_kind_of_identifier_is_required(kind, value):
    with pytest.raises(InvalidInput, match=r"^Patient: a value is required"):
        normalise_identifier(kind, value, "Patient")


def test_an_identifier_is_upper_cased_without_white_space():
    assert normalise_identifier("identifier", " pat 0001\n", "Patient") == "PAT0001"


def test_an_identifier_must_have_the_form_the_recipe_expects():
    pattern = r"^PAT-\d{4}$"
    assert normalise_identifier("identifier", "pat-0001", "Patient", pattern) == "PAT-0001"
    with pytest.raises(InvalidInput) as caught:
        normalise_identifier("identifier", "PAT-01", "Patient", pattern)
    assert caught.value.message == ("Patient: 'PAT-01' does not have the form this recipe expects.")


def test_an_identifier_longer_than_100_characters_is_refused():
    assert len(normalise_identifier("identifier", "X" * 100, "Order")) == 100
    with pytest.raises(InvalidInput, match="longer than 100 characters"):
        normalise_identifier("identifier", "X" * 101, "Order")


def test_a_date_identifier_is_typed_in_the_site_order_and_kept_as_an_iso_date():
    assert normalise_identifier("date", " 1970-01-31 ", "Date of birth") == "1970-01-31"
    london = {"time_zone": "Europe/London"}
    for typed in ("31.01.1970", "31/01/1970", "31011970"):
        assert normalise_identifier("date", typed, "Date of birth", **london) == "1970-01-31"
    assert normalise_identifier(
        "date", "01/31/1970", "Date of birth", time_zone="America/Chicago"
    ) == ("1970-01-31")
    for wrong, why in (
        ("1970-02-30", "is not a date of the calendar"),
        ("yesterday", "is not a date"),
        ("31/01/70", "has a year that is not written in full"),
        ("3111970", "could be read more than one way"),
    ):
        with pytest.raises(InvalidInput) as caught:
            normalise_identifier("date", wrong, "Date of birth", **london)
        assert caught.value.message.startswith(f"Date of birth: '{wrong}' {why}")
        assert caught.value.what_to_do == "Enter a date as DD/MM/YYYY (e.g. 05/12/2026)."


def test_identity_text_shows_a_din_eye_readable_and_anything_else_as_it_is():
    assert identity_text({"din": DIN, "flags": "00", "check": CHECK}) == (
        f"A9999 26 123456 00 {CHECK}"
    )
    assert identity_text("PAT-0001") == "PAT-0001"


# --- scanning a label against the batch ------------------------------------------------------

EXPECTED_DIN = {"din": DIN, "flags": "00", "check": CHECK}


@pytest.mark.parametrize(
    "scanned",
    [
        f"={DIN}00",
        f"={DIN}{60 + ALPHABET.index(CHECK)}",  # other flags, same donation
        f"A9999 26 123456 00 {CHECK}",
        f"{DIN}{CHECK}",
        f"{DIN.lower()}{CHECK.lower()}",
    ],
)
def test_a_din_label_matches_in_any_readable_form(scanned):
    assert scan_matches("isbt128_din", EXPECTED_DIN, scanned)


@pytest.mark.parametrize(
    "scanned",
    [
        f"={OTHER}00",  # another donation
        f"{OTHER}{mod37_2(OTHER)}",
        f"{DIN}{WRONG_CHECKS[0]}",  # the right DIN mistyped: not read, so no match
        f"={DIN}60" if CHECK != "0" else f"={DIN}61",  # Type 3 flags that disagree
        "PAT-0001",
        "",
    ],
)
def test_a_din_label_that_is_another_donation_or_unreadable_does_not_match(scanned):
    assert not scan_matches("isbt128_din", EXPECTED_DIN, scanned)


def test_an_identifier_label_matches_ignoring_case_and_white_space():
    assert scan_matches("identifier", "PAT-0001", " pat-0001 ")
    assert scan_matches("identifier", "PAT-0001", "PAT -0001")
    assert not scan_matches("identifier", "PAT-0001", "PAT-0002")
    assert not scan_matches("identifier", "PAT-0001", "")


def test_a_date_label_matches_only_the_same_iso_date():
    assert scan_matches("date", "1970-01-31", " 1970-01-31 ")
    assert not scan_matches("date", "1970-01-31", "31.01.1970")
    assert not scan_matches("date", "1970-01-31", "1970-01-30")
