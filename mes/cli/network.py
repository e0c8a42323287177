"""``mes network``: the hub's view of its network — its read models, rebuilt and checked."""

from __future__ import annotations

import sys

import click

from mes.cli.common import CliState
from mes.services.read_models import read_model_differences, rebuild_read_models


@click.group("network")
def network_group() -> None:
    """Hub: the network of spokes and the batches received from them."""


@network_group.command("rebuild")
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing: compare the stored read models with the chains, print each "
    "difference and exit 1 if there is any.",
)
@click.pass_obj
def rebuild_command(state: CliState, check: bool) -> None:
    """Recompute the read models (summaries, critical values, milestones, usage) from the chains.

    Every received batch's ledger, review chain and receipts, in one transaction.
    """
    if not check:
        click.echo(f"ok: {state.call(rebuild_read_models).summary()}")
        return
    differences = state.call(read_model_differences)
    for line in differences:
        click.echo(line)
    if differences:
        click.echo(
            f"error: {len(differences)} difference{'s' if len(differences) != 1 else ''} "
            "between the read models and the chains; run 'mes network rebuild'.",
            err=True,
        )
        sys.exit(1)
    click.echo("ok: the read models are what the chains say.")


@network_group.command("cpv-scan")
@click.option("--recipe", "recipe_code", default=None, help="Only this recipe code (default: all).")
@click.pass_obj
def cpv_scan_command(state: CliState, recipe_code: str | None) -> None:
    """Keep the new trends of continued process verification for QA to assess.

    The run rules over each series since its frozen baseline, per site and network-wide; each
    new signal becomes a trend in QA's queue (run it from a timer, e.g. hourly).
    """
    from mes.services.cpv import scan_trends

    kept = state.call(scan_trends, recipe_code)
    click.echo(f"ok: {kept} new trend{'s' if kept != 1 else ''} to assess.")


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(network_group)
