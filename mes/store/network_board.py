"""The hub's live board and vein-to-vein turnaround, read models: batch summaries and milestones.

Plain selects over ``batch_summaries``, ``batch_milestones`` and ``spokes`` (never a ledger); who
may read them is checked by the services that wrap them (:func:`mes.services.network.board`,
:func:`mes.services.turnaround.turnaround`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.store.models import BatchMilestone, BatchSummary, RecipeVersion, Spoke
from mes.store.network import clock_beyond_skew

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


@dataclass(frozen=True)
class MilestoneRow:
    """One point of one batch's timeline, with the batch's site, number and recipe."""

    batch_id: str
    site: str
    number: str
    recipe_code: str
    recipe_version: int
    milestone: str
    at: str  # UTC text


def milestones(
    session: Session,
    *,
    recipe_codes: Sequence[str] | None = None,
    created_from: str | None = None,
    created_before: str | None = None,
) -> list[MilestoneRow]:
    """Every point of the timelines of the batches created in the period (UTC text bounds).

    Only of the recipes ``recipe_codes`` when given. By recipe, batch and time.
    """
    query = select(
        BatchMilestone.batch_id,
        BatchSummary.site,
        BatchSummary.number,
        BatchMilestone.recipe_code,
        BatchSummary.recipe_version,
        BatchMilestone.milestone,
        BatchMilestone.at,
    ).join(BatchSummary, BatchSummary.batch_id == BatchMilestone.batch_id)
    if recipe_codes is not None:
        query = query.where(BatchMilestone.recipe_code.in_(recipe_codes))
    if created_from is not None:
        query = query.where(BatchSummary.created_at >= created_from)
    if created_before is not None:
        query = query.where(BatchSummary.created_at < created_before)
    query = query.order_by(BatchMilestone.recipe_code, BatchMilestone.batch_id, BatchMilestone.at)
    return [MilestoneRow(*row) for row in session.execute(query).all()]


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
