"""``mes report comparability CODE --from DATE --to DATE --out FILE.pdf``: signed reports.

The hub writes the comparability report of a recipe for a period as signed PDF/A-3b to
FILE.pdf, and its data as FILE.csv beside it (the CSV's SHA-256 is printed in the PDF and the
CSV is embedded in it: ``mes verify FILE.pdf`` checks both). A period with no batches is still
reported: the report says so.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from mes.cli.common import DATE, CliState, command_context, out_option
from mes.core.errors import InvalidInput


def _targets(out: Path) -> tuple[Path, Path]:
    """FILE.pdf and FILE.csv, both new, in a folder that exists."""
    if out.suffix.lower() != ".pdf":
        raise InvalidInput(
            f"--out {out} does not end in .pdf.",
            what_to_do="Give the report's file name, e.g. --out report.pdf "
            "(the data is written beside it as report.csv).",
        )
    csv = out.with_suffix(".csv")
    for path in (out, csv):
        if path.exists():
            raise InvalidInput(f"{path} exists already.", what_to_do="Choose another --out file.")
    if not out.parent.is_dir():
        raise InvalidInput(f"There is no folder {out.parent}.", what_to_do="Create it first.")
    return out, csv


@click.group("report")
def report_group() -> None:
    """Signed reports of the network, issued by the hub."""


@report_group.command("comparability")
@click.argument("code")
@click.option("--from", "date_from", type=DATE, required=True, help="First day (YYYY-MM-DD).")
@click.option("--to", "date_to", type=DATE, required=True, help="Last day (YYYY-MM-DD).")
@out_option("The report's PDF (FILE.pdf; the CSV goes beside it as FILE.csv).", required=True)
@click.pass_obj
def comparability_command(
    state: CliState, code: str, date_from: date, date_to: date, out: Path
) -> None:
    """Write the comparability report of recipe CODE for a period as signed PDF/A and CSV."""
    from mes.pdf.comparability import issue_comparability_report
    from mes.services.document_certificate import load_document_key

    pdf_path, csv_path = _targets(out)
    runtime = state.runtime()
    load_document_key(runtime.settings)  # a spoke, or a hub without its certificate: say so first
    issued = issue_comparability_report(runtime, command_context(), code, date_from, date_to)
    pdf_path.write_bytes(issued.pdf)
    csv_path.write_bytes(issued.csv)
    report = issued.report
    batches = (
        f"{report.batches} batches from {len(report.sites)} sites"
        if report.batches
        else "no batches in the period"
    )
    click.echo(
        f"Wrote {pdf_path}: comparability report of {report.recipe_code}, {report.date_from} to "
        f"{report.date_to}, {batches}, {len(report.parameters)} parameters, "
        f"{len(issued.pdf):,} bytes, signed by the hub."
    )
    click.echo(f"Wrote {csv_path}: its data, SHA-256 {report.csv_sha256}.")


def register(group: click.Group) -> None:
    """Add ``report`` to the ``mes`` command."""
    group.add_command(report_group)
