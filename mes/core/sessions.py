"""The rules of a logged-in session: when it locks, when it ends (21 CFR 11.10(d), 11.200(a)(1)).

A session is judged on the server by the times it keeps: it locks after the site's inactivity
timeout (the password brings the user back), and it ends for good at its absolute lifetime,
however active it is (the user logs in again). The session's ID is a random secret of 256 bits
held only by the browser; the server keeps only its SHA-256, so a reader of the database cannot
take over a session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mes.core.clock import as_utc

TOKEN_BYTES = 32  # 256 random bits; guessing needs far more than the 128 bits asked for
# "Last seen" is written at most once in this share of the timeout: a session may lock up to
# 1/60 of the timeout early (5 s of 300 s), never late; most requests then only read.
TOUCH_SHARE = 60


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session may stay idle before it locks, and how long it may live at all."""

    idle_timeout: timedelta
    lifetime: timedelta

    @property
    def touch_interval(self) -> timedelta:
        """How old "last seen" may get before a request writes it again."""
        return self.idle_timeout / TOUCH_SHARE


class SessionState(StrEnum):
    """What a session is at a given time."""

    OPEN = "open"
    LOCKED = "locked"  # the password brings the same user back (inactivity or the lock button)
    EXPIRED = "expired"  # over for good: log in again


def new_session_token() -> str:
    """A fresh session ID for the browser's cookie (URL-safe text, 256 random bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What the server stores of a session ID: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_state(
    *,
    created_at: datetime,
    last_seen_at: datetime,
    locked: bool,
    now: datetime,
    policy: SessionPolicy,
) -> SessionState:
    """The session's state at ``now``.

    11.10(d): past its absolute lifetime a session is over, even if it was used a second ago;
    idle for longer than the timeout it is locked, even if no request came to lock it.
    """
    now = as_utc(now)
    if now - as_utc(created_at) > policy.lifetime:
        return SessionState.EXPIRED
    if locked or now - as_utc(last_seen_at) > policy.idle_timeout:
        return SessionState.LOCKED
    return SessionState.OPEN


def needs_touch(last_seen_at: datetime, now: datetime, policy: SessionPolicy) -> bool:
    """Whether the user's activity at ``now`` must be written as the session's last sight."""
    return as_utc(now) - as_utc(last_seen_at) >= policy.touch_interval
