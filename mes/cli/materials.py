"""``mes material`` and ``mes lot``: the site's materials, their lots and QA's lot decisions."""

from __future__ import annotations

from datetime import date

import click

from mes.cli.common import (
    DATE,
    CliState,
    command_context,
    echo_table,
    read_password,
    signer_context,
)
from mes.core.clock import local_text
from mes.core.errors import TerminalNotRegistered
from mes.core.materials import LOT_STATUS_WORDS
from mes.services import materials
from mes.services.esign import Credentials
from mes.services.users import find_user


@click.group("material")
def material_group() -> None:
    """Materials, by the codes the recipes use."""


@material_group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The material's name, as on the label.")
@click.option("--unit", required=True, help="The unit it is counted in (each, vial, mL, set…).")
@click.pass_obj
def material_add_command(state: CliState, code: str, name: str, unit: str) -> None:
    """Register material CODE (as the recipes name it, e.g. MAT-TS520)."""
    material = state.call(materials.add_material, code=code, name=name, unit=unit)
    click.echo(f"Registered material {material.code}: {material.name} ({material.unit}).")


@material_group.command("list")
@click.pass_obj
def material_list_command(state: CliState) -> None:
    """Every registered material, by code."""
    rows = [(m.code, m.name, m.unit) for m in state.call(materials.list_materials)]
    echo_table(("CODE", "NAME", "UNIT"), rows, "No materials are registered.")


@click.group("lot")
def lot_group() -> None:
    """Lots of materials: received in quarantine, released or rejected by QA."""


@lot_group.command("add")
@click.argument("material")
@click.argument("lot_number", metavar="LOT")
@click.option("--expiry", type=DATE, required=True, help="Expiry date on the label, YYYY-MM-DD.")
@click.pass_obj
def lot_add_command(state: CliState, material: str, lot_number: str, expiry: date) -> None:
    """Receive LOT of MATERIAL: it stays in quarantine until QA releases it."""
    lot = state.call(
        materials.add_lot, material_code=material, lot_number=lot_number, expiry=expiry
    )
    click.echo(
        f"Received lot {lot.lot_number} of {lot.material_code}, expiry "
        f"{lot.expiry.isoformat()}: in quarantine until QA releases it."
    )


@lot_group.command("list")
@click.pass_obj
def lot_list_command(state: CliState) -> None:
    """Every lot with its material, expiry, status and how many batch phases used it."""
    runtime = state.runtime()
    with runtime.uow() as uow:
        rows = [
            (
                row.lot.lot_number,
                row.material.code,
                row.material.name,
                row.lot.expiry.isoformat(),
                row.lot.status,
                local_text(row.lot.status_changed_at, runtime.site.time_zone),
                row.used_in,
                row.lot.status_reason,
            )
            for row in materials.list_lots(uow, command_context())
        ]
    echo_table(
        ("LOT", "MATERIAL", "NAME", "EXPIRY", "STATUS", "SINCE", "USED IN", "REASON"),
        rows,
        "No lots are registered.",
    )


@lot_group.command("status")
@click.argument("lot_number", metavar="LOT")
@click.argument("status", metavar="released|rejected|quarantine")
@click.option("--reason", default=None, help="Why (required; recorded with the signature).")
@click.option("--user", "username", required=True, help="The QA user who signs the decision.")
@click.option("--password-stdin", is_flag=True, help="Read the signer's password from stdin.")
@click.pass_obj
def lot_status_command(
    state: CliState,
    lot_number: str,
    status: str,
    reason: str | None,
    username: str,
    password_stdin: bool,
) -> None:
    """QA releases, rejects or quarantines LOT: an e-signature with the QA user's password.

    At a spoke only a registered terminal may sign (21 CFR 11.10(h)); the command line is none,
    so there the decision is signed on the Materials page.
    """
    runtime = state.runtime()
    if runtime.site.is_spoke:
        raise TerminalNotRegistered(
            f"At a spoke ({runtime.site.code}) lot decisions are signed at a registered "
            "terminal, and the command line is not one; nothing was changed.",
            what_to_do="Sign it on the Materials page at a registered terminal.",
        )
    with runtime.uow() as uow:
        signer = find_user(uow, username)
        user_id, signer_name, signer_username = signer.id, signer.full_name, signer.username
    password = read_password(password_stdin, f"Password of {signer_username}", confirm=False)
    with runtime.uow() as uow:
        lot = materials.change_lot_status(
            uow,
            signer_context(user_id),
            lot_number,
            status,
            reason,
            Credentials(password, signer_username),
            first_signing_in_session=True,
        )
        click.echo(
            f"Lot {lot.lot_number} of {lot.material_code} is "
            f"{LOT_STATUS_WORDS[lot.status]}: signed by "
            f"{signer_name} ({signer_username}) — "
            f"{materials.STATUS_MEANINGS[status].value.capitalize()} — "
            f"{local_text(lot.status_changed_at, runtime.site.time_zone)}."
        )


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(material_group)
    group.add_command(lot_group)
