"""The hub's live board and vein-to-vein turnaround, read models: batch summaries and milestones.

Plain selects over ``batch_summaries``, ``batch_milestones`` and ``spokes`` (never a ledger); who
may read them is checked by the services that wrap them (:func:`mes.services.network.board`,
:func:`mes.services.turnaround.turnaround`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TIMESTAMP, ColumnElement, Float, case, cast, func, select
from sqlalchemy.orm import Session

from mes.store.models import BatchMilestone, BatchSummary, RecipeVersion, Spoke
from mes.store.network import clock_beyond_skew
from mes.store.queries import plain_rows

IN_PROGRESS = ("created", "in_progress", "on_hold")
"""A batch on the board: created, in progress or on hold at its spoke (not yet complete)."""


def board_batches(
    session: Session, *, site: str | None = None, recipe_code: str | None = None
) -> list[BatchSummary]:
    """Every batch in progress at every spoke (or one site, one product), by site and number."""
    query = select(BatchSummary).where(BatchSummary.status.in_(IN_PROGRESS))
    if site is not None:
        query = query.where(BatchSummary.site == site)
    if recipe_code is not None:
        query = query.where(BatchSummary.recipe_code == recipe_code)
    return list(session.execute(query.order_by(BatchSummary.site, BatchSummary.number)).scalars())


@dataclass(frozen=True)
class SpokeOnBoard:
    """A spoke on the board, with how many of its batches are in progress."""

    spoke: Spoke
    in_progress: int
    clock_beyond_skew: bool  # its clock, as last measured, is off by more than the skew


def board_spokes(
    session: Session, *, clock_skew_seconds: int, site: str | None = None
) -> list[SpokeOnBoard]:
    """The registered spokes (or one) by code, each with its batches in progress."""
    counts = dict(
        session.execute(
            select(BatchSummary.site, func.count())
            .where(BatchSummary.status.in_(IN_PROGRESS))
            .group_by(BatchSummary.site)
        ).all()
    )
    query = select(Spoke).order_by(Spoke.code)
    if site is not None:
        query = query.where(Spoke.code == site)
    return [
        SpokeOnBoard(s, counts.get(s.code, 0), clock_beyond_skew(s, clock_skew_seconds))
        for s in session.execute(query).scalars()
    ]


def spoke_codes(session: Session) -> list[str]:
    """The codes of the spokes registered at the hub."""
    return list(session.execute(select(Spoke.code).order_by(Spoke.code)).scalars())


def recipe_codes(session: Session) -> list[str]:
    """The recipe codes the hub holds a version of (the products batches can be made of)."""
    return list(
        session.execute(
            select(RecipeVersion.recipe_code).distinct().order_by(RecipeVersion.recipe_code)
        ).scalars()
    )


def _hours(session: Session, at: Any) -> ColumnElement[float]:
    """UTC text as hours after the Unix epoch, computed by the database (no parsing in Python)."""
    if session.get_bind().dialect.name == "postgresql":
        epoch = func.extract("epoch", cast(at, TIMESTAMP(timezone=True)))
        return cast(epoch, Float) / 3600.0
    return (func.julianday(at) - 2440587.5) * 24.0  # SQLite: days since noon, 4714 BC


def newest_version_in(
    session: Session, recipe_code: str, created_from: str, created_before: str
) -> int | None:
    """The newest version of a recipe the batches created in the period ran (None: no batch)."""
    return session.execute(
        select(func.max(BatchSummary.recipe_version)).where(
            BatchSummary.recipe_code == recipe_code,
            BatchSummary.created_at >= created_from,
            BatchSummary.created_at < created_before,
        )
    ).scalar_one()


@dataclass(frozen=True)
class PointRows:
    """The points of a recipe's batches as columns: one row per batch with any of them.

    ``hours[b][i]``: batch ``b``'s time of ``points[i]`` in hours after the Unix epoch (None
    where the batch has not recorded it).
    """

    batch_ids: list[str]
    sites: list[str]
    numbers: list[str]
    points: tuple[str, ...]
    hours: list[tuple[float | None, ...]]
    demo: int = 0  # how many of the batches are demo data (``mes demo``; a real hub has none)


def point_rows(
    session: Session,
    recipe_code: str,
    points: Sequence[str],
    *,
    created_from: str,
    created_before: str,
) -> PointRows:
    """Each batch of the recipe created in the period (UTC text bounds) with its ``points``.

    One row per batch (grouped in the database), the times as hours: the turnaround's
    statistics read tens of thousands of batches without parsing a date in Python.
    """
    hours = _hours(session, BatchMilestone.at)
    columns = [
        func.max(case((BatchMilestone.milestone == name, hours), else_=None)) for name in points
    ]
    query = (
        select(
            BatchSummary.batch_id,
            BatchSummary.site,
            BatchSummary.number,
            BatchSummary.demo,
            *columns,
        )
        .join(BatchMilestone, BatchMilestone.batch_id == BatchSummary.batch_id)
        .where(
            BatchMilestone.recipe_code == recipe_code,
            BatchMilestone.milestone.in_(points),
            BatchSummary.created_at >= created_from,
            BatchSummary.created_at < created_before,
        )
        .group_by(BatchSummary.batch_id, BatchSummary.site, BatchSummary.number, BatchSummary.demo)
        .order_by(BatchSummary.batch_id)
    )
    rows = plain_rows(session, query)
    columns = list(zip(*rows, strict=True)) or [(), (), (), ()]
    return PointRows(
        batch_ids=list(columns[0]),
        sites=list(columns[1]),
        numbers=list(columns[2]),
        points=tuple(points),
        hours=[r[4:] for r in rows],
        demo=sum(1 for flag in columns[3] if flag),
    )


def points_of(session: Session, batch_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Every point of the timelines of ``batch_ids``: batch → point → when (UTC text)."""
    found: dict[str, dict[str, str]] = {batch_id: {} for batch_id in batch_ids}
    for batch_id, milestone, at in session.execute(
        select(BatchMilestone.batch_id, BatchMilestone.milestone, BatchMilestone.at).where(
            BatchMilestone.batch_id.in_(list(batch_ids))
        )
    ).all():
        found[batch_id][milestone] = at
    return found


def milestone_recipe_codes(session: Session) -> list[str]:
    """The recipe codes some received batch has a milestone of."""
    return list(
        session.execute(
            select(BatchMilestone.recipe_code).distinct().order_by(BatchMilestone.recipe_code)
        ).scalars()
    )


def compiled_of(session: Session, recipe_code: str, version: int) -> str | None:
    """The compiled JSON of version ``version`` of a recipe (None when the hub has none)."""
    return session.execute(
        select(RecipeVersion.compiled).where(
            RecipeVersion.recipe_code == recipe_code, RecipeVersion.version == version
        )
    ).scalar_one_or_none()
