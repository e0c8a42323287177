"""``mes demo``: a throwaway working instance with a demo user for every role."""

from __future__ import annotations

import getpass
import socket
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from mes.cli.common import CliState, command_context
from mes.cli.serve import free_port, serve_app
from mes.core.lifecycle import Step
from mes.services import recipes
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.instance import InstanceRequest, init_instance
from mes.services.runtime import Runtime
from mes.services.training import record_training
from mes.services.users import add_user, find_user

# (user ID, full name, role, password) — demo only; every password meets the real policy.
DEMO_USERS = (
    ("ada", "Ada Admin", "admin", "keys-to-the-suite"),
    ("olivia", "Olivia Operator", "operator", "cells-in-the-hood"),
    ("oscar", "Oscar Operator", "operator", "second-pair-of-eyes"),
    ("sam", "Sam Supervisor", "supervisor", "check-the-timers"),
    ("quinn", "Quinn Quality", "qa", "release-by-exception"),
    ("aaron", "Aaron Author", "author", "write-the-recipe"),
)
DEMO_PROCEDURES = (
    "SOP-CT-001 Aseptic processing in the isolator",
    "SOP-CT-014 Gowning for grade B",
)


@click.command("demo")
@click.option(
    "--port", default=8000, show_default=True, type=int, help="Port (a free one is taken if busy)."
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Instance folder (default: a new temporary folder).",
)
@click.option("--no-serve", is_flag=True, help="Set up only (for scripts and tests).")
@click.pass_obj
def demo_command(state: CliState, port: int, folder: Path | None, no_serve: bool) -> None:
    """Set up a demo hub on embedded SQLite with users for every role, and serve it."""
    folder = (folder or Path(tempfile.mkdtemp(prefix="mes-demo-"))).resolve()
    admin = DEMO_USERS[0]
    runtime = init_instance(
        InstanceRequest(
            path=folder,
            role="hub",
            site_code="HUB",
            site_name="Demo hub (central QA)",
            time_zone="Europe/London",
            database_url=None,
            admin_username=admin[0],
            admin_name=admin[1],
            admin_password=admin[3],
        ),
        datetime.now(UTC),
        getpass.getuser(),
        socket.gethostname(),
    )
    ctx = command_context()
    for username, name, role, password in DEMO_USERS[1:]:
        with runtime.uow() as uow:
            add_user(uow, ctx, username=username, full_name=name, roles=[role], password=password)
    for username, _name, role, _password in DEMO_USERS:
        if role in {"operator", "supervisor"}:
            for procedure in DEMO_PROCEDURES:
                with runtime.uow() as uow:
                    record_training(
                        uow,
                        ctx,
                        username=username,
                        procedure=procedure,
                        qualified_on=date.today() - timedelta(days=30),
                        expires_on=date.today() + timedelta(days=335),
                    )
    seeded = _seed_recipes(runtime)
    runtime.close()
    state.instance = folder
    port = free_port("127.0.0.1", port)
    click.echo(f"Demo instance: {folder}")
    click.echo(f"Open http://127.0.0.1:{port}/ and log in as one of:")
    click.echo(f"  {'user ID':<10} {'password':<22} role")
    for username, _name, role, password in DEMO_USERS:
        click.echo(f"  {username:<10} {password:<22} {role}")
    for line in seeded:
        click.echo(line)
    click.echo("Stop with Ctrl+C. The instance folder stays until you delete it.")
    if not no_serve:
        serve_app(state, "127.0.0.1", port)


EXAMPLE_RECIPES = Path(__file__).resolve().parents[2] / "recipes"
# (file, how far the demo takes it through its lifecycle)
DEMO_RECIPES = (
    ("car-t-fresh.yaml", (Step.SUBMIT, Step.REVIEW, Step.APPROVE, Step.MAKE_EFFECTIVE)),
    ("car-t-cryo.yaml", (Step.SUBMIT,)),
    ("mrna-vaccine-fill.yaml", ()),
)
SIGNERS = {
    Step.SUBMIT: "aaron",
    Step.REVIEW: "sam",
    Step.APPROVE: "quinn",
    Step.MAKE_EFFECTIVE: "quinn",
}


def _seed_recipes(runtime: Runtime) -> list[str]:
    """Import the example recipes as Aaron; take one to effective, one into review."""
    if not EXAMPLE_RECIPES.is_dir():
        return ["(The example recipes folder is not installed: no recipes were loaded.)"]
    passwords = {username: password for username, _n, _r, password in DEMO_USERS}
    ids: dict[str, str] = {}
    now = datetime.now(UTC)
    with runtime.uow() as uow:
        for username in set(SIGNERS.values()):
            ids[username] = find_user(uow, username).id
    for username, user_id in ids.items():
        with runtime.uow() as uow:
            acknowledge_accountability(
                uow,
                Context(at=now, user_id=user_id, terminal="demo set-up"),
                Credentials(passwords[username], username),
                first_signing_in_session=True,
            )
    lines = ["Recipes at the hub (Recipes page):"]
    for name, steps in DEMO_RECIPES:
        path = EXAMPLE_RECIPES / name
        with runtime.uow() as uow:
            version = recipes.import_recipe(
                uow,
                Context(at=now, user_id=ids["aaron"], terminal="demo set-up"),
                path.read_bytes(),
                name,
            )
            version_id, version_label, status = version.id, recipes.label(version), version.status
        for step in steps:
            signer = SIGNERS[step]
            with runtime.uow() as uow:
                result = recipes.sign_step(
                    uow,
                    Context(at=now, user_id=ids[signer], terminal="demo set-up"),
                    version_id,
                    step,
                    Credentials(passwords[signer], signer),
                    first_signing_in_session=True,
                    effective_from=recipes.site_today(
                        uow, Context(at=now, user_id=None, terminal=None)
                    ),
                )
                status = result.state.value
        lines.append(f"  {version_label:<20} {status.replace('_', ' ')}")
    return lines


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(demo_command)
