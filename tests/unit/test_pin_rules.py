"""PIN and badge rules (21 CFR 11.200(a)(1), 11.300(a)-(b)): the core's one home for them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from mes.core.errors import InvalidInput, WeakPassword
from mes.core.passwords import PasswordPolicy, hash_password
from mes.core.pins import (
    badge_digest,
    badge_hint,
    check_new_pin,
    hash_pin,
    pin_expired,
    pin_matches,
)

AT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("pin", ["483920", "7391468", "52841963"])
def test_a_pin_of_six_to_eight_digits_that_is_no_pattern_is_accepted(pin):
    check_new_pin(pin)


@pytest.mark.parametrize(
    ("pin", "words"),
    [
        ("48392", "6 to 8 digits (it has 5)"),
        ("483920157", "6 to 8 digits (it has 9)"),
        ("48a920", "digits only"),
        ("\uff14\uff18\uff13\uff19\uff12\uff10", "digits only"),  # full-width digits: not ASCII
        ("", "digits only"),
    ],
)
def test_a_pin_that_is_not_six_to_eight_ascii_digits_is_refused(pin, words):
    with pytest.raises(WeakPassword, match=re.escape(words)) as refused:
        check_new_pin(pin)
    assert str(refused.value).startswith("The PIN is not acceptable")
    assert "Choose another PIN." in str(refused.value)


@pytest.mark.parametrize(
    "pin",
    ["123456", "000000", "111111", "999999", "12345678", "654321", "87654321", "121212",
     "909090", "901234", "123123", "112233", "159753", "246810"],
)  # fmt: skip
def test_common_and_patterned_pins_are_refused(pin):
    with pytest.raises(WeakPassword, match="common or easily guessed"):
        check_new_pin(pin)


@pytest.mark.parametrize("pin", ["120585", "310199", "850512", "19850512", "31121999", "07041976"])
def test_a_pin_that_reads_as_a_birthday_is_refused(pin):
    with pytest.raises(WeakPassword, match="reads as a date"):
        check_new_pin(pin)


def test_one_of_the_last_five_pins_is_refused_but_an_older_one_is_not():
    earlier = [hash_pin(p) for p in ("483920", "739146", "528419", "604713", "815372", "927461")]
    policy = PasswordPolicy(history_depth=5)
    with pytest.raises(WeakPassword, match="one of your last 5 PINs"):
        check_new_pin("815372", earlier, policy)
    check_new_pin("927461", earlier, policy)  # the sixth newest: no longer remembered


def test_a_pin_is_hashed_with_the_password_parameters_and_checked():
    stored = hash_pin("483920")
    assert stored.split("$")[1:4] == hash_password("x").split("$")[1:4]  # argon2id, v, m/t/p
    assert stored.startswith("$argon2id$")
    assert pin_matches(stored, "483920")
    assert not pin_matches(stored, "483921")
    assert not pin_matches(None, "483920")


def test_a_pin_expires_as_a_password_does():
    policy = PasswordPolicy(expiry_days=90)
    assert not pin_expired(AT, AT + timedelta(days=90), policy)
    assert pin_expired(AT, AT + timedelta(days=91), policy)
    assert not pin_expired(AT, AT + timedelta(days=900), PasswordPolicy())
    assert not pin_expired(None, AT, policy)


def test_a_badge_is_kept_as_its_sha256_and_shown_by_its_last_characters():
    assert badge_digest(" BADGE-10005\r\n") == badge_digest("BADGE-10005")
    assert len(badge_digest("BADGE-10005")) == 64
    assert "BADGE" not in badge_digest("BADGE-10005")
    assert badge_hint("BADGE-10005") == "…0005"


@pytest.mark.parametrize("code", ["", "   ", "abc", "BADGE\x0010005", "x" * 129])
def test_a_badge_code_that_is_empty_short_long_or_has_control_characters_is_refused(code):
    with pytest.raises(InvalidInput, match="Scan the badge again"):
        badge_digest(code)
