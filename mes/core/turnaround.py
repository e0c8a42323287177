"""Vein-to-vein turnaround: each batch's timeline, its legs, and how long each leg takes.

A batch's **timeline** is the points the hub knows of it (``batch_milestones``): the standard
milestones of :data:`mes.core.critical.MILESTONES` (collection end, receipt, manufacturing start
and end, provisional certification, dispatch, bedside receipt, release by the hub, infusion
start) and the end of each unit procedure ("up:<id>").

A **leg** is the time between two standard milestones that follow each other among those the
batches of a recipe record (a recipe that records no dispatch has a leg from provisional
certification straight to bedside receipt), in the vein-to-vein order — or, where a recipe
records one earlier (a fresh product at the bedside before the batch is signed complete), in the
order the batches record them — and any leg the recipe declares a target for
(``turnaround: legs:``). A batch counts in a leg when it has both
ends. The **whole** runs from the first to the last of those milestones (typically collection
end to release or infusion start); a batch counts in it once it has both.

Each leg and the whole are summed up per site and for the network by the median and the 90th
percentile (numpy's linear interpolation between closest ranks), against the recipe's target,
and the slowest legs are named in words ("QA release waits a median of 19 h at SPK3"): a site
over a leg's target, or else slower than the network's median of it.
Plain Python and numpy; time is an argument.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise

import numpy as np

from mes.core.critical import MILESTONES, Turnaround, point_title

STANDARD = tuple(m.name for m in MILESTONES)
"""The standard milestones' names in vein-to-vein order."""
_ORDER = {name: i for i, name in enumerate(STANDARD)}
NETWORK = "Network"
"""The name of the network-wide row beside the sites'."""

# A leg in words, by the milestone that ends it ("<subject> <verb> a median of …"). A leg that
# ends elsewhere, or starts somewhere unusual, reads "From <start> to <end> takes".
_LEG_WORDS: dict[tuple[str | None, str], str] = {
    ("collection_end", "receipt"): "Transport to the spoke takes",
    ("receipt", "manufacturing_start"): "The start of manufacturing waits",
    ("manufacturing_start", "manufacturing_end"): "Manufacturing takes",
    (None, "provisional_certification"): "Provisional certification waits",
    (None, "dispatch"): "Dispatch waits",
    ("dispatch", "bedside_receipt"): "Delivery to the bedside takes",
    (None, "hub_release"): "QA release waits",
    (None, "infusion_start"): "Infusion waits",
}


@dataclass(frozen=True)
class Timeline:
    """One batch's points on the vein-to-vein timeline: point name → when (aware UTC)."""

    batch_id: str
    site: str
    number: str
    recipe_code: str
    points: Mapping[str, datetime]

    def ordered(self) -> list[tuple[str, datetime]]:
        """Every point by time; points at the same time in vein-to-vein order."""
        return sorted(
            self.points.items(), key=lambda p: (p[1], _ORDER.get(p[0], len(_ORDER)), p[0])
        )

    def hours(self, start: str, end: str) -> float | None:
        """Hours from ``start`` to ``end``, or None unless the batch has both."""
        if start not in self.points or end not in self.points:
            return None
        return (self.points[end] - self.points[start]).total_seconds() / 3600


@dataclass(frozen=True)
class Spread:
    """How long a leg takes over n batches: median and 90th percentile, in hours.

    ``over_target``: how many of the n took longer than the target (None without one).
    """

    n: int
    median: float
    p90: float
    over_target: int | None = None


def spread(hours: Sequence[float] | np.ndarray, target: float | None = None) -> Spread | None:
    """The median and 90th percentile of ``hours`` (numpy, linear); None for no values."""
    values = np.asarray(hours, dtype=float)
    if values.size == 0:
        return None
    median, p90 = np.percentile(values, [50, 90])
    over = None if target is None else int(np.count_nonzero(values > target))
    return Spread(n=len(values), median=float(median), p90=float(p90), over_target=over)


