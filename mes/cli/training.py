"""``mes training``: qualifications of users for procedures (21 CFR 11.10(i))."""

from __future__ import annotations

from datetime import date

import click

from mes.cli.common import CliState, command_context
from mes.services import training
from mes.services.users import find_user


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not a date; use YYYY-MM-DD.", param_hint=name
        ) from None


@click.group("training")
def training_group() -> None:
    """Training records."""


@training_group.command("add")
@click.argument("username")
@click.argument("procedure")
@click.option("--on", "qualified_on", required=True, help="Qualification date, YYYY-MM-DD.")
@click.option("--expires", default=None, help="Expiry date, YYYY-MM-DD (none: no expiry).")
@click.pass_obj
def add_command(
    state: CliState, username: str, procedure: str, qualified_on: str, expires: str | None
) -> None:
    """Record that USERNAME is qualified for PROCEDURE."""
    state.call(
        training.record_training,
        username=username,
        procedure=procedure,
        qualified_on=_date(qualified_on, "--on"),
        expires_on=_date(expires, "--expires"),  # type: ignore[arg-type]
    )
    click.echo(
        f"Recorded: {username} qualified for '{procedure}' from {qualified_on}"
        + (f" until {expires}." if expires else ".")
    )


@training_group.command("withdraw")
@click.argument("username")
@click.argument("procedure")
@click.option("--reason", required=True, help="Why the qualification is withdrawn (recorded).")
@click.pass_obj
def withdraw_command(state: CliState, username: str, procedure: str, reason: str) -> None:
    """Withdraw USERNAME's qualification for PROCEDURE."""
    state.call(training.withdraw_training, username=username, procedure=procedure, reason=reason)
    click.echo(f"Withdrawn: {username} for '{procedure}'.")


@training_group.command("check")
@click.argument("username")
@click.argument("procedure")
@click.pass_obj
def check_command(state: CliState, username: str, procedure: str) -> None:
    """Exit 0 if USERNAME is qualified for PROCEDURE now, 1 if not."""
    with state.runtime().uow() as uow:
        user = find_user(uow, username)
        ok = training.is_qualified(uow, user, procedure, command_context())
    click.echo(f"{username} is {'qualified' if ok else 'NOT qualified'} for '{procedure}'.")
    if not ok:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(training_group)
