"""``mes batch``: the board of the site, one batch record, and verification of its ledger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from mes.cli.common import CliState, command_context, echo_table, exit_on_broken_chain
from mes.core import phases
from mes.core.batch import (
    BATCH_STATUS_TITLES,
    DEVIATION_CATEGORY_TITLES,
    PHASE_STATUS_TITLES,
    Batch,
    BatchStatus,
    DeviationCategory,
    PhaseState,
    PhaseStatus,
)
from mes.core.clock import local_text, parse_utc_text
from mes.core.identity import identity_text
from mes.services import batches


@click.group("batch")
def batch_group() -> None:
    """Batches: the board, the batch record, the ledger's verification."""


def _when(text: str | None, zone: str) -> str:
    return local_text(parse_utc_text(text), zone) if text else "—"


def _phase_word(status: str) -> str:
    """A current phase as the board says it: performed and current means awaiting verification."""
    if status == PhaseStatus.PERFORMED:
        return "awaiting verification"
    return PHASE_STATUS_TITLES[PhaseStatus(status)].lower()


@batch_group.command("list")
@click.option("--all", "include_closed", is_flag=True, help="Include complete and aborted batches.")
@click.pass_obj
def list_command(state: CliState, include_closed: bool) -> None:
    """The board: each batch with its current phases, timers and open deviations."""
    runtime = state.runtime()
    zone = runtime.site.time_zone
    with runtime.uow() as uow:
        board = batches.board(uow, command_context(), include_closed=include_closed)
    rows = []
    for row in board:
        current = ", ".join(f"{p['name']} ({_phase_word(p['status'])})" for p in row.current)
        if row.overdue:
            timers = "overdue: " + ", ".join(row.overdue)
        elif row.next_due:
            timers = "next from " + _when(row.next_due, zone)
        else:
            timers = ""
        rows.append(
            (
                row.number,
                row.recipe,
                BATCH_STATUS_TITLES[BatchStatus(row.status)],
                row.identity,
                current,
                timers,
                row.open_deviations,
            )
        )
    echo_table(
        ("NUMBER", "RECIPE", "STATUS", "IDENTITY", "CURRENT PHASES", "TIMERS", "OPEN DEVIATIONS"),
        rows,
        "No batches." if include_closed else "No batches in progress (--all shows closed ones).",
    )


def _signature(signature: Mapping[str, Any], zone: str) -> str:
    """'Olivia Tester (olivia) — Performed — 2026-11-21 09:00:00 GMT' (11.50)."""
    return (
        f"{signature['printed_name']} ({signature['username']}) — "
        f"{str(signature['meaning']).capitalize()} — {_when(signature['at'], zone)}"
    )


def _phase_lines(batch: Batch, phase: PhaseState, zone: str) -> list[str]:
    plan = batch.procedure.phases[phase.id]
    lines = [f"  {plan.name} [{plan.id}] — {PHASE_STATUS_TITLES[phase.status]}"]
    for kind in phases.KINDS.values():  # values, lots, instruments, labels…
        lines += kind.lines(batch, plan, phase, zone)
    if phase.refused_scans:
        lines.append(f"      Refused scans: {phase.refused_scans}")
    lines.extend(f"      Signed: {_signature(s, zone)}" for s in phase.signatures)
    return lines


def _deviation_lines(batch: Batch, zone: str) -> list[str]:
    lines = []
    for deviation in batch.state.deviations.values():
        where = f" in {batch.procedure.phases[deviation.phase].name}" if deviation.phase else ""
        category = DEVIATION_CATEGORY_TITLES[DeviationCategory(deviation.category)]
        lines.append(
            f"  #{deviation.number} {category}{where} — {deviation.status.value}: "
            f"{deviation.description}"
        )
        lines.append(
            f"      raised by {deviation.raised_by.name} ({deviation.raised_by.username}) "
            f"{_when(deviation.raised_at, zone)}"
        )
        if deviation.comment:
            who = deviation.commented_by
            by = f" — {who.name} ({who.username})" if who else ""
            lines.append(f"      comment: {deviation.comment}{by}")
        if deviation.signature:
            lines.append(f"      Signed: {_signature(deviation.signature, zone)}")
    return lines


def _verified(uow: Any, reference: str, batch_id: str) -> int:
    """The number of ledger entries that verify, or exit 1 naming the first bad entry."""
    with exit_on_broken_chain(f"batch {reference.strip()}"):
        return batches.verify_batch(uow, command_context(), batch_id)


@batch_group.command("show")
@click.argument("number")
@click.pass_obj
def show_command(state: CliState, number: str) -> None:
    """The batch record of NUMBER: phases, values against limits, materials, signatures, deviations.

    The ledger is verified first: a record that fails verification is not shown (exit 1).
    """
    runtime = state.runtime()
    zone = runtime.site.time_zone
    with runtime.uow() as uow:
        ctx = command_context()
        batch_id = batches.find_batch_id(uow, ctx, number)
        entries = _verified(uow, number, batch_id)
        batch = batches.get_batch(uow, ctx, batch_id).batch
    s = batch.state
    title = batch.procedure.compiled.get("title", "")
    click.echo(
        f"Batch {s.number} — {batch.procedure.recipe_code} v{batch.procedure.version}, {title}"
    )
    status = BATCH_STATUS_TITLES[s.status]
    if s.started_at:
        status += f"; started {_when(s.started_at, zone)}"
    if s.completed_at:
        status += f"; closed {_when(s.completed_at, zone)}"
    if s.status_reason:
        status += f"; reason: {s.status_reason}"
    click.echo(f"Status: {status}")
    for spec in batch.procedure.chain_of_identity:
        if spec["id"] in s.chain_of_identity:
            click.echo(f"{spec['label']}: {identity_text(s.chain_of_identity[spec['id']])}")
    opened = sum(1 for d in s.deviations.values() if d.status.value == "open")
    click.echo(f"Open deviations: {opened}")
    click.echo(f"Ledger: {entries} entries, verified")
    for signature in s.signatures:
        click.echo(f"Signed: {_signature(signature, zone)}")
    heading = None
    for plan in batch.procedure.phases.values():
        here = f"{plan.unit_procedure['name']} › {plan.operation['name']}"
        if here != heading:
            click.echo(f"\n{here}")
            heading = here
        for line in _phase_lines(batch, s.phases[plan.id], zone):
            click.echo(line)
    deviations = _deviation_lines(batch, zone)
    click.echo("\nDeviations" if deviations else "\nDeviations: none")
    for line in deviations:
        click.echo(line)


@batch_group.command("verify")
@click.argument("number")
@click.pass_obj
def verify_command(state: CliState, number: str) -> None:
    """Recompute every hash, link and site signature of NUMBER's ledger; exit 1 at the first bad one.

    Also checks the signed head and the hub's acknowledgements kept here, says up to which
    acknowledged head it verified, and names a missing range.
    """
    with state.runtime().uow() as uow:
        ctx = command_context()
        batch_id = batches.find_batch_id(uow, ctx, number)
        with exit_on_broken_chain(f"batch {number.strip()}"):
            verified = batches.verify_batch_anchored(uow, ctx, batch_id)
    click.echo(f"ok: {verified.summary()}")


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(batch_group)
