"""UTC instants as they are stored, hashed and shown. The core never reads the clock itself."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def as_utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already (as stored)."""
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def utc_text(at: datetime) -> str:
    """ISO 8601 UTC text with microseconds, e.g. ``2026-11-21T09:30:00.000000Z``."""
    return as_utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc_text(text: str) -> datetime:
    """Inverse of :func:`utc_text`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def local_text(at: datetime, time_zone: str) -> str:
    """The instant as people at the site read it, with the zone: ``2026-11-21 10:30:00 CET``."""
    local = as_utc(at).astimezone(ZoneInfo(time_zone))
    return local.strftime("%Y-%m-%d %H:%M:%S %Z")
