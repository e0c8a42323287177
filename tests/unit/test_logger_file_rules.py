"""The logger CSV: accepted exactly as documented, refused naming the line, checked against a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes.core.errors import LoggerFileRefused
from mes.core.logger import MAX_BYTES, Window, check_window, parse_logger_csv

WINDOW = Window(low=Decimal(2), high=Decimal(8), max_minutes_outside=Decimal(30))
T0 = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)


def csv_of(temps: list[str], *, step: int = 5, header: str = "time,temperature_c") -> bytes:
    lines = [header]
    for i, t in enumerate(temps):
        at = (T0 + timedelta(minutes=step * i)).isoformat()
        lines.append(f"{at},{t}" if header.count(",") == 1 else f"{at},{t},°C")
    return ("\r\n".join(lines) + "\r\n").encode()


def refusal(data: bytes, **kw) -> LoggerFileRefused:
    with pytest.raises(LoggerFileRefused) as caught:
        parse_logger_csv(data, **kw)
    return caught.value


def test_a_clean_file_is_read_in_utc_with_its_lines():
    data = (
        b"\xef\xbb\xbftime,temperature_c\n2026-12-05T08:00:00+01:00,4.5\n2026-12-05T07:05:00Z,5\n\n"
    )
    series = parse_logger_csv(data, max_gap_minutes=10)
    assert [r.at for r in series.readings] == [T0, T0 + timedelta(minutes=5)]
    assert [r.celsius for r in series.readings] == [Decimal("4.5"), Decimal(5)]
    assert [r.line for r in series.readings] == [2, 3]


def test_the_three_column_header_takes_celsius_only():
    series = parse_logger_csv(csv_of(["4", "5"], header="Timestamp, Temperature, Unit"))
    assert series.header == "timestamp,temperature,unit"
    bad = csv_of(["4", "5"], header="timestamp,temperature,unit").replace(
        "°C\r\n2026".encode(), "°F\r\n2026".encode()
    )
    assert refusal(bad).line == 2
    assert "'°F' is not °C" in str(refusal(bad))


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"", None, "is empty"),
        (b"\n\n", None, "is empty"),
        (b"time,temperature_c\n", None, "no readings"),
        (b"when,temp\n2026-12-05T07:00:00Z,4\n", 1, "first line must be one of the headers"),
        (b"time,temperature_c\n2026-12-05T07:00:00Z,4\nnonsense\n", 3, "1 values where"),
        (b"time,temperature_c\n2026-12-05 07:00,4\n", 2, "no date, time and UTC offset"),
        (b"time,temperature_c\nyesterday,4\n", 2, "not an ISO 8601"),
        (b"time,temperature_c\n2026-12-05T07:00:00Z,four\n", 2, "not a temperature"),
        (b"time,temperature_c\n2026-12-05T07:00:00Z,400\n", 2, "outside what a transport logger"),
        (b"time,temperature_c\n2026-12-05T07:00:00Z,4\n\n2026-12-05T07:05:00Z,4\n", 3, "blank"),
        (
            b"time,temperature_c\n2026-12-05T07:05:00Z,4\n2026-12-05T07:05:00Z,4\n",
            3,
            "repeats line 2",
        ),
        (
            b"time,temperature_c\n2026-12-05T07:05:00Z,4\n2026-12-05T07:00:00Z,4\n",
            3,
            "earlier than line 2",
        ),
        (
            b"time,temperature_c\n2026-12-05T07:00:00Z,4\n2026-12-05T07:30:00Z,4\n",
            3,
            "sampling allowance of 10",
        ),
        (b"time,temperature_c\n2026-12-05T07:00:00Z,\xff4\n", 2, "not UTF-8"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(data, line, words):
    err = refusal(data, max_gap_minutes=10)
    assert err.line == line
    assert words in str(err)
    assert "nothing was recorded" in str(err)


def test_a_file_larger_than_the_limit_is_refused_before_reading():
    err = refusal(b"x" * (MAX_BYTES + 1))
    assert f"at most {MAX_BYTES:,} bytes" in str(err)


def test_a_file_within_the_window_has_no_excursion():
    check = check_window(parse_logger_csv(csv_of(["3.8", "4", "6.1", "5"])), WINDOW)
    assert (check.lowest, check.highest, check.readings) == (Decimal("3.8"), Decimal("6.1"), 4)
    assert check.excursions == () and check.minutes_outside == 0 and check.within


def test_each_excursion_has_its_start_end_duration_and_extreme():
    temps = ["5", "9", "12.5", "7", "1.5", "1", "4", "8.5"]
    check = check_window(parse_logger_csv(csv_of(temps)), WINDOW)
    above, below, last = check.excursions
    assert (above.side, above.start, above.end, above.minutes, above.extreme) == (
        "above",
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=15),
        10,
        Decimal("12.5"),
    )
    assert (below.side, below.minutes, below.extreme) == ("below", 10, Decimal(1))
    assert (last.start, last.end, last.minutes) == (T0 + timedelta(minutes=35),) * 2 + (0,)
    assert check.minutes_outside == 20 and check.within  # 20 min of an allowed 30
    assert not check_window(
        parse_logger_csv(csv_of(temps)), Window(Decimal(2), Decimal(8), Decimal(0))
    ).within
    payload = check.as_payload()
    assert payload["max"] == "12.5" and payload["excursions"][0]["start"] == "2026-12-05T07:05:00Z"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.decimals(min_value=-20, max_value=30, places=1), min_size=1, max_size=60))
def test_the_time_outside_is_the_readings_outside_as_steps(temps):
    """Every step that starts outside counts; a step whose start is inside never does."""
    check = check_window(parse_logger_csv(csv_of([str(t) for t in temps])), WINDOW)
    outside_steps = sum(1 for t in temps[:-1] if not 2 <= t <= 8)
    assert check.minutes_outside == 5 * outside_steps
    assert check.lowest == min(temps) and check.highest == max(temps)
    assert all(e.start <= e.end for e in check.excursions)
    assert check.within == (check.minutes_outside <= 30 if check.excursions else True)