@dataclass(frozen=True)
class LegStats:
    """One leg (or the whole) per site and for the network, against its target."""

    start: str
    end: str
    target: float | None
    by_site: Mapping[str, Spread]
    network: Spread | None
    whole: bool = False
    consecutive: bool = True  # between milestones that follow each other (not a declared span)
    names: Mapping[str, str] = field(default_factory=dict)  # unit procedure names by ID

    @property
    def title(self) -> str:
        """The leg as a heading: "Manufacturing complete → Released by the hub"."""
        return leg_title(self.start, self.end, self.names)

    @property
    def phrase(self) -> str:
        """The leg as the subject of a sentence: "QA release waits"."""
        if self.whole:
            return "Vein-to-vein takes"
        return leg_phrase(self.start, self.end, consecutive=self.consecutive, names=self.names)


@dataclass(frozen=True)
class TurnaroundStats:
    """The turnaround of a recipe's batches: its milestones, legs, the whole, sites, words."""

    recipe_code: str
    points: tuple[str, ...]
    legs: tuple[LegStats, ...]
    whole: LegStats | None
    sites: tuple[str, ...]
    batches: int
    slowest: tuple[str, ...] = field(default=())


def leg_title(start: str, end: str, names: Mapping[str, str] | None = None) -> str:
    """A leg as a heading: "Collection end → Receipt at the spoke" ("→ End of Expansion")."""
    return f"{point_title(start, names)} → {point_title(end, names)}"


def leg_phrase(
    start: str, end: str, *, consecutive: bool = True, names: Mapping[str, str] | None = None
) -> str:
    """A leg as the subject of a sentence: "Transport to the spoke takes", "QA release waits".

    Words named by the milestone that ends a leg ("QA release waits") read right only for a leg
    between consecutive milestones; a longer leg reads "From <start> to <end> takes".
    """
    words = _LEG_WORDS.get((start, end)) or (_LEG_WORDS.get((None, end)) if consecutive else None)
    if words:
        return words
    return f"From {_lower(point_title(start, names))} to {_lower(point_title(end, names))} takes"


def _lower(title: str) -> str:
    """A title inside a sentence: only its first letter lowered ("end of Expansion")."""
    return title[:1].lower() + title[1:]


def hours_text(hours: float) -> str:
    """A length of time for a reader: 45 min, 2.5 h, 19 h, 9.5 days."""
    if abs(hours) < 1:
        return f"{round(hours * 60)} min"
    if abs(hours) < 10:
        return f"{hours:.1f} h".replace(".0 h", " h")
    if abs(hours) < 48:
        return f"{round(hours)} h"
    days = f"{hours / 24:.1f}".removesuffix(".0")
    return f"{days} days"


@dataclass(frozen=True)
class PointTable:
    """Many batches' points as columns, for the statistics: one row per batch.

    ``hours``: per point name, each batch's time of it in hours after a common epoch (NaN where
    the batch has not recorded it). Built by the service from the read model in one query, or
    from timelines with :meth:`of`.
    """

    sites: Sequence[str]
    hours: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, timelines: Sequence[Timeline]) -> PointTable:
        """The table of ``timelines`` (their points, hours after the Unix epoch)."""
        names = sorted({name for t in timelines for name in t.points})
        hours = {name: np.full(len(timelines), np.nan) for name in names}
        for row, timeline in enumerate(timelines):
            for name, at in timeline.points.items():
                hours[name][row] = at.timestamp() / 3600
        return cls([t.site for t in timelines], hours)

    def recorded(self) -> set[str]:
        """Every point some batch records."""
        return {name for name, column in self.hours.items() if np.isfinite(column).any()}


