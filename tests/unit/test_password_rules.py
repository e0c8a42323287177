"""Password rules (21 CFR 11.300(b), OWASP ASVS 2.1): length, user ID, common passwords,
repeats, history of the last five, expiry; argon2id hashing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mes.core.errors import WeakPassword
from mes.core.passwords import (
    PasswordPolicy,
    check_new_password,
    hash_password,
    password_expired,
    password_matches,
    temporary_password,
)

GOOD = "correct-Horse-7-battery"
CHANGED_AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def refusal(username: str, password: str, previous: list[str] | None = None) -> WeakPassword:
    with pytest.raises(WeakPassword) as caught:
        check_new_password(username, password, previous or [])
    return caught.value


def test_a_long_uncommon_password_is_accepted():
    check_new_password("alice", GOOD)


def test_a_password_shorter_than_twelve_characters_is_refused():
    error = refusal("alice", "Tr7!kq-Zp2x")
    assert error.reasons == ["it must be at least 12 characters long (it has 11)"]


def test_a_password_of_exactly_twelve_characters_is_long_enough():
    check_new_password("alice", "Tr7!kq-Zp2xw")


def test_a_password_longer_than_256_characters_is_refused():
    error = refusal("alice", "Tr7!kq-Zp2xw" * 22)
    assert any("at most 256" in r for r in error.reasons)


@pytest.mark.parametrize("password", ["alice-likes-Cells-7", "my-ALICE-Password-7", "xxAlicexx9!Q"])
def test_a_password_containing_the_user_id_is_refused_in_any_case(password):
    error = refusal("alice", password)
    assert "it must not contain the user ID" in error.reasons


@pytest.mark.parametrize(
    "password",
    [
        "Password2026!",
        "PASSWORD2026#",
        "password12345",
        "Welcome2026!!",
        "letmein-2024-!",
        "qwertyuiop123",
        "correcthorsebatterystaple",
        "CorrectHorseBatteryStaple",
    ],
)
def test_a_common_password_is_refused_even_with_digits_and_symbols_appended(password):
    error = refusal("alice", password)
    assert "it is a commonly used password" in error.reasons


@pytest.mark.parametrize("password", ["abababababab", "zzzzzzzzzzzzzzz", "1212121212121"])
def test_a_password_of_one_or_two_repeated_characters_is_refused(password):
    error = refusal("alice", password)
    assert "it repeats one or two characters" in error.reasons


def test_every_broken_rule_is_listed_at_once():
    error = refusal("alice", "alice1")
    assert len(error.reasons) == 2
    assert "at least 12" in str(error)
    assert "user ID" in str(error)
    assert error.what_to_do == "Choose another password."


@pytest.fixture(scope="module")
def six_previous() -> tuple[list[str], list[str]]:
    """Six earlier passwords, newest first, and their hashes in the same order."""
    passwords = [f"earlier-Secret-{n}-quartz" for n in range(6, 0, -1)]
    return passwords, [hash_password(p) for p in passwords]


@pytest.mark.parametrize("position", range(5))
def test_any_of_the_last_five_passwords_is_refused(six_previous, position):
    passwords, hashes = six_previous
    error = refusal("alice", passwords[position], hashes)
    assert error.reasons == ["it was one of your last 5 passwords"]


def test_the_sixth_most_recent_password_may_be_used_again(six_previous):
    passwords, hashes = six_previous
    check_new_password("alice", passwords[5], hashes)


def test_the_history_depth_follows_the_policy(six_previous):
    passwords, hashes = six_previous
    policy = PasswordPolicy(history_depth=2)
    with pytest.raises(WeakPassword):
        check_new_password("alice", passwords[1], hashes, policy)
    check_new_password("alice", passwords[2], hashes, policy)


def test_a_stored_hash_matches_only_its_password():
    stored = hash_password(GOOD)
    assert stored.startswith("$argon2id$")
    assert GOOD not in stored
    assert password_matches(stored, GOOD)
    assert not password_matches(stored, GOOD.upper())
    assert not password_matches("not a hash", GOOD)


def test_the_same_password_hashes_differently_each_time():
    assert hash_password(GOOD) != hash_password(GOOD)


def test_without_an_expiry_policy_a_password_never_expires():
    assert not password_expired(CHANGED_AT, CHANGED_AT + timedelta(days=3650), PasswordPolicy())


def test_a_password_expires_after_the_configured_days():
    policy = PasswordPolicy(expiry_days=90)
    assert not password_expired(CHANGED_AT, CHANGED_AT + timedelta(days=90), policy)
    assert password_expired(CHANGED_AT, CHANGED_AT + timedelta(days=90, seconds=1), policy)
    assert password_expired(CHANGED_AT, CHANGED_AT + timedelta(days=91), policy)


def test_password_expiry_compares_instants_not_wall_clocks():
    policy = PasswordPolicy(expiry_days=1)
    new_york = ZoneInfo("America/New_York")
    assert not password_expired(
        CHANGED_AT, (CHANGED_AT + timedelta(hours=23)).astimezone(new_york), policy
    )
    assert password_expired(
        CHANGED_AT, (CHANGED_AT + timedelta(hours=25)).astimezone(new_york), policy
    )


def test_a_temporary_password_meets_the_policy_and_is_never_repeated():
    first, second = temporary_password(), temporary_password()
    assert first != second
    check_new_password("alice", first)
    check_new_password("alice", second)
