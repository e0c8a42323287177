"""Shared test constants and helpers (importable from any test folder: ``from support import …``)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from mes.services.context import Context

# PostgreSQL for the tests: the server MES_TEST_PG names (it must answer), else a throwaway
# cluster of the run's own (tests/pg_cluster.py), else the one at MES_TEST_PG_DEFAULT (by default
# the local server below) if it answers. The controlling pytest process decides once, in
# conftest.pytest_configure, and puts the address in MES_TEST_PG for itself and its workers.
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 21, 9, 0, 0, tzinfo=UTC)
PASSWORD = "correct-Horse-7-battery"  # meets the policy; the same for every test user


def worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def pg_admin_dsn() -> str:
    """The address of the tests' PostgreSQL (its maintenance database ``test``)."""
    return os.environ.get("MES_TEST_PG") or os.environ.get("MES_TEST_PG_DEFAULT") or DEFAULT_PG


def pg_url(database: str) -> str:
    """The URL of ``database`` on the tests' PostgreSQL server."""
    return f"{pg_admin_dsn().rsplit('/', 1)[0]}/{database}"


def pg_admin() -> psycopg.Connection:
    return psycopg.connect(pg_admin_dsn(), autocommit=True)


def pg_refusal(dsn: str) -> str | None:
    """Why ``dsn`` gives no working connection now (None: it does)."""
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip() or type(error).__name__


def drop_pg_database(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pg_database(name: str, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database ``name`` (a copy of ``template``) for the block: its URL."""
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield pg_url(name)
    finally:
        drop_pg_database(name)


def user_ctx(
    user_id: str, at: datetime = NOW, terminal_id: str | None = None, terminal: str = "Bench 1"
) -> Context:
    """A logged-in user's context."""
    return Context(at=at, user_id=user_id, terminal=terminal, terminal_id=terminal_id)


def wait_until_up(url: str, server: subprocess.Popen, log: Path, seconds: float = 20) -> None:
    """Wait until a served instance answers ``/health`` (fail with its log if it exits)."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited: {log.read_text()}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no answer on {url} within {seconds} s: {log.read_text()}")


@contextmanager
def finishes_within(seconds: float) -> Iterator[None]:
    """Fail, instead of hanging, when the block runs longer than ``seconds`` (main thread only).

    For work that takes milliseconds where the defect took minutes or hours (a backtracking
    regular expression): the bound is generous, never a measurement. Python's ``re`` checks for
    signals while it matches, so the alarm interrupts it.
    """

    def expired(_signum: int, _frame: object) -> None:
        raise AssertionError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