def recorded_points(table: PointTable | Sequence[Timeline]) -> tuple[str, ...]:
    """The standard milestones the batches record, in the order the batches record them.

    That is by their median time after each batch's first milestone, and in vein-to-vein order
    where that is the same. A recipe follows the vein-to-vein order as far as it goes, but may
    record a milestone earlier (a fresh product taken to the bedside before the batch is signed
    complete): its legs then run in the order things happened, never backwards.
    """
    if not isinstance(table, PointTable):
        table = PointTable.of(table)
    recorded = table.recorded()
    standard = [name for name in STANDARD if name in recorded]
    if not standard:
        return ()
    first = np.fmin.reduce([table.hours[name] for name in standard])  # NaN ignored
    after = {name: float(np.nanmedian(table.hours[name] - first)) for name in standard}
    return tuple(sorted(standard, key=lambda name: (after[name], _ORDER[name])))


def legs_of(
    points: Sequence[str],
    target: Turnaround | None = None,
    recorded: Collection[str] | None = None,
) -> list[tuple[str, str]]:
    """The legs: consecutive ``points``, and each leg the target declares that batches record.

    ``recorded``: every point name some batch records (by default ``points``): a declared leg
    may end at a unit procedure's end ("up:expansion"). In order of where they start in
    ``points``, then of where they end (a unit procedure's end after the milestones).
    """
    recorded = set(points if recorded is None else recorded)
    legs = set(pairwise(points))
    for declared in target.legs if target else ():
        ends = (declared.start, declared.end)
        if declared.start != declared.end and all(e in recorded for e in ends):
            legs.add(ends)
    place = {name: i for i, name in enumerate(points)}
    late = len(place)
    return sorted(legs, key=lambda leg: (place.get(leg[0], late), place.get(leg[1], late), leg))


def _leg_target(target: Turnaround | None, start: str, end: str) -> float | None:
    for declared in target.legs if target else ():
        if (declared.start, declared.end) == (start, end):
            return declared.target_hours
    return None


