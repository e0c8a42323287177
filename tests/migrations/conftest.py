"""An empty database of each kind for each migration test (the migrations are what is tested).

PostgreSQL: one database per worker, emptied before each test by dropping its ``public`` schema
(much faster than a database per test; the migrations create everything in that schema).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from support import pg_database, worker

from mes.store.engine import make_engine

# The checks live in the helpers and the per-migration modules: show their failures in full.
pytest.register_assert_rewrite(
    "helpers", *(path.stem for path in Path(__file__).parent.glob("migration_*.py"))
)


@pytest.fixture(scope="session")
def pg_migrations_database() -> Iterator[str]:
    """This worker's database for the migration tests."""
    with pg_database(f"mes_migrations_{worker()}_{os.getpid()}") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on an empty database (no migration applied)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_migrations_database")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    engine = make_engine(url)
    yield engine
    engine.dispose()
