"""Training records (21 CFR 11.10(i)): who is qualified for which procedure, and until when.

Records are never edited: a later record for the same user and procedure (a renewal, or a
withdrawal) supersedes the earlier one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from mes.core.clock import as_utc
from mes.core.errors import InvalidInput


@dataclass(frozen=True)
class TrainingRecord:
    """A qualification (or, with ``withdrawn``, its withdrawal) recorded at ``recorded_at``."""

    procedure: str
    qualified_on: date
    expires_on: date | None
    withdrawn: bool
    recorded_at: datetime


def check_training_dates(qualified_on: date, expires_on: date | None) -> None:
    """A qualification cannot expire before it starts."""
    if expires_on is not None and expires_on < qualified_on:
        raise InvalidInput(
            f"The expiry date {expires_on} is before the qualification date {qualified_on}.",
            what_to_do="Enter an expiry date on or after the qualification date.",
        )


def is_qualified(
    records: Iterable[TrainingRecord], procedure: str, at: datetime, time_zone: str = "UTC"
) -> bool:
    """True when the newest record for ``procedure`` qualifies the user on the site's date at ``at``.

    ``records`` are in the order they were recorded.

    Dates are the site's calendar dates: qualified from ``qualified_on`` through ``expires_on``.
    """
    relevant = [r for r in records if r.procedure == procedure]
    if not relevant:
        return False
    # Records come oldest first; sorted() is stable, so of two made at the same instant the one
    # given later (recorded later) decides.
    latest = sorted(relevant, key=lambda r: as_utc(r.recorded_at))[-1]
    if latest.withdrawn:
        return False
    today = as_utc(at).astimezone(ZoneInfo(time_zone)).date()
    if today < latest.qualified_on:
        return False
    return latest.expires_on is None or today <= latest.expires_on
