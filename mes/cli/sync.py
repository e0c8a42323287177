"""``mes spoke``, ``mes sync``, ``mes export`` and ``mes import``: the hub ↔ spoke link."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from mes.cli.common import CliState, command_context, echo_table, out_option
from mes.core.site import SPOKE_STATUS_WORDS
from mes.services import spokes
from mes.sync import client, transfer


@click.group("spoke")
def spoke_group() -> None:
    """Spokes of a hub: add, enroll, suspend, reinstate, revoke."""


@spoke_group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The site's name, e.g. 'St Elsewhere CAR-T suite'.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone of the site.")
@click.pass_obj
def add_command(state: CliState, code: str, name: str, time_zone: str) -> None:
    """Hub: register spoke CODE and print its one-time enrollment code."""
    ticket = state.call(spokes.add_spoke, code, name, time_zone)
    _show_ticket(ticket)


def _show_ticket(ticket: spokes.EnrollmentTicket) -> None:
    click.echo(f"Enrollment code for {ticket.spoke}: {ticket.code}")
    click.echo(
        f"It works once, until {ticket.expires_at:%Y-%m-%d %H:%M} UTC. At the spoke run: "
        f"mes spoke enroll --hub URL --code {ticket.code}"
    )


@spoke_group.command("code")
@click.argument("code")
@click.pass_obj
def code_command(state: CliState, code: str) -> None:
    """Hub: a new one-time enrollment code for spoke CODE (earlier unused codes stop working)."""
    ticket = state.call(spokes.issue_enrollment_code, code)
    _show_ticket(ticket)


@spoke_group.command("list")
@click.pass_obj
def list_command(state: CliState) -> None:
    """Hub: every spoke with its status and key."""
    with state.runtime().uow(read_only=True) as uow:
        rows = spokes.list_spokes(uow, command_context())
    echo_table(
        ["CODE", "NAME", "STATUS", "KEY", "LAST SEEN (UTC)"],
        [
            (
                s.code,
                s.name,
                SPOKE_STATUS_WORDS[s.status],
                s.key_id,
                f"{s.last_seen_at:%Y-%m-%d %H:%M:%S}" if s.last_seen_at else None,
            )
            for s in rows
        ],
        "No spokes yet: add one with 'mes spoke add CODE --name NAME'.",
    )


def _status_command(action: str) -> click.Command:
    @click.command(action, help=f"Hub: {action} spoke CODE (a reason is required).")
    @click.argument("code")
    @click.option("--reason", required=True)
    @click.pass_obj
    def command(state: CliState, code: str, reason: str) -> None:
        spoke = state.call(spokes.change_spoke_status, code, action, reason)
        click.echo(f"Spoke {spoke.code} is now {spoke.status}.")

    return command


for _action in ("suspend", "reinstate", "revoke"):
    spoke_group.add_command(_status_command(_action))


@spoke_group.command("enroll")
@click.option("--hub", "hub_url", required=True, help="The hub's address, e.g. https://hub.example")
@click.option("--code", required=True, help="The one-time code the hub administrator gave you.")
@click.pass_obj
def enroll_command(state: CliState, hub_url: str, code: str) -> None:
    """Spoke: enroll with the hub; pin its key."""
    done = client.enroll(state.runtime(), hub_url, code)
    click.echo(
        f"Enrolled with hub {done.hub_code} at {hub_url}; hub key {done.hub_key_id} "
        + ("pinned." if done.pinned_now else "was already pinned (the same key).")
    )


@click.command("sync")
@click.option("--loop", is_flag=True, help="Keep syncing every sync.interval_seconds until Ctrl+C.")
@click.pass_obj
def sync_command(state: CliState, loop: bool) -> None:
    """Spoke: pull new recipe bundles from the hub and push the batch records it lacks."""
    runtime = state.runtime()
    if loop:
        stop = threading.Event()
        click.echo(f"Syncing every {runtime.settings.sync_interval_seconds} s (Ctrl+C to stop)")
        try:
            client.loop(runtime, stop)
        except KeyboardInterrupt:
            stop.set()
        return
    report = client.sync_round(runtime)
    click.echo(report.summary())
    if report.refused or report.bundles_refused or report.outage:
        raise SystemExit(1)


@click.command("export")
@out_option(required=True)
@click.option("--site", default=None, help="Hub: the spoke the file is for.")
@click.pass_obj
def export_command(state: CliState, out: Path, site: str | None) -> None:
    """Write a transfer file for an air-gapped link (spoke: its records; hub: a spoke's bundles)."""
    runtime = state.runtime()
    ctx = command_context()
    if runtime.site.role == "hub":
        if not site:
            raise click.UsageError("At the hub, name the spoke the file is for: --site CODE.")
        data, bundles, batches = transfer.export_hub(runtime, ctx, site)
        out.write_bytes(data)
        click.echo(
            f"Wrote {out}: {bundles} recipe bundles and acknowledgements of {batches} batches "
            f"for {site.upper()}."
        )
        return
    data, batches, entries = transfer.export_spoke(runtime, ctx)
    out.write_bytes(data)
    click.echo(
        f"Wrote {out}: {entries} entries of {batches} batches, signed by {runtime.site.code}."
    )


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=False))
@click.pass_obj
def import_command(state: CliState, file: Path) -> None:
    """Ingest a transfer FILE with the same checks as the network (twice changes nothing).

    Exits 1 when anything was refused, or stored but flagged (entries dated ahead of the hub's
    clock: their batch cannot be released).
    """
    report = transfer.import_file(state.runtime(), command_context(), file.read_bytes())
    click.echo(report.summary())
    if report.refused or report.flagged:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(spoke_group)
    group.add_command(sync_command)
    group.add_command(export_command)
    group.add_command(import_command)
