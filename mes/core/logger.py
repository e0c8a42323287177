"""Temperature evidence from a shipment's data logger: the logger's CSV file, read and checked.

GMP: starting material and product travel in a validated temperature window (e.g. 2–8 °C); the
logger that travelled with them is the evidence. This module reads the logger's export exactly
(nothing guessed, nothing skipped) and compares it with the window the recipe declares. It is
plain Python: bytes in, values out, no clock, no files.

The accepted file (anything else is refused with :class:`LoggerFileRefused` naming the line):

* UTF-8 text (a byte-order mark is allowed), LF or CRLF line ends, at most
  :data:`MAX_BYTES` bytes and :data:`MAX_READINGS` readings;
* a first line that is one of the headers in :data:`HEADERS` (case and spaces around names
  ignored): ``time,temperature_c`` or ``timestamp,temperature,unit``;
* then one reading a line: an ISO 8601 time stamp WITH its UTC offset
  (``2026-12-05T08:00:00+01:00`` or ``…Z``), a temperature as a decimal number
  (``4``, ``-3.5``, ``12.25``; at most 3 decimals, between -100 and 100), and, with the
  three-column header, the unit ``°C`` (``C`` and ``degC`` are read as °C; °F, K and every
  other unit are refused: the window is in °C and nothing is converted);
* time stamps strictly increasing (a repeated or earlier time stamp is refused), no two
  readings further apart than the sampling allowance the recipe declares (a gap is refused:
  the logger did not see what happened then); blank lines only at the end.

The window check (:func:`check_window`): a reading below ``low`` or above ``high`` is outside.
An excursion is a run of consecutive readings outside on the same side; it starts at its first
reading and ends at the first reading back inside (or the next reading on the other side), or
at the last reading when the file ends outside. Its duration is end − start; the time outside
is the sum of the excursions' durations; the file is within the window when that sum is at most
``max_minutes_outside`` and no reading is outside when ``max_minutes_outside`` is 0.

The compact curve (:func:`compact_curve`), what a ledger entry carries so that a site without
the file (the hub) can draw it: the readings cut, in time order, into at most
:data:`CURVE_BUCKETS` buckets of consecutive readings, each giving its lowest and its highest
reading (at most ``2 × CURVE_BUCKETS`` points, the first and last reading always kept), plus
every reading of each excursion — from its first reading outside to its end — up to
:data:`EXCURSION_POINTS` per excursion (a longer one reduced by the same rule to
``EXCURSION_POINTS / 2`` buckets, its first and last reading kept). So no excursion disappears: each keeps its start, its end and its extreme reading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from mes.core.errors import LoggerFileRefused

__all__ = [
    "CURVE_BUCKETS",
    "EXCURSION_POINTS",
    "HEADERS",
    "MAX_BYTES",
    "MAX_READINGS",
    "Excursion",
    "LoggerSeries",
    "Reading",
    "Window",
    "WindowCheck",
    "check_window",
    "compact_curve",
    "parse_logger_csv",
]

MAX_BYTES = 2 * 1024 * 1024  # 2 MiB: 8 days at one reading a minute is about 0.5 MiB
MAX_READINGS = 50_000
HEADERS: dict[tuple[str, ...], str] = {
    ("time", "temperature_c"): "time,temperature_c",
    ("timestamp", "temperature", "unit"): "timestamp,temperature,unit",
}
CELSIUS = frozenset({"°C", "C", "degC"})
_NUMBER = re.compile(r"[+-]?\d{1,3}(\.\d{1,3})?")
_LOWEST, _HIGHEST = Decimal(-100), Decimal(100)
CURVE_BUCKETS = 200  # the compact curve: at most 400 points, a bucket's lowest and highest
EXCURSION_POINTS = 100  # and up to this many readings of each excursion
CURVE_RULE = (
    f"readings in at most {CURVE_BUCKETS} buckets of consecutive readings, each bucket's lowest "
    f"and highest kept; every reading of each excursion (at most {EXCURSION_POINTS}, a longer "
    "excursion reduced by the same rule)"
)


@dataclass(frozen=True)
class Reading:
    """One logged temperature: its time (UTC), its value in °C and its line in the file."""

    at: datetime
    celsius: Decimal
    line: int


@dataclass(frozen=True)
class LoggerSeries:
    """A logger file as read: its header and its readings in time order."""

    header: str
    readings: tuple[Reading, ...]

    @property
    def first(self) -> datetime:
        """The first reading's time."""
        return self.readings[0].at

    @property
    def last(self) -> datetime:
        """The last reading's time."""
        return self.readings[-1].at


