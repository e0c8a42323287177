"""Fixtures for the ``mes`` command run as a real subprocess, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import PASSWORD, drop_pg_database, pg_admin, pg_url, worker

_counter = itertools.count()


@dataclass
class Result:
    """What a command printed and how it exited."""

    code: int
    out: str
    err: str


@dataclass
class Instance:
    """An instance folder (and its database) to run ``mes`` against."""

    path: Path
    database_url: str | None

    def run(self, *args: str, stdin: str | None = None) -> Result:
        """Run ``mes --instance PATH ARGS…`` and capture the outcome."""
        proc = subprocess.run(
            [sys.executable, "-m", "mes.cli", "--instance", str(self.path), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "MES_INSTANCE": ""},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def init(self, role: str = "hub", site: str = "HUB", password: str = PASSWORD) -> Result:
        """``mes init`` with the first administrator 'ada'."""
        args = [
            "init",
            "--role",
            role,
            "--site",
            site,
            "--admin",
            "ada",
            "--name",
            "Ada Admin",
            "--password-stdin",
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return self.run(*args, stdin=password + "\n")


@pytest.fixture(params=["sqlite", "postgresql"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instance]:
    """A place for a new instance: SQLite in its folder, or a new empty PostgreSQL database."""
    if request.param == "sqlite":
        yield Instance(tmp_path / "instance", None)
        return
    name = f"mes_cli_{worker()}_{os.getpid()}_{next(_counter)}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield Instance(tmp_path / "instance", pg_url(name))
    drop_pg_database(name)
