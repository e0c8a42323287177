"""``mes db``: the schema, only through Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from mes.cli.common import CliState
from mes.services.read_models import rebuild_read_models
from mes.settings import load_settings
from mes.store.engine import make_engine
from mes.store.migrate import current_revision, head_revision, upgrade

READ_MODELS_REVISION = 11  # the migration that added the hub's read models (empty)


@click.group("db")
def db_group() -> None:
    """Database schema."""


@contextmanager
def _engine(state: CliState) -> Iterator[Engine]:
    """The instance's database, without opening the instance (its schema may be behind)."""
    engine = make_engine(load_settings(state.instance).database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@db_group.command("upgrade")
@click.pass_obj
def upgrade_command(state: CliState) -> None:
    """Create or upgrade the schema to the newest migration."""
    with _engine(state) as engine:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    if before == after:
        click.echo(f"Schema already at {after}.")
        return
    click.echo(f"Schema upgraded from {before or 'empty'} to {after}.")
    crossed = before is not None and int(before) < READ_MODELS_REVISION <= int(after or 0)
    if crossed and load_settings(state.instance).role == "hub":
        # The read models start empty: fill them from the chains the hub already holds.
        click.echo(f"ok: {state.call(rebuild_read_models).summary()}")


@db_group.command("status")
@click.pass_obj
def status_command(state: CliState) -> None:
    """Show the schema revision and the newest one."""
    with _engine(state) as engine:
        click.echo(
            f"current: {current_revision(engine) or 'empty'}; newest: {head_revision(engine)}"
        )


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(db_group)
