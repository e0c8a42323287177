"""Password rules (21 CFR 11.300(b), OWASP ASVS 2.1) and argon2id hashing.

Rules: at least 12 characters, not containing the user ID, not a common password, not one of
the last five used; optional expiry. Hashes are argon2id with OWASP's parameters
(19 MiB memory, 2 iterations, 1 lane).
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mes.core.clock import as_utc
from mes.core.common_passwords import COMMON_PASSWORDS
from mes.core.errors import WeakPassword

MIN_LENGTH = 12
TEMPORARY_PASSWORD_HOURS = 72
MAX_LENGTH = 256
HISTORY_DEPTH = 5

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass(frozen=True)
class PasswordPolicy:
    """The site's password policy; expiry is off unless ``expiry_days`` is set."""

    expiry_days: int | None = None
    history_depth: int = HISTORY_DEPTH


def hash_password(password: str) -> str:
    """argon2id hash in PHC string format."""
    return _HASHER.hash(password)


@functools.cache
def stand_in_hash() -> str:
    """A hash of a random, unknowable password, made with the same parameters as every other.

    A login with an unknown user ID is checked against it, so that it costs the same argon2
    work as a known user's wrong password and its answer time tells nothing (no enumeration).
    """
    return _HASHER.hash(secrets.token_urlsafe(32))


def password_matches(stored_hash: str, password: str) -> bool:
    """True when ``password`` is the one ``stored_hash`` was made from."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def reused(secret: str, previous_hashes: Iterable[str], policy: PasswordPolicy) -> bool:
    """True when ``secret`` is one of the last ``policy.history_depth`` (newest first) hashed.

    The history rule of passwords and PINs alike (11.300(b)): one argon2 check per hash kept.
    """
    recent = list(previous_hashes)[: policy.history_depth]
    return any(password_matches(h, secret) for h in recent)


def _letters_before_trailing_digits(password: str) -> str:
    return re.sub(r"[\d\W_]+$", "", password.lower())


def check_new_password(
    username: str,
    password: str,
    previous_hashes: Iterable[str] = (),
    policy: PasswordPolicy | None = None,
) -> None:
    """Refuse a new password with every rule it breaks listed (raises :class:`WeakPassword`)."""
    policy = policy or PasswordPolicy()
    reasons: list[str] = []
    if len(password) < MIN_LENGTH:
        reasons.append(f"it must be at least {MIN_LENGTH} characters long (it has {len(password)})")
    if len(password) > MAX_LENGTH:
        reasons.append(f"it must be at most {MAX_LENGTH} characters long")
    if username and username.lower() in password.lower():
        reasons.append("it must not contain the user ID")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or _letters_before_trailing_digits(password) in COMMON_PASSWORDS:
        reasons.append("it is a commonly used password")
    elif len(set(lowered)) <= 2:
        reasons.append("it repeats one or two characters")
    if not reasons and reused(password, previous_hashes, policy):
        reasons.append(f"it was one of your last {policy.history_depth} passwords")
    if reasons:
        raise WeakPassword(reasons)


def password_expired(changed_at: datetime, at: datetime, policy: PasswordPolicy) -> bool:
    """True when the policy has an expiry and the password is older than it."""
    if not policy.expiry_days:
        return False
    return as_utc(at) - as_utc(changed_at) > timedelta(days=policy.expiry_days)


def temporary_password_expired(set_at: datetime, at: datetime) -> bool:
    """A one-time password from an administrator's reset is good for 72 hours (11.300(b))."""
    return as_utc(at) - as_utc(set_at) > timedelta(hours=TEMPORARY_PASSWORD_HOURS)


def must_change_password(
    flagged: bool, changed_at: datetime, at: datetime, policy: PasswordPolicy
) -> bool:
    """The user must choose a new password: after an administrator's reset, or at expiry."""
    return flagged or password_expired(changed_at, at, policy)


def temporary_password() -> str:
    """A random one-time password for an administrator's reset; it must be changed at login."""
    return "-".join(secrets.token_urlsafe(5) for _ in range(4))
