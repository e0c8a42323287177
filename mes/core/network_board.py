"""The hub's live board of the network: when a spoke is overdue, and how far the hub lags.

A spoke's sync client asks the hub every few seconds (``sync_interval_seconds``, 2 s by default),
even with nothing to send: each signed request is its contact. A spoke the hub has not heard
from for longer than :data:`EXPECTED_CONTACT` is flagged (one that syncs only by transfer file
is flagged too: the board cannot know more about it than the file brought). The hub's copy of a
batch lags the spoke by the time between the newest entry it holds being recorded and being
received. Plain words; time is an argument.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mes.core.chronology import duration
from mes.core.site import SpokeStatus


def span(delta: timedelta) -> str:
    """A length of time as the board says it: 40 s, 3 min, 5 h 3 min, 13 days."""
    seconds = int(abs(delta).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return duration(delta)


EXPECTED_CONTACT = timedelta(minutes=1)
"""How long the hub waits to hear from an active spoke before the board flags it (30 rounds of
the default 2 s sync interval: a spoke that misses them is off the network, not just slow)."""

EXPECTED_CONTACT_WORDS = (
    "A spoke's sync client asks the hub every few seconds (every 2 s by default), even with "
    f"nothing to send. An active spoke not heard from for over {span(EXPECTED_CONTACT)} "
    "is flagged: it is off the network or its sync has stopped."
)


def overdue(status: str, last_seen_at: datetime | None, now: datetime) -> bool:
    """Whether an active spoke has not been heard from within :data:`EXPECTED_CONTACT`.

    A spoke never heard from since it enrolled counts as overdue; one awaiting enrollment,
    suspended or revoked is not expected to call.
    """
    if status != SpokeStatus.ACTIVE:
        return False
    return last_seen_at is None or now - last_seen_at > EXPECTED_CONTACT


def contact_words(status: str, last_seen_at: datetime | None, now: datetime) -> str:
    """How long ago the hub last heard from the spoke: "4 s ago", "no contact: 12 min ago".

    "no contact" when it is overdue; "never since it enrolled" for an active spoke never heard
    from.
    """
    if last_seen_at is None:
        return "never since it enrolled" if status == SpokeStatus.ACTIVE else "not expected"
    since = now - last_seen_at
    words = "just now" if since < timedelta(seconds=1) else f"{span(since)} ago"
    return f"no contact: {words}" if overdue(status, last_seen_at, now) else words


def lag_words(recorded_at: datetime, received_at: datetime | None) -> str:
    """How far the hub's copy lags: "received 3 min after it was recorded".

    An entry received "before" it was recorded is the spoke's clock running ahead of the hub's.
    """
    if received_at is None:
        return "not received yet"
    lag = received_at - recorded_at
    if abs(lag) < timedelta(seconds=1):
        return "received within a second of being recorded"
    if lag < timedelta(0):
        return f"received {span(lag)} before it was recorded (the spoke's clock is ahead)"
    return f"received {span(lag)} after it was recorded"


def lagging(recorded_at: datetime, received_at: datetime | None) -> bool:
    """Whether the hub's copy came later than a spoke in contact would send it."""
    return received_at is not None and received_at - recorded_at > EXPECTED_CONTACT


def timer_words(at: datetime | None, now: datetime) -> str:
    """When the next timer of the batch is due: "in 12 min", "3 min ago", "none"."""
    if at is None:
        return "none"
    if abs(at - now) < timedelta(seconds=1):
        return "now"
    return f"in {span(at - now)}" if at > now else f"{span(now - at)} ago"


def as_typed(value: str, most: int = 40) -> str:
    """A refused filter value as a message echoes it: ``most`` characters, unprintable as "?"."""
    shown = "".join(c if c.isprintable() else "?" for c in value[:most])
    return shown + ("…" if len(value) > most else "")
