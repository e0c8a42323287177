"""``mes recipe``: validate, show, import, list, diff, publish, install and export master recipes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mes.cli.common import CliState, command_context, out_option, read_file
from mes.core.batchml import master_recipe_batchml
from mes.core.critical import (
    critical_inputs,
    milestone_inputs,
    point_title,
    turnaround_of,
    turnaround_words,
)
from mes.core.errors import InvalidInput
from mes.core.lifecycle import STATE_TITLES, VersionState
from mes.core.ordering import ORDERING_WORDS
from mes.core.recipe import RecipeInvalid, load_recipe, recipe_warnings
from mes.core.recipe_diff import diff_recipes, summary
from mes.services import recipes


@click.group("recipe")
def recipe_group() -> None:
    """Master recipes (ISA-88): files, versions, bundles."""


def _read(path: Path) -> bytes:
    return read_file(path, "a recipe file")


@recipe_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Check recipe FILES against the schema and the recipe rules; list every problem."""
    failed = 0
    for path in files:
        try:
            compiled = load_recipe(_read(path), path.name)
        except RecipeInvalid as invalid:
            failed += 1
            for line in [*invalid.lines(), *invalid.warning_lines()]:
                click.echo(line)
            click.echo(f"{path}: {len(invalid.problems)} problem(s)", err=True)
        except InvalidInput as error:
            failed += 1
            click.echo(f"{path}: {error}", err=True)
        else:
            for line in compiled.warnings:
                click.echo(line)
            phases = sum(1 for _ in compiled.phases())
            click.echo(
                f"{path}: valid — {compiled.recipe_code} v{compiled.version}, {phases} phases, "
                f"content hash {compiled.content_hash}"
            )
    if failed:
        sys.exit(1)


@recipe_group.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the compiled canonical JSON.")
def show_command(file: Path, as_json: bool) -> None:
    """Compile a recipe FILE: its canonical JSON (--json) or a summary with its content hash."""
    compiled = load_recipe(_read(file), file.name)
    if as_json:
        sys.stdout.buffer.write(compiled.canonical + b"\n")
        return
    data = compiled.data
    click.echo(f"{compiled.recipe_code} v{compiled.version} — {compiled.title}")
    click.echo(f"Product: {data['product']['code']} {data['product']['name']}")
    click.echo(f"Content hash (SHA-256 of RFC 8785 JSON): {compiled.content_hash}")
    for unit in data["unit_procedures"]:
        click.echo(f"  {unit['name']}")
        for operation in unit["operations"]:
            ordering = ORDERING_WORDS[operation["ordering"]].change
            click.echo(f"    {operation['name']} ({ordering})")
            for phase in operation["phases"]:
                verify = f", verified by {phase['verify']}" if phase["verify"] else ""
                click.echo(f"      - {phase['name']} [{phase['perform']}{verify}]")
    _show_critical(data)


def _show_critical(data: dict[str, Any]) -> None:
    """The critical parameters, the milestones recorded and the turnaround target, if declared."""
    critical = critical_inputs(data)
    if critical:
        click.echo("Critical parameters:")
        for c in critical:
            unit = f", {c.unit}" if c.unit else ""
            click.echo(f"  {c.criticality.value.upper()} {c.label} ({c.parameter}{unit})")
    milestones = milestone_inputs(data)
    if milestones:
        click.echo("Milestones recorded:")
        for name, (phase_id, value_id) in milestones.items():
            click.echo(f"  {point_title(name)}: {phase_id}.{value_id}")
    turnaround = turnaround_of(data)
    if turnaround is not None:
        units = {unit["id"]: unit["name"] for unit in data["unit_procedures"]}
        click.echo("Turnaround target:")
        for line in turnaround_words(turnaround, units):
            click.echo(f"  {line}")


@recipe_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.pass_obj
def import_command(state: CliState, file: Path) -> None:
    """Hub: create a draft version from a recipe FILE (or replace the same draft)."""
    text = _read(file)
    with state.runtime().uow() as uow:
        version = recipes.import_recipe(uow, command_context(), text, file.name)
        for line in recipe_warnings(text, file.name):
            click.echo(line)
        click.echo(
            f"{recipes.label(version)} is {STATE_TITLES[VersionState(version.status)].lower()} "
            f"(id {version.id}, content hash {version.content_hash})"
        )


