"""Badges and PINs: the second way to identify and authenticate (21 CFR 11.200(a)(1), 11.300).

A badge is the identification code (a card a keyboard-wedge scanner reads); the PIN is the
password that goes with it. Two distinct components, as 11.200(a)(1) asks, the PIN private to
its holder. The rules here are the PIN's counterpart of :mod:`mes.core.passwords`: 6–8 digits,
not a common or guessable PIN, not one of the last five, the same expiry as passwords and the
same argon2id parameters. A wrong PIN counts toward the same lockout as a wrong password
(11.300(d)): the services count both in one counter.

The badge code itself is never stored: only its SHA-256 (:func:`badge_digest`), which finds the
badge a scan names, and a short hint (:func:`badge_hint`) an administrator recognises it by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime
from itertools import pairwise

from mes.core.errors import InvalidInput, WeakPassword
from mes.core.passwords import (
    PasswordPolicy,
    hash_password,
    password_expired,
    password_matches,
    reused,
)

PIN_MIN_LENGTH = 6
PIN_MAX_LENGTH = 8
BADGE_MIN_LENGTH = 4
BADGE_MAX_LENGTH = 128
HINT_LENGTH = 4
BADGE_LOGIN_REFUSED = "Badge or PIN not accepted, or the account is locked."
WRONG_PIN = "The PIN is wrong."

# The PINs people choose most (published analyses of leaked PIN sets), beyond the patterns
# :func:`_guessable` refuses (one digit repeated, runs up or down, two digits alternating).
COMMON_PINS = frozenset(
    {
        "123123", "123321", "112233", "121212", "131313", "159753", "147258", "147852",
        "258456", "696969", "666666", "777777", "888888", "999999", "102030", "101010",
        "202020", "252525", "520520", "123654", "124578", "159357", "789456", "456123",
        "654321", "111222", "112211", "123412", "12341234", "11223344", "12121212",
        "87654321", "12344321", "11112222", "19841984", "20002000", "20202020", "69696969",
        "00000000", "99999999", "1234567", "7654321", "123456", "12345678", "246810",
        "135790", "000001", "100000", "010101", "111000", "000111", "123000", "007007",
        "314159", "271828",
    }
)  # fmt: skip


def _runs(pin: str, step: int) -> bool:
    return all((int(b) - int(a)) % 10 == step % 10 for a, b in pairwise(pin))


def _guessable(pin: str) -> bool:
    """The PINs an attacker tries first.

    One digit repeated, a run up or down (wrapping 9→0), two digits alternating, or a repeated
    half (``123123``).
    """
    half = len(pin) // 2
    return (
        len(set(pin)) == 1
        or _runs(pin, 1)
        or _runs(pin, -1)
        or (len(set(pin[0::2])) == 1 and len(set(pin[1::2])) == 1)
        or (len(pin) % 2 == 0 and pin[:half] == pin[half:])
    )


def _is_date(day: str, month: str, year: str) -> bool:
    try:
        date(int(year) if len(year) == 4 else 2000 + int(year), int(month), int(day))
    except ValueError:
        return False
    return len(year) == 2 or 1900 <= int(year) <= 2099


def _date_like(pin: str) -> bool:
    """A date as people write a birthday.

    Day-month-year, month-day-year or year-month-day, with a two-digit year (6 digits) or a
    four-digit year from 1900 to 2099 (8 digits).
    """
    if len(pin) == 6:
        a, b, c = pin[:2], pin[2:4], pin[4:]
        return _is_date(a, b, c) or _is_date(b, a, c) or _is_date(c, b, a)
    if len(pin) == 8:
        return (
            _is_date(pin[:2], pin[2:4], pin[4:])
            or _is_date(pin[2:4], pin[:2], pin[4:])
            or _is_date(pin[6:], pin[4:6], pin[:4])
        )
    return False


def check_new_pin(
    pin: str, previous_hashes: Iterable[str] = (), policy: PasswordPolicy | None = None
) -> None:
    """Refuse a new PIN with every rule it breaks listed (raises :class:`WeakPassword`).

    21 CFR 11.300(b): 6 to 8 digits, not a common or guessable PIN, not a date, not one of the last
    ``policy.history_depth`` PINs (the same depth as passwords).
    """
    policy = policy or PasswordPolicy()
    reasons: list[str] = []
    if not (pin.isascii() and pin.isdigit()):
        reasons.append("it must be digits only (0–9)")
    elif not PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH:
        reasons.append(
            f"it must be {PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits (it has {len(pin)})"
        )
    elif pin in COMMON_PINS or _guessable(pin):
        reasons.append("it is a common or easily guessed PIN (repeated digits, a run, a pattern)")
    elif _date_like(pin):
        reasons.append("it reads as a date (a birthday is the first thing tried)")
    if not reasons and reused(pin, previous_hashes, policy):
        reasons.append(f"it was one of your last {policy.history_depth} PINs")
    if reasons:
        raise WeakPassword(reasons, subject="PIN")


def hash_pin(pin: str) -> str:
    """argon2id hash of a PIN, with exactly the parameters of passwords."""
    return hash_password(pin)


def pin_matches(stored_hash: str | None, pin: str) -> bool:
    """True when ``pin`` is the one ``stored_hash`` was made from (no PIN set: never)."""
    return stored_hash is not None and password_matches(stored_hash, pin)


def pin_expired(changed_at: datetime | None, at: datetime, policy: PasswordPolicy) -> bool:
    """A PIN expires as a password does: after the site's ``expiry_days`` (11.300(b))."""
    return changed_at is not None and password_expired(changed_at, at, policy)


def normalise_badge(code: str) -> str:
    """The badge code as scanned, without the surrounding spaces or the scanner's line end.

    Refuses an empty, too short or too long code, or one with control characters, naming what
    is wrong (:class:`InvalidInput`).
    """
    code = (code or "").strip()
    if not BADGE_MIN_LENGTH <= len(code) <= BADGE_MAX_LENGTH or not code.isprintable():
        raise InvalidInput(
            f"A badge code is {BADGE_MIN_LENGTH} to {BADGE_MAX_LENGTH} printable characters "
            "on one line.",
            what_to_do="Scan the badge again (into the badge field, nothing else).",
        )
    return code


def badge_digest(code: str) -> str:
    """The SHA-256 (hex) of a badge code as stored: the code itself never is (11.300(a))."""
    return hashlib.sha256(normalise_badge(code).encode()).hexdigest()


def badge_hint(code: str) -> str:
    """The last characters of the code, for the administration page to tell badges apart."""
    return "…" + normalise_badge(code)[-HINT_LENGTH:]
