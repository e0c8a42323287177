"""Vein-to-vein turnaround at the hub: each batch's timeline, and how long each leg takes.

Read from the batch milestones the hub keeps as it receives records and releases batches
(never the ledgers); the legs, medians, percentiles and words are the core's
(:mod:`mes.core.turnaround`), against the target the recipe declares (``turnaround:``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from mes.core.access import Permission
from mes.core.clock import as_utc, parse_utc_text, utc_text
from mes.core.critical import Turnaround, point_title, turnaround_of
from mes.core.csvtext import csv_text
from mes.core.errors import InvalidInput
from mes.core.network_board import as_typed
from mes.core.turnaround import (
    NETWORK,
    STANDARD,
    PointTable,
    Timeline,
    TurnaroundStats,
    turnaround,
)
from mes.services.context import Context, authorise
from mes.store.network_board import (
    PointRows,
    compiled_of,
    milestone_recipe_codes,
    newest_version_in,
    point_rows,
    points_of,
)
from mes.store.uow import UnitOfWork

DEFAULT_DAYS = 90
"""Without a period, the batches created in the last 90 days (today included)."""
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)
"""The dates a period may name (as every date field of the application)."""


@dataclass(frozen=True)
class RecipeTurnaround:
    """One recipe's turnaround over the period: the statistics and the newest timelines.

    ``version``: the version whose target is used (the newest the batches ran);
    ``unit_procedures``: each unit procedure's name by ID (for its end on a timeline).
    """

    recipe_code: str
    version: int
    title: str | None
    target: Turnaround | None
    stats: TurnaroundStats
    timelines: list[Timeline]
    unit_procedures: dict[str, str]
    demo_batches: int = 0  # demo data among the batches (told on the page, never mixed silently)

    def point_title(self, name: str) -> str:
        """A point of the timeline in words ("Collection end", "End of Expansion")."""
        return point_title(name, self.unit_procedures)


@dataclass(frozen=True)
class TurnaroundView:
    """The turnaround page: one section per recipe, the period, and the filter's choices."""

    recipes: list[RecipeTurnaround]
    recipe_code: str | None
    recipe_codes: list[str]
    since: date
    until: date


def _bounds(since: date, until: date, time_zone: str) -> tuple[str, str]:
    """The period's days in the site's zone as UTC text: [start of since, start of until + 1)."""
    zone = ZoneInfo(time_zone)

    def start(day: date) -> str:
        return utc_text(datetime.combine(day, time.min, zone))

    return start(since), start(until + timedelta(days=1))


def period(
    ctx: Context, time_zone: str, since: date | None, until: date | None
) -> tuple[date, date]:
    """The period asked for, or the last :data:`DEFAULT_DAYS` days; refused when it ends first."""
    for day in (since, until):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise InvalidInput(
                f"{day.isoformat()} is outside the dates the hub reads.",
                what_to_do=f"Give a date from {EARLIEST.isoformat()} to {LATEST.isoformat()}.",
            )
    today = as_utc(ctx.at).astimezone(ZoneInfo(time_zone)).date()
    until = until or (today if since is None or since <= today else since)
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise InvalidInput(
            f"The period starts on {since.isoformat()}, after it ends on {until.isoformat()}.",
            what_to_do="Give a 'from' date on or before the 'to' date.",
        )
    return since, until


def turnaround_report(
    uow: UnitOfWork,
    ctx: Context,
    *,
    recipe_code: str | None = None,
    since: date | None = None,
    until: date | None = None,
    newest: int = 25,
) -> TurnaroundView:
    """Vein-to-vein per recipe over the batches created in the period (site's days, inclusive).

    Per recipe: each leg and the whole per site and network (median, 90th percentile) against
    the target of the newest version the batches ran, the slowest legs in words, and the
    ``newest`` batches' timelines. A recipe no batch has milestones of is refused in words.
    Only those who watch the network (Permission.WATCH_NETWORK) may read it.
    """
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    time_zone = uow.site.time_zone
    since, until = period(ctx, time_zone, since, until)
    codes = milestone_recipe_codes(uow.session)
    if recipe_code and recipe_code not in codes:
        raise InvalidInput(
            f"No batch of recipe '{as_typed(recipe_code)}' has a vein-to-vein milestone at this hub.",
            what_to_do=(f"Choose one of: {', '.join(codes)}." if codes else "Choose all recipes."),
        )
    created_from, created_before = _bounds(since, until, time_zone)
    recipes = []
    for code in [recipe_code] if recipe_code else codes:
        version = newest_version_in(uow.session, code, created_from, created_before)
        if version is None:
            continue
        compiled = json.loads(compiled_of(uow.session, code, version) or "{}")
        target = turnaround_of(compiled) if compiled else None
        names = {u["id"]: u["name"] for u in compiled.get("unit_procedures") or ()}
        declared = {p for leg in (target.legs if target else ()) for p in (leg.start, leg.end)}
        rows = point_rows(
            uow.session,
            code,
            [*STANDARD, *sorted(declared - set(STANDARD))],
            created_from=created_from,
            created_before=created_before,
        )
        if not rows.batch_ids:
            continue
        hours = np.array(rows.hours, dtype=float).reshape(len(rows.hours), len(rows.points))
        table = PointTable(rows.sites, {name: hours[:, i] for i, name in enumerate(rows.points)})
        recipes.append(
            RecipeTurnaround(
                recipe_code=code,
                version=version,
                title=compiled.get("title"),
                target=target,
                stats=turnaround(code, table, target, names),
                timelines=_newest(uow, code, rows, table, newest),
                unit_procedures=names,
                demo_batches=rows.demo,
            )
        )
    return TurnaroundView(recipes, recipe_code or None, codes, since, until)


def _newest(
    uow: UnitOfWork, code: str, rows: PointRows, table: PointTable, most: int
) -> list[Timeline]:
    """The ``most`` batches whose timelines start last, newest first, with all their points."""
    first = np.fmin.reduce(list(table.hours.values()))
    chosen = sorted(
        range(len(rows.batch_ids)), key=lambda i: (first[i], rows.numbers[i]), reverse=True
    )[:most]
    points = points_of(uow.session, [rows.batch_ids[i] for i in chosen])
    return [
        Timeline(
            rows.batch_ids[i],
            rows.sites[i],
            rows.numbers[i],
            code,
            {name: parse_utc_text(at) for name, at in points[rows.batch_ids[i]].items()},
        )
        for i in chosen
    ]


CSV_COLUMNS = (
    "recipe_code", "leg", "from", "to", "site", "batches", "median_hours", "p90_hours",
    "target_hours", "over_target",
)  # fmt: skip


def turnaround_csv(view: TurnaroundView) -> str:
    """The figures behind the charts, one row per recipe, leg (and the whole) and site.

    The site column is "Network" for the network-wide figures; hours to two decimals.
    """
    rows: list[Sequence[object]] = [CSV_COLUMNS]
    for recipe in view.recipes:
        stats = recipe.stats
        legs = [*stats.legs, *([stats.whole] if stats.whole else [])]
        for leg in legs:
            name = "whole" if leg.whole else "leg"
            spreads = [*leg.by_site.items(), *([(NETWORK, leg.network)] if leg.network else [])]
            for site, s in spreads:
                rows.append(
                    [
                        recipe.recipe_code, name, leg.start, leg.end, site, s.n,
                        f"{s.median:.2f}", f"{s.p90:.2f}",
                        "" if leg.target is None else f"{leg.target:g}",
                        "" if s.over_target is None else s.over_target,
                    ]
                )  # fmt: skip
    return csv_text(rows)
