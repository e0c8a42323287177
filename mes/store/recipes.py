"""Master recipes as stored: versions at the hub, the bundles published, and what a spoke installed."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.core.lifecycle import VersionState
from mes.store.models import InstalledRecipe, RecipePublication, RecipeVersion

# --- hub: versions ------------------------------------------------------------------------------


def version(session: Session, version_id: str, *, lock: bool = False) -> RecipeVersion | None:
    """A version by its ID (locked for the transaction when ``lock``), or None."""
    return session.get(RecipeVersion, version_id, with_for_update=lock or None)


def numbered_version(
    session: Session, recipe_code: str, number: int, *, lock: bool = False
) -> RecipeVersion | None:
    """Version ``number`` of a recipe (locked when ``lock``), or None."""
    query = select(RecipeVersion).where(
        RecipeVersion.recipe_code == recipe_code, RecipeVersion.version == number
    )
    return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


def latest_version(session: Session, recipe_code: str) -> RecipeVersion | None:
    """The highest-numbered version of a recipe, or None."""
    return session.execute(
        select(RecipeVersion)
        .where(RecipeVersion.recipe_code == recipe_code)
        .order_by(RecipeVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def newest_number(session: Session, recipe_code: str) -> int | None:
    """The highest version number a recipe has (None: it has none)."""
    return session.execute(
        select(func.max(RecipeVersion.version)).where(RecipeVersion.recipe_code == recipe_code)
    ).scalar_one()


def effective_siblings(session: Session, version: RecipeVersion) -> list[RecipeVersion]:
    """The recipe's other effective versions, locked (making one effective supersedes them)."""
    return list(
        session.execute(
            select(RecipeVersion)
            .where(
                RecipeVersion.recipe_code == version.recipe_code,
                RecipeVersion.id != version.id,
                RecipeVersion.status == VersionState.EFFECTIVE.value,
            )
            .with_for_update()
        ).scalars()
    )


def all_versions(session: Session) -> list[RecipeVersion]:
    """Every version, grouped by recipe code, newest version first."""
    return list(
        session.execute(
            select(RecipeVersion).order_by(RecipeVersion.recipe_code, RecipeVersion.version.desc())
        ).scalars()
    )


def versions_of(session: Session, recipe_code: str) -> list[RecipeVersion]:
    """Every version of one recipe, newest first."""
    return list(
        session.execute(
            select(RecipeVersion)
            .where(RecipeVersion.recipe_code == recipe_code)
            .order_by(RecipeVersion.version.desc())
        ).scalars()
    )


def version_with_content(session: Session, content_hash: str | None) -> RecipeVersion | None:
    """The version whose compiled content has this hash (its identity), or None."""
    return (
        session.execute(select(RecipeVersion).where(RecipeVersion.content_hash == content_hash))
        .scalars()
        .first()
    )


# --- hub: publications --------------------------------------------------------------------------


def publications_of(session: Session, version_id: str) -> list[RecipePublication]:
    """Every bundle published for a version, oldest first."""
    return list(
        session.execute(
            select(RecipePublication)
            .where(RecipePublication.version_id == version_id)
            .order_by(RecipePublication.published_at)
        ).scalars()
    )


def publications_of_bundle(session: Session, bundle_hash: str) -> list[RecipePublication]:
    """The publications of one bundle (by its hash)."""
    return list(
        session.execute(
            select(RecipePublication).where(RecipePublication.bundle_hash == bundle_hash)
        ).scalars()
    )


def served_publications(session: Session) -> list[tuple[RecipePublication, str, int]]:
    """Publications with a stored bundle, with their recipe code and version number.

    Ordered by recipe, version and publication time, so versions install in order.
    """
    rows = session.execute(
        select(RecipePublication, RecipeVersion.recipe_code, RecipeVersion.version)
        .join(RecipeVersion, RecipeVersion.id == RecipePublication.version_id)
        .where(RecipePublication.token.is_not(None))
        .order_by(RecipeVersion.recipe_code, RecipeVersion.version, RecipePublication.published_at)
    ).all()
    return [(p, code, number) for p, code, number in rows]


# --- spoke: installed versions ------------------------------------------------------------------


def installed(session: Session, installed_id: str | None) -> InstalledRecipe | None:
    """An installed version by its ID, or None."""
    return session.get(InstalledRecipe, installed_id) if installed_id else None


def installed_version(session: Session, recipe_code: str, number: int) -> InstalledRecipe | None:
    """Version ``number`` of a recipe as installed here, or None."""
    return session.execute(
        select(InstalledRecipe).where(
            InstalledRecipe.recipe_code == recipe_code, InstalledRecipe.version == number
        )
    ).scalar_one_or_none()


def newest_installed_number(session: Session, recipe_code: str) -> int | None:
    """The highest version number of a recipe installed here (None: none is)."""
    return session.execute(
        select(func.max(InstalledRecipe.version)).where(InstalledRecipe.recipe_code == recipe_code)
    ).scalar_one()


def all_installed(session: Session) -> list[InstalledRecipe]:
    """Every installed version, by recipe, newest first."""
    return list(
        session.execute(
            select(InstalledRecipe).order_by(
                InstalledRecipe.recipe_code, InstalledRecipe.version.desc()
            )
        ).scalars()
    )


def usable_installed(session: Session, recipe_code: str, today: date) -> InstalledRecipe | None:
    """The newest installed version of a recipe effective by ``today``, or None."""
    return session.execute(
        select(InstalledRecipe)
        .where(InstalledRecipe.recipe_code == recipe_code, InstalledRecipe.effective_from <= today)
        .order_by(InstalledRecipe.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def installed_recipe_codes(session: Session) -> list[str]:
    """The codes of the recipes installed here, in order."""
    return list(
        session.execute(
            select(InstalledRecipe.recipe_code).distinct().order_by(InstalledRecipe.recipe_code)
        ).scalars()
    )


def installed_bundle_hashes(session: Session) -> set[str]:
    """The hashes of the bundles installed here."""
    return set(session.execute(select(InstalledRecipe.bundle_hash)).scalars())


def installed_newest_first(session: Session) -> list[InstalledRecipe]:
    """Every installed version, the most recently installed first."""
    return list(
        session.execute(
            select(InstalledRecipe).order_by(InstalledRecipe.installed_at.desc())
        ).scalars()
    )
