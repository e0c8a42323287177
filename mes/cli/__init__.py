"""The ``mes`` command: one module per noun. Refusals print one readable line and exit non-zero."""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from mes import __version__
from mes.cli.common import CliState
from mes.cli.lifetime import keep_files_private
from mes.core.errors import MesError
from mes.settings import default_instance_path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--instance",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Instance folder (default: $MES_INSTANCE or ./instance).",
)
@click.version_option(__version__, prog_name="mes")
@click.pass_context
def cli(ctx: click.Context, instance: Path | None) -> None:
    """GMP-in-a-box MES: electronic batch records for point-of-care manufacturing."""
    state = CliState((instance or default_instance_path()).resolve())
    ctx.obj = state
    ctx.call_on_close(state.close)


# One module per noun; each adds its commands with ``register(cli)``.
COMMAND_MODULES = (
    "audit",
    "batches",
    "db",
    "demo",
    "equipment",
    "instance",
    "materials",
    "network",
    "pdf",  # after "instance": it adds `site certificate` to the site group
    "recipe",
    "report",
    "serve",
    "sync",
    "training",
    "users",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        import_module(f"mes.cli.{name}").register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, turning every refusal into one line on stderr.

    Whatever the command writes is private to the instance's owner (umask 077), from here on.
    """
    keep_files_private()
    try:
        cli.main(args=argv, prog_name="mes", standalone_mode=False)
    except MesError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted: nothing was changed.", err=True)
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except SQLAlchemyError as err:
        first = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        click.echo(
            f"error: the database refused the operation: {first}. Nothing was changed.", err=True
        )
        sys.exit(1)
    except OSError as err:
        click.echo(f"error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), err=True)
        sys.exit(1)
