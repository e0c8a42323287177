"""A database of each kind at a given revision, with no rows, for each migration test.

SQLite: a copy of a file migrated to that revision, made once per worker (each from the one
before it, so every migration runs once to make them). PostgreSQL: one database per worker,
emptied before each test by dropping its ``public`` schema (much faster than a database per
test; the migrations create everything in that schema), then migrated to the revision.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from support import pg_database, worker

from mes.store.engine import make_engine
from mes.store.migrate import upgrade

# The checks live in the helpers and the per-migration modules: show their failures in full.
pytest.register_assert_rewrite(
    "helpers", *(path.stem for path in Path(__file__).parent.glob("migration_*.py"))
)
from helpers import PREVIOUS  # noqa: E402 - after the rewrite is registered


@pytest.fixture(scope="session")
def pg_migrations_database() -> Iterator[str]:
    """This worker's database for the migration tests."""
    with pg_database(f"mes_migrations_{worker()}_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_at(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``sqlite_at(revision)``: a SQLite file migrated to ``revision`` (not to be changed)."""
    folder = tmp_path_factory.mktemp("revisions")
    made: dict[str, Path] = {}

    def at(revision: str) -> Path:
        if revision not in made:
            path = folder / f"{revision}.sqlite3"
            previous = PREVIOUS[revision]
            if previous is not None:
                shutil.copyfile(at(previous), path)
            engine = make_engine(f"sqlite:///{path}")
            upgrade(engine, revision)
            engine.dispose()  # closing the last connection checkpoints the WAL into the file
            made[revision] = path
        return made[revision]

    return at


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str | None], sa.Engine]]:
    """``database_at(revision)``: an engine on a new database at ``revision`` (None: empty)."""
    engines: list[sa.Engine] = []

    def make(revision: str | None) -> sa.Engine:
        if request.param == "sqlite":
            path = tmp_path / "migrations.sqlite3"
            if revision is not None:
                shutil.copyfile(request.getfixturevalue("sqlite_at")(revision), path)
            engine = make_engine(f"sqlite:///{path}")
        else:
            url = request.getfixturevalue("pg_migrations_database")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP SCHEMA public CASCADE")
                conn.execute("CREATE SCHEMA public")
            engine = make_engine(url)
            if revision is not None:
                upgrade(engine, revision)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()
