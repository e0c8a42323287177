"""Refused anonymous attempts, counted per source and window (21 CFR 11.300(d); Annex 11 §12).

Anyone can send a login, a spoke enrollment or a sync request before anything proves who they
are, and as fast as they like. Recording every refusal in full would let a stranger fill the
append-only, signed audit trail and sync log; recording none would hide an attack. So refusals
are counted per source address in fixed windows (:data:`WINDOW`): the first refusal of a window
is recorded in full, the window's count is recorded once when it closes (one entry per burst:
"12 refused enrollment attempts from 10.0.0.5 in 60 s"), and a source refused
:data:`LIMITS` times within its window is turned away (HTTP 429) until the window ends.

Plain rules over plain values; the time is passed in.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

WINDOW = timedelta(seconds=60)
UNKNOWN_SOURCE = "unknown"
# A window keeps its count by reason for this many distinct reasons (of this many characters);
# the rest are counted as "other": what a stranger sends cannot make the counter grow.
MAX_REASONS = 8
REASON_LENGTH = 120
OTHER = "other"
TURNED_AWAY = "turned away (too many attempts)"


class Attempt(StrEnum):
    """What an anonymous source attempted."""

    LOGIN = "login"
    ENROLLMENT = "enrollment"
    SYNC_REQUEST = "sync request"


# Refusals a source may collect in one window before it is turned away (None: never turned away,
# only counted; a spoke whose requests are refused must keep hearing why).
LIMITS: dict[Attempt, int | None] = {
    Attempt.LOGIN: 10,
    Attempt.ENROLLMENT: 10,
    Attempt.SYNC_REQUEST: None,
}
WORDS = {
    Attempt.LOGIN: "refused login attempts",
    Attempt.ENROLLMENT: "refused enrollment attempts",
    Attempt.SYNC_REQUEST: "refused sync requests",
}


@dataclass(frozen=True)
class Window:
    """One source's refusals of one kind since ``started`` (``reasons``: count by true reason)."""

    started: datetime
    refused: int
    turned_away: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)

    def is_open(self, at: datetime) -> bool:
        """True while ``at`` falls within the window."""
        return at < self.started + WINDOW

    @property
    def ends(self) -> datetime:
        """When the window closes."""
        return self.started + WINDOW


def source_of(address: str | None) -> str:
    """The source a request is counted under: an IPv4 address, or an IPv6 address's /64.

    One host commonly holds a whole IPv6 /64, so counting single IPv6 addresses would let it
    start a fresh window with every request. The address is the connection's peer (or what the
    configured, trusted reverse proxies say it is), never a header the client chose.
    """
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return UNKNOWN_SOURCE
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def retry_after(attempt: Attempt, window: Window | None, at: datetime) -> int | None:
    """Seconds the source must wait before it is heard again, or None if it may try now."""
    limit = LIMITS[attempt]
    if limit is None or window is None or not window.is_open(at) or window.refused < limit:
        return None
    return max(1, math.ceil((window.ends - at).total_seconds()))


def reason_key(reason: str) -> str:
    """The reason as a window counts it (cut to :data:`REASON_LENGTH`)."""
    return reason[:REASON_LENGTH]


def counted(
    window: Window | None, at: datetime, reason: str, *, turned_away: bool = False
) -> tuple[Window, Window | None]:
    """The window after one more refusal at ``at``, and the closed window to summarise, if any.

    A refusal after the window closed opens a new one (and is the first of it: recorded in
    full). A closed window needs a summary only when it held more than its first refusal.
    """
    reason = reason_key(reason)
    if window is not None and window.is_open(at):
        reasons = dict(window.reasons)
        if reason not in reasons and len(reasons) >= MAX_REASONS:
            reason = OTHER
        reasons[reason] = reasons.get(reason, 0) + 1
        return (
            Window(window.started, window.refused + 1, window.turned_away + turned_away, reasons),
            None,
        )
    closed = window if window is not None and needs_summary(window) else None
    return Window(at, 1, int(turned_away), {reason: 1}), closed


def needs_summary(window: Window) -> bool:
    """A window's first refusal is recorded in full; only the ones after it need counting."""
    return window.refused > 1


def summary(attempt: Attempt, source: str, window: Window) -> str:
    """The burst in words: '12 refused enrollment attempts from 10.0.0.5 in 60 s'."""
    seconds = int(WINDOW.total_seconds())
    text = f"{window.refused} {WORDS[attempt]} from {source} in {seconds} s"
    if window.turned_away:
        text += f" ({window.turned_away} turned away as too many)"
    return text


def turned_away_message(attempt: Attempt, wait: int) -> tuple[str, str]:
    """The words of a 429: what happened and when to try again."""
    return (
        f"Too many refused {attempt.value} attempts from this address.",
        f"Wait {wait} seconds and try again; if you are locked out, ask an administrator.",
    )