@recipe_group.command("list")
@click.pass_obj
def list_command(state: CliState) -> None:
    """Hub: every version and its status. Spoke: every installed version."""
    runtime = state.runtime()
    ctx = command_context()
    with runtime.uow() as uow:
        if runtime.site.is_spoke:
            for item in recipes.installed_recipes(uow, ctx):
                click.echo(
                    f"{recipes.label(item)}\tin use from {item.effective_from.isoformat()}\t"
                    f"{item.title}\t{item.content_hash[:16]}"
                )
            return
        for version in recipes.list_versions(uow, ctx):
            status = STATE_TITLES[VersionState(version.status)]
            since = f" from {version.effective_from.isoformat()}" if version.effective_from else ""
            click.echo(
                f"{recipes.label(version)}\t{status}{since}\t{version.title}\t"
                f"{version.content_hash[:16]}"
            )


def _compiled(state: CliState, reference: str) -> tuple[str, dict[str, Any]]:
    """A recipe file on disk, or a hub version written CODE@N (or its ID)."""
    path = Path(reference)
    if path.exists():
        return path.name, load_recipe(_read(path), path.name).data
    with state.runtime().uow() as uow:
        version = recipes.find_version(uow, command_context(), reference)
        return recipes.label(version), recipes.compiled_of(version)


@recipe_group.command("diff")
@click.argument("old")
@click.argument("new")
@click.pass_obj
def diff_command(state: CliState, old: str, new: str) -> None:
    """What changed from OLD to NEW (recipe files, or hub versions written CODE@N)."""
    old_name, old_data = _compiled(state, old)
    new_name, new_data = _compiled(state, new)
    changes = diff_recipes(old_data, new_data)
    click.echo(f"{old_name} → {new_name}: {summary(changes)}")
    for change in changes:
        click.echo(f"  {change.text}")


@recipe_group.command("publish")
@click.argument("version")
@click.option("--site", "sites", multiple=True, required=True, help="Target site code (repeat).")
@out_option(required=True)
@click.pass_obj
def publish_command(state: CliState, version: str, sites: tuple[str, ...], out: Path) -> None:
    """Hub: write a signed bundle of an effective VERSION (CODE@N) for the given sites."""
    with state.runtime().uow() as uow:
        ctx = command_context()
        found = recipes.find_version(uow, ctx, version)
        name = recipes.label(found)
        token, publication = recipes.publish(uow, ctx, found.id, sites)
    out.write_text(token + "\n", encoding="ascii")
    click.echo(f"Wrote {name} for {', '.join(publication.sites)} to {out}")


@recipe_group.command("install")
@click.argument("file", type=click.Path(path_type=Path))
@click.pass_obj
def install_command(state: CliState, file: Path) -> None:
    """Spoke: verify a hub bundle FILE and install its recipe version."""
    with state.runtime().uow() as uow:
        outcome = recipes.install_bundle(uow, command_context(), _read(file), file.name)
        item = outcome.recipe
        if outcome.newly_installed:
            click.echo(
                f"Installed {recipes.label(item)} (in use from {item.effective_from.isoformat()}, "
                f"content hash {item.content_hash})"
            )
        else:
            click.echo(f"{recipes.label(item)} is already installed; nothing changed.")


@recipe_group.command("export-batchml")
@click.argument("source")
@out_option()
@click.pass_obj
def export_batchml_command(state: CliState, source: str, out: Path | None) -> None:
    """Write a recipe FILE or hub VERSION (CODE@N) as B2MML BatchML (master recipe)."""
    path = Path(source)
    if path.exists():
        xml = master_recipe_batchml(load_recipe(_read(path), path.name).data)
    else:
        with state.runtime().uow() as uow:
            ctx = command_context()
            xml = recipes.batchml_export(uow, ctx, recipes.find_version(uow, ctx, source))
    if out is None:
        sys.stdout.buffer.write(xml)
    else:
        out.write_bytes(xml)
        click.echo(f"Wrote {out}")


def register(group: click.Group) -> None:
    """Add the commands of this module."""
    group.add_command(recipe_group)
