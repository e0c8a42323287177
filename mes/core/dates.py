"""Dates and times as people at a site type and read them: the site's order, a 24-hour clock.

Every date or date and time typed at a terminal is read here, once: the server parses what is
posted with these functions, and the page's script only helps to type (its "Now" button).

A typed date is read in the site's order: day first (05/12/2026 is 5 December 2026) except in
the time zones of the United States, where the month comes first. The order follows the site's
configured time zone, so a site needs no second setting that could disagree with it. ISO 8601
(2026-12-05, year first) is read everywhere. What could be read two ways is refused, with what
to type instead: a year of two digits, a run of digits whose length does not say where the day
ends, a 12-hour time ("2:30 pm"), a local time the clocks skip or pass twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from mes.core.errors import InvalidInput


class DateOrder(StrEnum):
    """The order of day and month in a date typed at the site (the year is always written last)."""

    DAY_FIRST = "DD/MM/YYYY"
    MONTH_FIRST = "MM/DD/YYYY"


# The IANA zones of the United States (and its territories), where dates are written month first.
MONTH_FIRST_ZONES = frozenset(
    {
        "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
        "America/Los_Angeles", "America/Anchorage", "America/Juneau", "America/Sitka",
        "America/Yakutat", "America/Nome", "America/Metlakatla", "America/Adak",
        "America/Boise", "America/Detroit", "America/Menominee",
        "America/Indiana/Indianapolis", "America/Indiana/Knox", "America/Indiana/Marengo",
        "America/Indiana/Petersburg", "America/Indiana/Tell_City", "America/Indiana/Vevay",
        "America/Indiana/Vincennes", "America/Indiana/Winamac",
        "America/Kentucky/Louisville", "America/Kentucky/Monticello",
        "America/North_Dakota/Beulah", "America/North_Dakota/Center",
        "America/North_Dakota/New_Salem", "America/Puerto_Rico", "Pacific/Honolulu",
        "Pacific/Guam", "Pacific/Pago_Pago", "Pacific/Saipan", "US/Eastern", "US/Central",
        "US/Mountain", "US/Pacific", "US/Alaska", "US/Hawaii", "US/Arizona",
    }
)  # fmt: skip


class DateNotUnderstood(InvalidInput):
    """A typed date or time that does not name one moment; nothing was recorded."""

    http_status = 422


def date_order(time_zone: str) -> DateOrder:
    """Day or month first, as the site writes dates (from its time zone)."""
    return DateOrder.MONTH_FIRST if time_zone in MONTH_FIRST_ZONES else DateOrder.DAY_FIRST


def date_pattern(time_zone: str) -> str:
    """What a date field asks for: ``DD/MM/YYYY`` (or ``MM/DD/YYYY`` where month comes first)."""
    return date_order(time_zone).value


def date_time_pattern(time_zone: str) -> str:
    """What a date and time field asks for: ``DD/MM/YYYY HH:MM`` (24-hour clock)."""
    return f"{date_order(time_zone).value} HH:MM"


def local_date_text(day: date, time_zone: str) -> str:
    """A date as the site writes it: ``05/12/2026``."""
    if date_order(time_zone) is DateOrder.MONTH_FIRST:
        return day.strftime("%m/%d/%Y")
    return day.strftime("%d/%m/%Y")


def site_date_text(day: date | datetime | str, time_zone: str) -> str:
    """A day as the site writes it, from a date, an instant or ISO text: ``01/06/2026``.

    An instant gives its day in ``time_zone``.
    """
    if isinstance(day, str):
        text = day.strip().replace("Z", "+00:00")
        day = (
            datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        )
    if isinstance(day, datetime):
        day = (day.astimezone(ZoneInfo(time_zone)) if day.tzinfo else day).date()
    return local_date_text(day, time_zone)


def local_date_time_text(moment: datetime, time_zone: str) -> str:
    """An instant as the site's field shows it: ``05/12/2026 14:30`` in the site's time zone."""
    local = moment.astimezone(ZoneInfo(time_zone)) if moment.tzinfo else moment
    return f"{local_date_text(local.date(), time_zone)} {local:%H:%M}"


@dataclass(frozen=True)
class _Day:
    year: int
    month: int
    day: int


_SEPARATED = re.compile(r"^(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})$")
_DIGITS = re.compile(r"^\d+$")
_TIME = re.compile(r"^(\d{1,2})[:.h](\d{2})(?::(\d{2}))?$")
_TWELVE_HOUR = re.compile(r"(?i)\b[ap]\.?\s?m\.?$|\d\s*[ap]\.?m?\.?$")
_OFFSET = re.compile(r"(?i)(z|[+-]\d{2}:?\d{2})$")


def _example(time_zone: str, with_time: bool) -> str:
    sample = local_date_time_text(datetime(2026, 12, 5, 14, 30), time_zone)
    return sample if with_time else sample.split(" ")[0]


def _refuse(label: str, text: str, why: str, time_zone: str, with_time: bool) -> DateNotUnderstood:
    pattern = date_time_pattern(time_zone) if with_time else date_pattern(time_zone)
    what = "a date and time" if with_time else "a date"
    return DateNotUnderstood(
        f"{label}: '{text[:40]}' {why}.",
        what_to_do=f"Enter {what} as {pattern} (e.g. {_example(time_zone, with_time)})"
        + (", on the 24-hour clock, in site time." if with_time else "."),
    )


def _day(label: str, text: str, part: str, time_zone: str, with_time: bool) -> date:
    """The date ``part`` of ``text`` (ISO year first, or in the site's order)."""
    order = date_order(time_zone)
    found = _SEPARATED.match(part)
    if found:
        first, _, second, third = found.groups()
        if len(first) == 4:
            if found.group(2) != "-":
                raise _refuse(label, text, "is not a date", time_zone, with_time)
            fields = _Day(int(first), int(second), int(third))
        elif len(third) != 4:
            raise _refuse(
                label, text, "has a year that is not written in full", time_zone, with_time
            )
        elif order is DateOrder.DAY_FIRST:
            fields = _Day(int(third), int(second), int(first))
        else:
            fields = _Day(int(third), int(first), int(second))
    elif _DIGITS.match(part) and len(part) == 8:
        if order is DateOrder.DAY_FIRST:
            fields = _Day(int(part[4:]), int(part[2:4]), int(part[:2]))
        else:
            fields = _Day(int(part[4:]), int(part[:2]), int(part[2:4]))
    elif _DIGITS.match(part):
        raise _refuse(
            label, text, "could be read more than one way (type the day and month with two "
            "digits each and the year in full)", time_zone, with_time,
        )  # fmt: skip
    else:
        raise _refuse(label, text, "is not a date", time_zone, with_time)
    try:
        return date(fields.year, fields.month, fields.day)
    except ValueError:
        raise _refuse(label, text, "is not a date of the calendar", time_zone, with_time) from None


def _clock(label: str, text: str, part: str, time_zone: str) -> time:
    """The time ``part``: ``14:30``, ``1430``, ``14:30:15`` (24-hour clock)."""
    if _TWELVE_HOUR.search(part):
        raise _refuse(label, text, "is on the 12-hour clock", time_zone, True)
    found = _TIME.match(part)
    if found:
        hour, minute, second = int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)
    elif _DIGITS.match(part) and len(part) == 4:
        hour, minute, second = int(part[:2]), int(part[2:]), 0
    else:
        raise _refuse(label, text, "has no time of day the system can read", time_zone, True)
    if hour > 23 or minute > 59 or second > 59:
        raise _refuse(label, text, "is not a time of day", time_zone, True)
    return time(hour, minute, second)


