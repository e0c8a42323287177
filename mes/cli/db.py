"""``mes db``: the schema, only through Alembic migrations."""

from __future__ import annotations

import click

from mes.cli.common import CliState
from mes.settings import load_settings
from mes.store.engine import make_engine
from mes.store.migrate import current_revision, head_revision, upgrade


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.pass_obj
def upgrade_command(state: CliState) -> None:
    """Create or upgrade the schema to the newest migration."""
    settings = load_settings(state.instance)
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"Schema already at {after}.")
    else:
        click.echo(f"Schema upgraded from {before or 'empty'} to {after}.")


@db_group.command("status")
@click.pass_obj
def status_command(state: CliState) -> None:
    """Show the schema revision and the newest one."""
    settings = load_settings(state.instance)
    engine = make_engine(settings.database_url)
    try:
        click.echo(
            f"current: {current_revision(engine) or 'empty'}; newest: {head_revision(engine)}"
        )
    finally:
        engine.dispose()


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(db_group)
