"""``mes equipment``: the site's instruments, their status, cleaning, calibration and logbook."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import click

from mes.cli.common import DATE, CliState, command_context, echo_table
from mes.core.clock import local_text
from mes.core.equipment import EQUIPMENT_STATUS_WORDS
from mes.services import equipment as service

if TYPE_CHECKING:
    from mes.store.models import Equipment


@click.group("equipment")
def equipment_group() -> None:
    """Instruments and their logbooks."""


def _state(item: Equipment) -> str:
    """'in service, clean, calibration due 2027-05-01' — what the batch rules look at."""
    due = item.calibration_due.isoformat() if item.calibration_due else "—"
    cleaning = "clean" if item.clean else "needs cleaning"
    return f"{EQUIPMENT_STATUS_WORDS[item.status]}, {cleaning}, calibration due {due}"


@equipment_group.command("add")
@click.argument("equipment_id", metavar="ID")
@click.option("--class", "equipment_class", required=True, help="Class the recipes ask for.")
@click.option("--name", required=True, help="The instrument's name.")
@click.option("--location", default="", help="Where it stands (room, suite).")
@click.option("--calibration-due", type=DATE, default=None, help="Next calibration, YYYY-MM-DD.")
@click.pass_obj
def add_command(
    state: CliState,
    equipment_id: str,
    equipment_class: str,
    name: str,
    location: str,
    calibration_due: date | None,
) -> None:
    """Register instrument ID (in service and clean)."""
    item = state.call(
        service.add_equipment,
        equipment_id=equipment_id,
        equipment_class=equipment_class,
        name=name,
        location=location,
        calibration_due=calibration_due,
    )
    click.echo(f"Registered {item.id} ({item.name}, {item.equipment_class}): {_state(item)}.")


@equipment_group.command("list")
@click.pass_obj
def list_command(state: CliState) -> None:
    """Every instrument by class, with its status and the batch using it now."""
    with state.runtime().uow() as uow:
        rows = [
            (
                row.equipment.id,
                row.equipment.equipment_class,
                row.equipment.name,
                row.equipment.location,
                EQUIPMENT_STATUS_WORDS[row.equipment.status],
                "clean" if row.equipment.clean else "needs cleaning",
                row.equipment.calibration_due.isoformat() if row.equipment.calibration_due else "",
                row.in_use_by,
            )
            for row in service.list_equipment(uow, command_context())
        ]
    echo_table(
        ("ID", "CLASS", "NAME", "LOCATION", "STATUS", "CLEANING", "CALIBRATION DUE", "IN USE BY"),
        rows,
        "No equipment is registered.",
    )


@equipment_group.command("status")
@click.argument("equipment_id", metavar="ID")
@click.argument("status", metavar="in_service|out_of_service")
@click.option("--reason", default=None, help="Why (required; recorded in the logbook).")
@click.pass_obj
def status_command(state: CliState, equipment_id: str, status: str, reason: str | None) -> None:
    """Take instrument ID out of service, or put it back in service, with a reason."""
    item = state.call(service.set_status, equipment_id, status, reason)
    click.echo(f"{item.id} is {_state(item)}.")


def _record_cleaning(state: CliState, equipment_id: str, *, clean: bool, note: str | None) -> None:
    item = state.call(service.record_cleaning, equipment_id, clean=clean, note=note)
    click.echo(f"{'Cleaning recorded: ' if clean else ''}{item.id} is {_state(item)}.")


@equipment_group.command("clean")
@click.argument("equipment_id", metavar="ID")
@click.option("--note", default=None, help="Anything to note about the cleaning.")
@click.pass_obj
def clean_command(state: CliState, equipment_id: str, note: str | None) -> None:
    """Record that instrument ID was cleaned."""
    _record_cleaning(state, equipment_id, clean=True, note=note)


@equipment_group.command("needs-cleaning")
@click.argument("equipment_id", metavar="ID")
@click.option("--note", default=None, help="Why it needs cleaning (required).")
@click.pass_obj
def needs_cleaning_command(state: CliState, equipment_id: str, note: str | None) -> None:
    """Mark instrument ID as needing cleaning, saying why (batches cannot use it until cleaned)."""
    _record_cleaning(state, equipment_id, clean=False, note=note)


@equipment_group.command("calibrate")
@click.argument("equipment_id", metavar="ID")
@click.option("--next-due", type=DATE, required=True, help="Next calibration due, YYYY-MM-DD.")
@click.option("--certificate", default=None, help="Certificate or report reference (required).")
@click.pass_obj
def calibrate_command(
    state: CliState, equipment_id: str, next_due: date, certificate: str | None
) -> None:
    """Record a calibration of instrument ID and when the next one is due."""
    item = state.call(
        service.record_calibration, equipment_id, next_due=next_due, certificate=certificate or ""
    )
    click.echo(f"Calibration recorded: {item.id} is {_state(item)}.")


@equipment_group.command("log")
@click.argument("equipment_id", metavar="ID")
@click.pass_obj
def log_command(state: CliState, equipment_id: str) -> None:
    """The logbook of instrument ID, newest first."""
    runtime = state.runtime()
    zone = runtime.site.time_zone
    with runtime.uow() as uow:
        item, entries = service.logbook(uow, command_context(), equipment_id)
        click.echo(f"{item.id} — {item.name} ({item.equipment_class}), {item.location or '—'}")
        click.echo(f"Now: {_state(item)}")
        rows = [
            (
                local_text(entry.at, zone),
                entry.action,
                f"{entry.by_name} ({entry.by_username})",
                f"{entry.batch_number} {entry.phase_id}" if entry.batch_number else "",
                entry.detail,
            )
            for entry in entries
        ]
    echo_table(("WHEN", "WHAT", "BY", "BATCH", "DETAIL"), rows, "The logbook is empty.")


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(equipment_group)