def parse_local_date(text: str, time_zone: str, *, label: str = "Date") -> date:
    """A date typed at the site: ``05/12/2026``, ``05.12.2026``, ``05122026`` or ``2026-12-05``.

    Raises :class:`DateNotUnderstood` saying what to type when it does not name one day.
    """
    typed = " ".join(text.split())
    if not typed:
        raise _refuse(label, text, "is empty", time_zone, False)
    return _day(label, typed, typed, time_zone, False)


def parse_local_date_time(text: str, time_zone: str, *, label: str = "Date and time") -> datetime:
    """A date and time typed at the site, as an aware datetime in the site's time zone.

    Read: the date as :func:`parse_local_date` reads it, then the time on the 24-hour clock,
    apart (``05/12/2026 14:30``, ``05122026 1430``, ``2026-12-05T14:30``) or as one run of 12
    digits (``051220261430``). ISO 8601 with an offset (``2026-12-05T14:30Z``) names its own
    zone. A local time the site's clocks skip (spring) or pass twice (autumn) is refused: it
    names no instant, or two.
    """
    typed = " ".join(text.replace(",", " ").split())
    if not typed:
        raise _refuse(label, text, "is empty", time_zone, True)
    iso = _iso_with_offset(typed)
    if iso is not None:
        return iso.astimezone(ZoneInfo(time_zone))
    if "T" in typed and typed[:4].isdigit():
        typed = typed.replace("T", " ", 1)
    parts = typed.split(" ")
    if len(parts) == 1 and _DIGITS.match(typed) and len(typed) == 12:
        parts = [typed[:8], typed[8:]]
    if len(parts) == 1:
        _day(label, text, parts[0], time_zone, True)  # a date that is not one says so first
        raise _refuse(label, text, "has no time of day", time_zone, True)
    if len(parts) > 2:
        if _TWELVE_HOUR.search(typed):
            raise _refuse(label, text, "is on the 12-hour clock", time_zone, True)
        raise _refuse(label, text, "is not a date and time", time_zone, True)
    day = _day(label, text, parts[0], time_zone, True)
    clock = _clock(label, text, parts[1], time_zone)
    return _site_moment(label, text, datetime.combine(day, clock), time_zone)


def _iso_with_offset(typed: str) -> datetime | None:
    """``2026-12-05T14:30Z`` or ``…+01:00``: an instant that names its own offset."""
    if not (typed[:4].isdigit() and _OFFSET.search(typed)):
        return None
    try:
        moment = datetime.fromisoformat(typed.replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _site_moment(label: str, text: str, naive: datetime, time_zone: str) -> datetime:
    """``naive`` site time as an aware datetime; refused when the clocks skip or repeat it."""
    zone = ZoneInfo(time_zone)
    early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        if early.astimezone(UTC) > late.astimezone(UTC):  # a gap: fold=0 is the offset before
            why = "does not exist in site time (the clocks went forward)"
        else:
            why = "happened twice in site time (the clocks went back)"
        raise DateNotUnderstood(
            f"{label}: '{text[:40]}' {why}.",
            what_to_do="Enter it in UTC with a Z, as YYYY-MM-DDTHH:MMZ.",
        )
    return early