@dataclass(frozen=True)
class _Sites:
    """The table's rows grouped by site: each site's rows, in site order."""

    codes: tuple[str, ...]
    order: np.ndarray  # row indices sorted by site
    splits: np.ndarray  # where each site's rows start in ``order`` (after the first)

    @classmethod
    def of(cls, sites: Sequence[str]) -> _Sites:
        codes, inverse = np.unique(np.asarray(sites, dtype=str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        splits = np.cumsum(np.bincount(inverse, minlength=len(codes)))[:-1]
        return cls(tuple(str(c) for c in codes), order, splits)


def _leg_stats(
    table: PointTable,
    sites: _Sites,
    start: str,
    end: str,
    target: float | None,
    *,
    whole: bool = False,
    consecutive: bool = True,
    names: Mapping[str, str] | None = None,
) -> LegStats:
    hours = table.hours[end] - table.hours[start]  # NaN unless the batch has both
    by_site = {}
    for code, values in zip(sites.codes, np.split(hours[sites.order], sites.splits), strict=True):
        found = spread(values[np.isfinite(values)], target)
        if found is not None:
            by_site[code] = found
    return LegStats(
        start=start,
        end=end,
        target=target,
        by_site=by_site,
        network=spread(hours[np.isfinite(hours)], target),
        whole=whole,
        consecutive=consecutive,
        names=names or {},
    )


def turnaround(
    recipe_code: str,
    batches: PointTable | Sequence[Timeline],
    target: Turnaround | None = None,
    unit_procedures: Mapping[str, str] | None = None,
) -> TurnaroundStats:
    """The legs and the whole of one recipe's batches per site and network.

    ``batches``: their timelines, or their points as a table; ``unit_procedures``: each unit
    procedure's name by ID, for a leg that ends at one.
    """
    table = batches if isinstance(batches, PointTable) else PointTable.of(batches)
    sites = _Sites.of(table.sites)
    points = recorded_points(table)
    follows = set(pairwise(points))
    legs = tuple(
        _leg_stats(
            table,
            sites,
            start,
            end,
            _leg_target(target, start, end),
            consecutive=(start, end) in follows,
            names=unit_procedures or {},
        )
        for start, end in legs_of(points, target, table.recorded())
    )
    whole = None
    if len(points) >= 2:
        whole_target = target.target_hours if target else None
        whole = _leg_stats(table, sites, points[0], points[-1], whole_target, whole=True)
    stats = TurnaroundStats(
        recipe_code=recipe_code,
        points=points,
        legs=legs,
        whole=whole,
        sites=sites.codes,
        batches=len(table.sites),
    )
    return replace(stats, slowest=tuple(slowest_legs(stats)))


@dataclass(frozen=True)
class SlowLeg:
    """A leg a site takes longer than its reference (the leg's target, else the network's median)."""

    leg: LegStats
    site: str
    median: float
    reference: float
    against: str  # "target" or "network"

    @property
    def excess(self) -> float:
        """Hours over the reference."""
        return self.median - self.reference

    @property
    def words(self) -> str:
        """'QA release waits a median of 19 h at SPK3 (target 12 h)'."""
        against = "target" if self.against == "target" else "network median"
        return (
            f"{self.leg.phrase} a median of {hours_text(self.median)} at {self.site} "
            f"({against} {hours_text(self.reference)})"
        )


def slow_legs(stats: TurnaroundStats) -> list[SlowLeg]:
    """Every (site, leg) whose median is over the leg's target, or else the network's median.

    The network's median only where more than one site records the leg (a lone site is the
    network), and longer only where the two read differently (not "16 h at SPK4, network
    median 16 h"). Those over a target first, then those over the network; each the longest excess first.
    """
    found = []
    for leg in stats.legs:
        if leg.network is None:
            continue
        for site, s in leg.by_site.items():
            if leg.target is not None and _longer(s.median, leg.target):
                found.append(SlowLeg(leg, site, s.median, leg.target, "target"))
            elif len(leg.by_site) > 1 and _longer(s.median, leg.network.median):
                found.append(SlowLeg(leg, site, s.median, leg.network.median, "network"))
    return sorted(
        found,
        key=lambda slow: (slow.against != "target", -slow.excess, slow.site, slow.leg.start),
    )


def _longer(hours: float, reference: float) -> bool:
    """Longer than the reference as a reader sees it: "16 h" is not slower than "16 h"."""
    return hours > reference and hours_text(hours) != hours_text(reference)


def slowest_legs(stats: TurnaroundStats, limit: int = 3) -> list[str]:
    """The slowest legs in words: the ``limit`` longest excesses over their reference.

    When no site is over any reference, the leg that takes longest in the network is named.
    """
    slow = slow_legs(stats)
    if slow:
        return [s.words for s in slow[:limit]]
    timed = [leg for leg in stats.legs if leg.network is not None]
    if not timed:
        return []
    longest = max(timed, key=lambda leg: leg.network.median if leg.network else 0.0)
    assert longest.network is not None
    where = f"at {stats.sites[0]}" if len(stats.sites) == 1 else "across the network"
    return [
        f"{longest.phrase} longest: a median of {hours_text(longest.network.median)} {where}"
        " (no site is slower than its reference)"
    ]


def whole_words(stats: TurnaroundStats) -> str:
    """The whole vein-to-vein time in a sentence, against the target when there is one."""
    whole = stats.whole
    if whole is None or whole.network is None:
        return "No batch has two milestones yet: nothing to measure."
    s = whole.network
    text = (
        f"{leg_title(whole.start, whole.end)}: a median of {hours_text(s.median)}, "
        f"90th percentile {hours_text(s.p90)}, over {s.n} batch{'es' if s.n != 1 else ''}"
    )
    if whole.target is not None:
        text += f", against a target of {hours_text(whole.target)}"
        text += f" ({s.over_target} over it)" if s.over_target else " (none over it)"
    return text + "."
