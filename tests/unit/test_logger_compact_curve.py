"""The compact curve a logger entry carries (so the hub can draw it): at most ~400 points plus
each excursion's readings, and no excursion disappears — each keeps its extreme reading."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mes.core.logger import (
    CURVE_BUCKETS,
    EXCURSION_POINTS,
    Window,
    check_window,
    compact_curve,
    parse_logger_csv,
)

WINDOW = Window(low=Decimal(2), high=Decimal(8), max_minutes_outside=Decimal(30))
T0 = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)


def csv_of(temps: list[str]) -> bytes:
    lines = ["time,temperature_c"]
    lines += [f"{(T0 + timedelta(minutes=i)).isoformat()},{t}" for i, t in enumerate(temps)]
    return ("\n".join(lines) + "\n").encode()


def curve_of(temps: list[str]) -> tuple[dict, object]:
    series = parse_logger_csv(csv_of(temps))
    check = check_window(series, WINDOW)
    return compact_curve(series, check), check


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_a_short_file_is_carried_whole():
    curve, _check = curve_of(["5", "9.5", "5"])
    assert curve["readings"] == 3
    assert curve["points"] == [
        [iso(T0 + timedelta(minutes=i)), t] for i, t in enumerate(["5", "9.5", "5"])
    ]
    assert "buckets" in curve["rule"]


def test_a_one_reading_spike_in_a_week_of_readings_is_kept_with_its_time():
    temps = ["5.0"] * 10_080  # a week, one reading a minute
    temps[4321] = "8.4"  # one reading above the window
    temps[7000] = "1.2"  # one below
    curve, check = curve_of(temps)
    assert len(check.excursions) == 2
    points = dict((t, c) for t, c in curve["points"])
    assert points[iso(T0 + timedelta(minutes=4321))] == "8.4"
    assert points[iso(T0 + timedelta(minutes=7000))] == "1.2"
    assert len(curve["points"]) <= 2 * CURVE_BUCKETS + 2 * (EXCURSION_POINTS + 3)
    assert curve["points"][0][0] == iso(T0) and curve["points"][-1][0] == iso(
        T0 + timedelta(minutes=10_079)
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=-50, max_value=150), min_size=2, max_size=3000),
    st.integers(min_value=0, max_value=2**32),
)
def test_every_excursion_keeps_its_start_end_and_extreme(tenths, seed):
    temps = [str(Decimal(t) / 10) for t in tenths]
    random.Random(seed).shuffle(temps)
    curve, check = curve_of(temps)
    points = {t: Decimal(c) for t, c in curve["points"]}
    times = [t for t, _c in curve["points"]]
    assert times == sorted(times) and len(set(times)) == len(times)
    excursion_points = sum(EXCURSION_POINTS + 3 for _ in check.excursions)
    assert len(points) <= 2 * CURVE_BUCKETS + 2 + excursion_points
    for e in check.excursions:
        assert iso(e.start) in points and iso(e.end) in points
        inside = [c for t, c in points.items() if iso(e.start) <= t <= iso(e.end)]
        assert e.extreme in inside
    assert min(points.values()) == check.lowest and max(points.values()) == check.highest
