"""Helpers shared by the command modules: the command-line context and password input."""

from __future__ import annotations

import getpass
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from mes.services.context import Context
from mes.services.runtime import Runtime, open_runtime
from mes.settings import load_settings


def command_context() -> Context:
    """Who acts from the command line: the OS user on this host, now (server UTC)."""
    return Context.command_line(datetime.now(UTC), getpass.getuser(), socket.gethostname())


def read_password(from_stdin: bool, prompt: str = "Password") -> str:
    """A new password: one line from standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError("--password-stdin was given but standard input is empty.")
        return line.rstrip("\r\n")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


class CliState:
    """The instance the command works on (opened lazily: ``init`` has none yet)."""

    def __init__(self, instance: Path) -> None:
        self.instance = instance
        self._runtime: Runtime | None = None

    def runtime(self, *, require_current_schema: bool = True) -> Runtime:
        """Open the instance's settings, keys and database."""
        if self._runtime is None:
            settings = load_settings(self.instance)
            self._runtime = open_runtime(settings, require_current_schema=require_current_schema)
        return self._runtime

    def close(self) -> None:
        """Release the database."""
        if self._runtime is not None:
            self._runtime.close()
