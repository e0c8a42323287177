"""Helpers shared by the command modules: who acts, password input, files, dates and tables."""

from __future__ import annotations

import getpass
import re
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from mes.core.errors import ChainBroken, InvalidInput
from mes.services.context import Context
from mes.services.runtime import Runtime, open_runtime
from mes.settings import load_settings

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
Command = TypeVar("Command", bound=Callable[..., object])
T = TypeVar("T")


def command_context() -> Context:
    """Who acts from the command line: the OS user on this host, now (server UTC)."""
    return Context.command_line(datetime.now(UTC), getpass.getuser(), socket.gethostname())


def signer_context(user_id: str) -> Context:
    """A user who authenticated at the command line to sign, now (no registered terminal)."""
    return Context(
        at=datetime.now(UTC),
        user_id=user_id,
        terminal=command_context().terminal,
        terminal_id=None,
    )


def read_password(from_stdin: bool, prompt: str = "Password", *, confirm: bool = True) -> str:
    """A password: one line from standard input, or typed at a hidden prompt.

    A new password is typed twice (``confirm``); a signing password once.
    """
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError("--password-stdin was given but standard input is empty.")
        return line.rstrip("\r\n")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def read_file(path: Path, what: str) -> bytes:
    """The bytes of the file at ``path``; a missing file or a folder is refused in one line."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"There is no file {path}.") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not {what}.") from None


def out_option(
    help_text: str | None = None, *, required: bool = False
) -> Callable[[Command], Command]:
    """``--out FILE``: the file a command writes (a folder is refused by click)."""
    return click.option(
        "--out",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        required=required,
        help=help_text,
    )


class IsoDate(click.ParamType):
    """A calendar date written YYYY-MM-DD; anything else is refused in one line (exit 1)."""

    name = "YYYY-MM-DD"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> date:
        """The date, or :class:`InvalidInput` naming the option and the expected form."""
        if isinstance(value, date):
            return value
        text = str(value).strip()
        try:
            if not ISO_DATE.fullmatch(text):  # not 20270331 or 2027-W13-3, which Python accepts
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            option = param.opts[0] if param is not None and param.opts else "The date"
            raise InvalidInput(
                f"{option}: '{value}' is not a date.",
                what_to_do="Write it as YYYY-MM-DD, e.g. 2027-03-31.",
            ) from None


DATE = IsoDate()


@contextmanager
def exit_on_broken_chain(chain: str) -> Iterator[None]:
    """A chain that fails verification ends the command: one line naming the entry, exit 1."""
    try:
        yield
    except ChainBroken as err:
        click.echo(f"FAILED: {chain} entry {err.seq}: {err.problem}", err=True)
        sys.exit(1)


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> None:
    """Print rows under headers in aligned columns, or the ``empty`` line when there are none."""
    lines = [[("—" if cell is None or cell == "" else str(cell)) for cell in row] for row in rows]
    if not lines:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    for line in [list(headers), *lines]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


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

    def call(self, service: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``service(uow, command_context(), *args, **kwargs)`` in one unit of work (committed)."""
        with self.runtime().uow() as uow:
            return service(uow, command_context(), *args, **kwargs)

    def close(self) -> None:
        """Release the database."""
        if self._runtime is not None:
            self._runtime.close()