@dataclass(frozen=True)
class Window:
    """The validated temperature window a recipe declares (°C, minutes)."""

    low: Decimal
    high: Decimal
    max_minutes_outside: Decimal

    @classmethod
    def from_recipe(cls, window: dict) -> Window:
        """The window as a recipe writes it: ``{low, high, unit: "°C", max_minutes_outside}``."""
        return cls(
            low=Decimal(str(window["low"])),
            high=Decimal(str(window["high"])),
            max_minutes_outside=Decimal(str(window.get("max_minutes_outside", 0))),
        )

    def as_payload(self) -> dict[str, str]:
        """The window as a ledger entry carries it (decimals as text, unit named)."""
        return {
            "low": str(self.low),
            "high": str(self.high),
            "unit": "°C",
            "max_minutes_outside": str(self.max_minutes_outside),
        }

    def in_words(self) -> str:
        """E.g. "2–8 °C, at most 30 min outside"."""
        return f"{self.low}–{self.high} °C, at most {self.max_minutes_outside} min outside"


@dataclass(frozen=True)
class Excursion:
    """A run of readings outside the window on one side: when, how long, how far."""

    side: str  # "above" or "below"
    start: datetime
    end: datetime
    extreme: Decimal  # the highest reading above, or the lowest below

    @property
    def minutes(self) -> Decimal:
        """Its duration in minutes (seconds kept as a decimal fraction)."""
        return _minutes(self.end - self.start)

    def as_payload(self) -> dict[str, str]:
        """The excursion as a ledger entry carries it."""
        return {
            "side": self.side,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "minutes": str(self.minutes),
            "extreme": str(self.extreme),
        }


@dataclass(frozen=True)
class WindowCheck:
    """A logger series compared with a window."""

    window: Window
    first: datetime
    last: datetime
    readings: int
    lowest: Decimal
    highest: Decimal
    excursions: tuple[Excursion, ...]

    @property
    def minutes_outside(self) -> Decimal:
        """Total time outside the window, in minutes."""
        return sum((e.minutes for e in self.excursions), Decimal(0))

    @property
    def within(self) -> bool:
        """True when the time outside is within the allowance (no excursion if it is 0)."""
        if self.window.max_minutes_outside == 0:
            return not self.excursions
        return self.minutes_outside <= self.window.max_minutes_outside

    def as_payload(self) -> dict:
        """The check's findings as a LOGGER_IMPORTED ledger entry carries them."""
        return {
            "rows": self.readings,
            "first": _iso(self.first),
            "last": _iso(self.last),
            "min": str(self.lowest),
            "max": str(self.highest),
            "minutes_outside": str(self.minutes_outside),
            "within_window": self.within,
            "excursions": [e.as_payload() for e in self.excursions],
            "window": self.window.as_payload(),
        }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _minutes(delta: timedelta) -> Decimal:
    seconds = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6
    if not seconds:
        return Decimal(0)
    # normalize() drops trailing zeros (12.50 -> 12.5) but writes 10 as 1E+1: read it back plain
    return Decimal(format((seconds / 60).quantize(Decimal("0.01")).normalize(), "f"))


def _refuse(line: int, what: str) -> LoggerFileRefused:
    return LoggerFileRefused(f"The logger file is refused at line {line}: {what}.", line=line)


def _time(text: str, line: int) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _refuse(line, f"'{text[:40]}' is not an ISO 8601 time stamp") from None
    if at.tzinfo is None or "T" not in text:
        raise _refuse(
            line,
            f"the time stamp '{text[:40]}' has no date, time and UTC offset (e.g. +01:00 or Z)",
        )
    return at.astimezone(UTC)


def _celsius(text: str, line: int) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise _refuse(line, f"'{text[:40]}' is not a temperature (a decimal number, e.g. 4.5)")
    value = Decimal(text)
    if not _LOWEST <= value <= _HIGHEST:
        raise _refuse(line, f"{text} °C is outside what a transport logger reads (-100 to 100 °C)")
    return value


