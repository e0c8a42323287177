"""Vein-to-vein turnaround: legs, medians and 90th percentiles per site and network, in words.

Every expected figure below is computed by hand (linear interpolation between closest ranks:
the p-th percentile of n sorted values sits at rank (n - 1) * p / 100, counted from 0).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from mes.core.critical import Leg, Turnaround
from mes.core.turnaround import (
    Spread,
    Timeline,
    hours_text,
    leg_phrase,
    legs_of,
    recorded_points,
    slow_legs,
    spread,
    turnaround,
    whole_words,
)

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
POINTS = ("collection_end", "receipt", "manufacturing_start", "manufacturing_end", "hub_release")


def batch(site: str, number: str, *hours: float, extra: dict[str, float] | None = None):
    """A timeline whose consecutive POINTS are ``hours`` apart (fewer hours: fewer points)."""
    points = {POINTS[0]: T0}
    at = T0
    for name, step in zip(POINTS[1:], hours, strict=False):
        at += timedelta(hours=step)
        points[name] = at
    for name, after in (extra or {}).items():
        points[name] = T0 + timedelta(hours=after)
    return Timeline(f"id-{number}", site, number, "CART", points)


BATCHES = [
    batch("SPK1", "A", 10, 2, 240, 20, extra={"up:expansion": 100}),
    batch("SPK1", "B", 20, 4, 250, 30),
    batch("SPK1", "C", 30, 6, 260, 40),
    batch("SPK2", "D", 12, 3, 245, 5),
    batch("SPK2", "E", 14, 5, 255),  # not released yet
]


def test_the_median_and_90th_percentile_interpolate_between_ranks():
    assert spread([10, 20, 30]) == Spread(3, 20.0, 28.0)  # rank 1.8: 20 + 0.8 x 10
    assert spread([14, 12]) == Spread(2, 13.0, 13.8)
    assert spread([5.0]) == Spread(1, 5.0, 5.0)
    assert spread([265, 272, 304, 336], target=300) == Spread(4, 288.0, 326.4, over_target=2)
    assert spread([]) is None


def test_legs_run_between_the_milestones_the_batches_record_in_vein_to_vein_order():
    assert recorded_points(BATCHES) == POINTS  # the unit procedure's end is no standard point
    assert legs_of(["collection_end", "receipt", "hub_release"]) == [
        ("collection_end", "receipt"),
        ("receipt", "hub_release"),
    ]
    declared = Turnaround(None, (Leg("collection_end", "hub_release", 200.0),))
    assert legs_of(["collection_end", "receipt", "hub_release"], declared) == [
        ("collection_end", "receipt"),
        ("collection_end", "hub_release"),
        ("receipt", "hub_release"),
    ]
    missing = Turnaround(None, (Leg("collection_end", "infusion_start", 200.0),))
    assert legs_of(["collection_end", "receipt"], missing) == [("collection_end", "receipt")]


def test_a_timeline_orders_every_point_by_time_with_the_unit_procedures_in_it():
    names = [name for name, _at in BATCHES[0].ordered()]
    assert names == [
        "collection_end", "receipt", "manufacturing_start", "up:expansion",
        "manufacturing_end", "hub_release",
    ]  # fmt: skip
    assert BATCHES[0].hours("receipt", "manufacturing_start") == 2
    assert BATCHES[4].hours("manufacturing_end", "hub_release") is None


def test_each_leg_and_the_whole_per_site_and_network_against_the_targets():
    target = Turnaround(300.0, (Leg("collection_end", "receipt", 24.0),))
    stats = turnaround("CART", BATCHES, target)
    assert (stats.sites, stats.batches, stats.points) == (("SPK1", "SPK2"), 5, POINTS)
    legs = {(leg.start, leg.end): leg for leg in stats.legs}
    assert list(legs) == list(pairwise(POINTS))
    transport = legs["collection_end", "receipt"]
    assert transport.target == 24.0
    assert transport.by_site == {
        "SPK1": Spread(3, 20.0, 28.0, over_target=1),
        "SPK2": Spread(2, 13.0, 13.8, over_target=0),
    }
    assert transport.network == Spread(5, 14.0, 26.0, over_target=1)  # 10 12 14 20 30
    release = legs["manufacturing_end", "hub_release"]
    assert release.target is None
    assert release.by_site == {"SPK1": Spread(3, 30.0, 38.0), "SPK2": Spread(1, 5.0, 5.0)}
    assert release.network == Spread(4, 25.0, 37.0)  # 5 20 30 40: rank 2.7 -> 30 + 0.7 x 10
    whole = stats.whole
    assert whole is not None and (whole.start, whole.end, whole.target) == (
        "collection_end", "hub_release", 300.0,
    )  # fmt: skip
    assert whole.by_site["SPK1"] == Spread(3, 304.0, 329.6, over_target=2)  # 272 304 336
    assert whole.by_site["SPK2"] == Spread(1, 265.0, 265.0, over_target=0)  # E not released
    assert whole.network == Spread(4, 288.0, 326.4, over_target=2)
    assert whole_words(stats) == (
        "Collection end → Released by the hub: a median of 12 days, 90th percentile 13.6 days, "
        "over 4 batches, against a target of 12.5 days (2 over it)."
    )


def test_the_slowest_legs_are_named_against_their_target_or_the_network():
    # The transport at SPK1 (20 h) is within its 24 h target but slower than the network's
    # median (14 h); QA release at SPK1 (30 h) is slower than the network's 25 h.
    stats = turnaround("CART", BATCHES, Turnaround(300.0, (Leg("collection_end", "receipt", 24),)))
    assert stats.slowest == (
        "Transport to the spoke takes a median of 20 h at SPK1 (network median 14 h)",
        "QA release waits a median of 30 h at SPK1 (network median 25 h)",
    )
    # A declared span from receipt to release, 250 h: SPK1 takes 284 h (262 284 306) and SPK2
    # 253 h. Those over a target come first, then those over the network's median.
    span = Turnaround(None, (Leg("receipt", "hub_release", 250.0),))
    stats = turnaround("CART", BATCHES, span)
    assert [(s.site, s.leg.start, s.leg.end, s.excess, s.against) for s in slow_legs(stats)] == [
        ("SPK1", "receipt", "hub_release", 34.0, "target"),
        ("SPK2", "receipt", "hub_release", 3.0, "target"),
        ("SPK1", "collection_end", "receipt", 6.0, "network"),
        ("SPK1", "manufacturing_end", "hub_release", 5.0, "network"),
    ]
    assert stats.slowest == (
        "From receipt at the spoke to released by the hub takes a median of 11.8 days at SPK1 "
        "(target 10.4 days)",
        "From receipt at the spoke to released by the hub takes a median of 10.5 days at SPK2 "
        "(target 10.4 days)",
        "Transport to the spoke takes a median of 20 h at SPK1 (network median 14 h)",
    )


def test_a_milestone_recorded_earlier_than_the_vein_to_vein_order_takes_its_place_in_time():
    # A fresh product received at the bedside 2 h before the batch is signed complete.
    early = [
        batch("SPK1", n, 10, 2, 240, extra={"bedside_receipt": 10 + 2 + 238}) for n in ("A", "B")
    ]
    stats = turnaround("CART", early)
    assert stats.points == (
        "collection_end", "receipt", "manufacturing_start", "bedside_receipt",
        "manufacturing_end",
    )  # fmt: skip
    assert [leg.network.median for leg in stats.legs if leg.network] == [10.0, 2.0, 238.0, 2.0]
    assert stats.whole is not None and stats.whole.end == "manufacturing_end"


def test_a_lone_site_within_every_target_has_its_longest_leg_named():
    stats = turnaround("CART", BATCHES[:3])
    assert stats.slowest == (
        "Manufacturing takes longest: a median of 10.4 days at SPK1 "
        "(no site is slower than its reference)",
    )


def test_without_two_milestones_there_is_nothing_to_measure():
    lone = Timeline("x", "SPK1", "X", "CART", {"collection_end": T0})
    stats = turnaround("CART", [lone])
    assert (stats.legs, stats.whole, stats.slowest) == ((), None, ())
    assert whole_words(stats) == "No batch has two milestones yet: nothing to measure."


@pytest.mark.parametrize(
    ("hours", "text"),
    [(0.75, "45 min"), (2.5, "2.5 h"), (3.0, "3 h"), (19.4, "19 h"), (47.6, "48 h"),
     (48, "2 days"), (228, "9.5 days")],
)  # fmt: skip
def test_lengths_of_time_read_in_the_unit_that_suits_them(hours, text):
    assert hours_text(hours) == text


def test_legs_in_words():
    assert leg_phrase("collection_end", "receipt") == "Transport to the spoke takes"
    assert leg_phrase("bedside_receipt", "hub_release") == "QA release waits"
    assert leg_phrase("hub_release", "infusion_start") == "Infusion waits"
    assert (
        leg_phrase("collection_end", "hub_release", consecutive=False)
        == "From collection end to released by the hub takes"
    )


def test_a_declared_leg_may_end_at_a_unit_procedures_end():
    target = Turnaround(None, (Leg("receipt", "up:expansion", 80.0),))
    stats = turnaround("CART", BATCHES, target, unit_procedures={"expansion": "Expansion"})
    [declared] = [leg for leg in stats.legs if leg.end == "up:expansion"]
    assert declared.by_site == {"SPK1": Spread(1, 90.0, 90.0, over_target=1)}  # 100 h - 10 h
    assert not declared.consecutive and declared.title == "Receipt at the spoke → End of Expansion"
    assert [(leg.start, leg.end) for leg in stats.legs][1:3] == [
        ("receipt", "manufacturing_start"),
        ("receipt", "up:expansion"),  # by where it starts, then after the standard milestones
    ]
    assert stats.slowest[0] == (
        "From receipt at the spoke to end of Expansion takes a median of 3.8 days at SPK1 "
        "(target 3.3 days)"
    )
