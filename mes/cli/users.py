"""``mes user``: add, list, change roles, deactivate, unlock, reset password, badge, PIN."""

from __future__ import annotations

import sys

import click

from mes.cli.common import CliState, read_password
from mes.core.access import normalise_username
from mes.core.errors import InvalidInput
from mes.services import badges, users


@click.group("user")
def user_group() -> None:
    """Users, roles and access."""


@user_group.command("add")
@click.argument("username")
@click.option("--name", "full_name", required=True, help="Full name, as printed with signatures.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="operator, supervisor, qa, author or admin (repeatable).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--temporary", is_flag=True, help="The user must change the password at first login.")
@click.pass_obj
def add_command(
    state: CliState,
    username: str,
    full_name: str,
    roles: tuple[str, ...],
    password_stdin: bool,
    temporary: bool,
) -> None:
    """Create a user."""
    password = read_password(password_stdin)
    state.call(
        users.add_user,
        username=username,
        full_name=full_name,
        roles=roles,
        password=password,
        must_change_password=temporary,
    )
    click.echo(
        f"Added {normalise_username(username)} ({full_name}) with roles {', '.join(sorted(roles))}."
    )


@user_group.command("list")
@click.pass_obj
def list_command(state: CliState) -> None:
    """List every user ever created (deactivated ones too: IDs are never reused)."""
    with state.runtime().uow() as uow:
        for user in users.list_users(uow):
            status = "active" if user.active else "deactivated"
            if user.locked:
                status += ", locked"
            click.echo(
                f"{user.username:<20} {user.full_name:<30} {','.join(sorted(user.role_names)):<30} {status}"
            )


@user_group.command("roles")
@click.argument("username")
@click.option(
    "--role", "roles", multiple=True, required=True, help="The complete new set of roles."
)
@click.option("--reason", prompt="Why do the roles change", help="Why the roles change (recorded).")
@click.pass_obj
def roles_command(state: CliState, username: str, roles: tuple[str, ...], reason: str) -> None:
    """Replace a user's roles."""
    state.call(users.set_roles, username, roles, reason)
    click.echo(f"{username} now has roles {', '.join(sorted(roles))}.")


@user_group.command("deactivate")
@click.argument("username")
@click.option(
    "--reason",
    prompt="Why is the account deactivated",
    help="Why the account is deactivated (recorded).",
)
@click.pass_obj
def deactivate_command(state: CliState, username: str, reason: str) -> None:
    """Deactivate a user for good (the user ID is never reused)."""
    state.call(users.deactivate_user, username, reason)
    click.echo(f"Deactivated {username}.")


@user_group.command("unlock")
@click.argument("username")
@click.option("--reason", default=None, help="Why the account is unlocked (recorded).")
@click.pass_obj
def unlock_command(state: CliState, username: str, reason: str | None) -> None:
    """Unlock an account locked after failed authentications."""
    state.call(users.unlock_user, username, reason)
    click.echo(f"Unlocked {username}.")


@user_group.command("reset-password")
@click.argument("username")
@click.pass_obj
def reset_command(state: CliState, username: str) -> None:
    """Set a one-time password that the user must change at the next login."""
    temporary = state.call(users.reset_password, username)
    click.echo(
        f"One-time password for {username} (hand it over in person; it must be changed at login):"
    )
    click.echo(temporary)


@user_group.command("badge")
@click.argument("username")
@click.option("--revoke", is_flag=True, help="Revoke the user's badge (lost, stolen, damaged).")
@click.option("--reason", default=None, help="Why the badge is revoked (recorded).")
@click.pass_obj
def badge_command(state: CliState, username: str, revoke: bool, reason: str | None) -> None:
    """Enroll a badge (its code read from standard input: scan it), or revoke the user's badge."""
    if revoke:
        if not (reason or "").strip():
            raise InvalidInput(
                "A badge is revoked with the reason.", what_to_do="Give --reason TEXT."
            )
        hint = state.call(badges.revoke_badge, username, reason)
        click.echo(f"Revoked badge {hint} of {normalise_username(username)}.")
        return
    if reason is not None:
        raise InvalidInput("--reason goes with --revoke only.", what_to_do="Leave it out.")
    code = _line_from_stdin("the badge code (scan the badge)")
    hint = state.call(badges.enroll_badge, username, code)
    click.echo(f"Enrolled badge {hint} to {normalise_username(username)}.")


@user_group.command("pin")
@click.argument("username")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN from standard input.")
@click.pass_obj
def pin_command(state: CliState, username: str, pin_stdin: bool) -> None:
    """Set a user's PIN (6 to 8 digits; the PIN rules and history apply)."""
    pin = (
        _line_from_stdin("the PIN")
        if pin_stdin
        else click.prompt("PIN", hide_input=True, confirmation_prompt=True)
    )
    state.call(badges.set_pin_for, username, pin)
    click.echo(f"Set the PIN of {normalise_username(username)}.")


def _line_from_stdin(what: str) -> str:
    """One line of standard input, without its line end; an empty input is refused."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line.strip():
        raise InvalidInput(
            f"Standard input is empty: {what} was expected on it.",
            what_to_do=f"Pipe {what} into the command, one line.",
        )
    return line


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(user_group)
