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
from pathlib import Path

import pg_cluster
import pytest
from support import (  # noqa: F401 - NOW, PASSWORD and user_ctx are re-exported for tests
    DEFAULT_PG,
    NOW,
    PASSWORD,
    drop_pg_database,
    pg_admin,
    pg_refusal,
    pg_url,
    user_ctx,
    worker,
)

from mes.core.keys import SiteKey, SitePublicKey
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.services.context import Context
from mes.store.engine import make_engine, session_factory
from mes.store.migrate import upgrade
from mes.store.uow import UnitOfWork

_counter = itertools.count()
_cluster: pg_cluster.Cluster | None = None
_pg_chosen = ""


def pytest_configure(config: pytest.Config) -> None:
    """Choose the tests' PostgreSQL once, in the controlling process (xdist workers inherit it).

    An explicit ``MES_TEST_PG`` must answer: whoever names a server means the tests to run
    there, and a typo must not send them elsewhere unnoticed. Without it, the run starts a
    throwaway cluster of its own when PostgreSQL's ``initdb`` is installed, and stops it at the
    end: it runs without fsync, so the database each test creates and drops costs hundredths of
    a second, where a server that syncs its disk forces a checkpoint on every DROP DATABASE
    (seconds each on a busy machine, for some 800 tests). Only when no cluster can be started
    is the server at ``MES_TEST_PG_DEFAULT`` (default: the local one at 127.0.0.1:5432) used.
    """
    global _cluster, _pg_chosen
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller chose and put the address in MES_TEST_PG
    explicit = os.environ.get("MES_TEST_PG")
    if explicit:
        refusal = pg_refusal(explicit)
        if refusal is not None:
            raise pytest.UsageError(
                f"MES_TEST_PG={explicit} gives no connection ({refusal}). Start that server, "
                "fix the address, or unset MES_TEST_PG to use a throwaway cluster or the local "
                "server."
            )
        _pg_chosen = f"{explicit} (MES_TEST_PG)"
        return
    try:
        _cluster = pg_cluster.start()
    except RuntimeError as error:
        default = os.environ.get("MES_TEST_PG_DEFAULT") or DEFAULT_PG
        refusal = pg_refusal(default)
        if refusal is not None:
            raise pytest.UsageError(f"No PostgreSQL at {default} ({refusal}); {error}") from None
        os.environ["MES_TEST_PG"] = default
        _pg_chosen = f"{default} (no throwaway cluster: {error})"
        return
    os.environ["MES_TEST_PG"] = _cluster.dsn
    _pg_chosen = f"a throwaway cluster at {_cluster.dsn} in {_cluster.folder}"


def pytest_report_header(config: pytest.Config) -> str:
    return f"PostgreSQL: {_pg_chosen}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the throwaway cluster (if killed, its watcher stops it when our pipe closes)."""
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


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
    name = f"mes_template_{worker()}_{os.getpid()}"
    drop_pg_database(name)
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(pg_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        target = tmp_path / "mes.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"mes_test_{worker()}_{os.getpid()}_{next(_counter)}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield pg_url(name)
    drop_pg_database(name)


@pytest.fixture(scope="session")
def site_key() -> SiteKey:
    """One site key for the whole run (key generation is not what is under test)."""
    return SiteKey.generate()


@pytest.fixture
def engine(database_url: str):
    """An engine on the fresh database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_uow(engine, site_key: SiteKey) -> Callable[..., UnitOfWork]:
    """``make_uow(role="hub")``: a unit of work on the fresh database, as a hub or a spoke."""
    sessions = session_factory(engine)

    def factory(
        role: str = "hub", expiry_days: int | None = None, hub_key: SitePublicKey | None = None
    ) -> UnitOfWork:
        site = Site(
            code="TEST" if role == "hub" else "SPK1",
            name="Test site",
            role=role,
            time_zone="Europe/London",
            key=site_key,
            password_policy=PasswordPolicy(expiry_days=expiry_days),
            hub_key=hub_key,
        )
        return UnitOfWork(sessions, site)

    return factory


@pytest.fixture
def cli_ctx() -> Context:
    """The server's command line acting at NOW."""
    return Context.command_line(NOW, "tester", "testhost")


@pytest.fixture
def create_user(make_uow, cli_ctx: Context) -> Callable[..., str]:
    """``create_user("alice", roles=["operator"])`` → the new user's id (password: PASSWORD)."""
    from mes.services.users import add_user

    def factory(
        username: str,
        roles: list[str] | None = None,
        full_name: str | None = None,
        password: str = PASSWORD,
        role: str = "hub",
    ) -> str:
        with make_uow(role) as uow:
            return add_user(
                uow,
                cli_ctx,
                username=username,
                full_name=full_name or username.title() + " Tester",
                roles=roles or ["operator"],
                password=password,
            )

    return factory


@pytest.fixture
def make_app(engine, site_key: SiteKey, tmp_path: Path):
    """``make_app(role="hub", timeout=300)``: the real Flask app on the fresh database."""
    from mes.app import create_app
    from mes.services.runtime import Runtime
    from mes.settings import Settings

    def factory(
        role: str = "hub",
        timeout: int = 300,
        expiry_days: int | None = None,
        hub_key: SitePublicKey | None = None,
        proxy_hops: int = 0,
    ):
        settings = Settings(
            instance_path=tmp_path,
            role=role,
            site_code="TEST" if role == "hub" else "SPK1",
            site_name="Test site",
            time_zone="Europe/London",
            database_url=str(engine.url),
            secret_key="test-secret-" + role,
            session_timeout_seconds=timeout,
            password_expiry_days=expiry_days,
            proxy_hops=proxy_hops,
        )
        site = Site(
            code=settings.site_code,
            name=settings.site_name,
            role=role,
            time_zone=settings.time_zone,
            key=site_key,
            password_policy=PasswordPolicy(expiry_days=expiry_days),
            hub_key=hub_key,
        )
        runtime = Runtime(settings, engine, session_factory(engine), site)
        app = create_app(runtime=runtime)
        app.config["TESTING"] = True
        return app

    return factory
