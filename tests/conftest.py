"""Shared fixtures: real SQLite and real PostgreSQL databases, fresh and migrated for each test.

Each test that asks for ``make_uow`` runs once on SQLite and once on PostgreSQL. A migrated
template is built once per worker; each test gets its own copy (a file copy for SQLite,
``CREATE DATABASE … TEMPLATE`` for PostgreSQL), so services commit for real, the append-only
triggers are in force, and nothing leaks between tests.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from mes.core.keys import SiteKey
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.services.context import Context
from mes.store.engine import make_engine, session_factory
from mes.store.migrate import upgrade
from mes.store.uow import UnitOfWork

PG_ADMIN_DSN = os.environ.get("MES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_BASE = PG_ADMIN_DSN.rsplit("/", 1)[0]
NOW = datetime(2026, 11, 21, 9, 0, 0, tzinfo=UTC)
PASSWORD = "correct-Horse-7-battery"  # meets the policy; the same for every test user
_counter = itertools.count()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def _pg_admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_DSN, autocommit=True)


def _drop_pg_database(name: str) -> None:
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file to copy for each test."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database (per worker) to clone for each test."""
    name = f"mes_template_{_worker()}"
    _drop_pg_database(name)
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"{PG_BASE}/{name}")
    upgrade(engine)
    engine.dispose()
    yield name
    _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        target = tmp_path / "mes.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"mes_test_{_worker()}_{os.getpid()}_{next(_counter)}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield f"{PG_BASE}/{name}"
    _drop_pg_database(name)


@pytest.fixture(scope="session")
def site_key() -> SiteKey:
    """One site key for the whole run (key generation is not what is under test)."""
    return SiteKey.generate()


@pytest.fixture
def engine(database_url: str):  # noqa: ANN201
    """An engine on the fresh database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_uow(engine, site_key: SiteKey) -> Callable[..., UnitOfWork]:  # noqa: ANN001
    """``make_uow(role="hub")``: a unit of work on the fresh database, as a hub or a spoke."""
    sessions = session_factory(engine)

    def factory(role: str = "hub", expiry_days: int | None = None) -> UnitOfWork:
        site = Site(
            code="TEST" if role == "hub" else "SPK1",
            name="Test site",
            role=role,
            time_zone="Europe/London",
            key=site_key,
            password_policy=PasswordPolicy(expiry_days=expiry_days),
        )
        return UnitOfWork(sessions, site)

    return factory


@pytest.fixture
def cli_ctx() -> Context:
    """The server's command line acting at NOW."""
    return Context.command_line(NOW, "tester", "testhost")


@pytest.fixture
def create_user(make_uow, cli_ctx: Context) -> Callable[..., str]:  # noqa: ANN001
    """``create_user("alice", roles=["operator"])`` → the new user's id (password: PASSWORD)."""
    from mes.services.users import add_user

    def factory(
        username: str, roles: list[str] | None = None, full_name: str | None = None,
        password: str = PASSWORD, role: str = "hub",
    ) -> str:
        with make_uow(role) as uow:
            return add_user(
                uow, cli_ctx, username=username, full_name=full_name or username.title() + " Tester",
                roles=roles or ["operator"], password=password,
            )

    return factory


def user_ctx(user_id: str, at: datetime = NOW, terminal_id: str | None = None, terminal: str = "Bench 1") -> Context:
    """A logged-in user's context."""
    return Context(at=at, user_id=user_id, terminal=terminal, terminal_id=terminal_id)