def parse_logger_csv(data: bytes, *, max_gap_minutes: Decimal | int | None = None) -> LoggerSeries:
    """Read a logger file (bytes as received) into its readings, or refuse it naming the line.

    ``max_gap_minutes``: the sampling allowance the recipe declares; two consecutive readings
    further apart are a gap and refused. Rules: see the module's docstring.
    """
    if len(data) > MAX_BYTES:
        raise LoggerFileRefused(
            f"The logger file is {len(data):,} bytes; at most {MAX_BYTES:,} bytes are accepted."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise _refuse(line, "it is not UTF-8 text") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip("\r"):
        lines.pop()
    if not lines:
        raise LoggerFileRefused("The logger file is empty.")
    names = tuple(n.strip().lower() for n in lines[0].rstrip("\r").split(","))
    header = HEADERS.get(names)
    if header is None:
        raise _refuse(
            1, "the first line must be one of the headers " + " or ".join(sorted(HEADERS.values()))
        )
    if len(lines) == 1:
        raise LoggerFileRefused("The logger file has a header but no readings.")
    if len(lines) - 1 > MAX_READINGS:
        raise LoggerFileRefused(
            f"The logger file has {len(lines) - 1:,} readings; at most {MAX_READINGS:,} are accepted."
        )
    gap = None if max_gap_minutes is None else timedelta(minutes=float(max_gap_minutes))
    readings: list[Reading] = []
    for number, raw in enumerate(lines[1:], start=2):
        cells = [c.strip() for c in raw.rstrip("\r").split(",")]
        if cells == [""]:
            raise _refuse(number, "the line is blank (blank lines are allowed only at the end)")
        if len(cells) != len(names):
            raise _refuse(number, f"{len(cells)} values where the header names {len(names)}")
        at = _time(cells[0], number)
        celsius = _celsius(cells[1], number)
        if len(cells) == 3 and cells[2] not in CELSIUS:
            raise _refuse(number, f"the unit '{cells[2][:20]}' is not °C (nothing is converted)")
        if readings:
            before = readings[-1].at
            if at == before:
                raise _refuse(number, f"the time stamp repeats line {readings[-1].line}")
            if at < before:
                raise _refuse(number, f"the time stamp is earlier than line {readings[-1].line}")
            if gap is not None and at - before > gap:
                raise _refuse(
                    number,
                    f"{_minutes(at - before)} min after line {readings[-1].line}, longer than "
                    f"the sampling allowance of {max_gap_minutes} min (a gap in the record)",
                )
        readings.append(Reading(at=at, celsius=celsius, line=number))
    return LoggerSeries(header=header, readings=tuple(readings))


def _side(window: Window, celsius: Decimal) -> str | None:
    if celsius > window.high:
        return "above"
    if celsius < window.low:
        return "below"
    return None


def check_window(series: LoggerSeries, window: Window) -> WindowCheck:
    """Compare a logger series with a window: lowest, highest, each excursion, time outside.

    Rule (see the module's docstring): an excursion lasts from its first reading outside to the
    first reading that is no longer outside on that side, or to the last reading.
    """
    readings = series.readings
    excursions: list[Excursion] = []
    open_side: str | None = None
    start: datetime | None = None
    extreme = Decimal(0)
    for reading in readings:
        side = _side(window, reading.celsius)
        if open_side is not None and side != open_side:
            excursions.append(Excursion(open_side, start, reading.at, extreme))  # type: ignore[arg-type]
            open_side = None
        if side is not None and open_side is None:
            open_side, start, extreme = side, reading.at, reading.celsius
        elif side is not None:
            extreme = (
                max(extreme, reading.celsius) if side == "above" else min(extreme, reading.celsius)
            )
    if open_side is not None:
        excursions.append(Excursion(open_side, start, readings[-1].at, extreme))  # type: ignore[arg-type]
    return WindowCheck(
        window=window,
        first=series.first,
        last=series.last,
        readings=len(readings),
        lowest=min(r.celsius for r in readings),
        highest=max(r.celsius for r in readings),
        excursions=tuple(excursions),
    )


def _min_max(readings: Sequence[Reading], buckets: int) -> list[Reading]:
    """Each bucket's lowest and highest reading (first and last reading kept), in time order."""
    if len(readings) <= 2 * buckets:
        return list(readings)
    kept = {0, len(readings) - 1}
    size = len(readings) / buckets
    for b in range(buckets):
        lo, hi = round(b * size), round((b + 1) * size)
        part = range(lo, hi)
        if not part:
            continue
        kept.add(min(part, key=lambda i: readings[i].celsius))
        kept.add(max(part, key=lambda i: readings[i].celsius))
    return [readings[i] for i in sorted(kept)]


def compact_curve(series: LoggerSeries, check: WindowCheck) -> dict[str, Any]:
    """The curve a ledger entry carries (rule: see the module's docstring).

    ``{"rule": <the reduction in words>, "readings": <how many the file has>, "points":
    [[<time, ISO 8601 UTC>, <°C as text>], …]}`` in time order, no point twice.
    """
    readings = series.readings
    kept = {r.line: r for r in _min_max(readings, CURVE_BUCKETS)}
    for excursion in check.excursions:
        run = [r for r in readings if excursion.start <= r.at <= excursion.end]
        chosen = _min_max(run, EXCURSION_POINTS // 2)
        extreme = (max if excursion.side == "above" else min)(run, key=lambda r: r.celsius)
        for r in (*chosen, extreme):
            kept[r.line] = r
    return {
        "rule": CURVE_RULE,
        "readings": len(readings),
        "points": [[_iso(r.at), str(r.celsius)] for _line, r in sorted(kept.items())],
    }
