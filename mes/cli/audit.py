"""``mes audit``: verify the audit trail's hash chain and site signatures."""

from __future__ import annotations

import click

from mes.cli.common import CliState, exit_on_broken_chain
from mes.services.audit import verify_audit_anchored


@click.group("audit")
def audit_group() -> None:
    """The system audit trail."""


@audit_group.command("verify")
@click.pass_obj
def verify_command(state: CliState) -> None:
    """Recompute every hash, link and signature; exit 1 naming the first bad entry.

    Also checks the signed head and the heads kept outside the database (the checkpoint file,
    the hub's countersignature), says up to which anchored head it verified, and names a
    missing range.
    """
    with state.runtime().uow() as uow, exit_on_broken_chain("audit"):
        verified = verify_audit_anchored(uow)
    click.echo(f"ok: {verified.summary()}")


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(audit_group)
