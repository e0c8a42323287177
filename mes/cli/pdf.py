"""``mes pdf``, ``mes verify FILE.pdf`` and ``mes site certificate``: signed PDF batch records.

``mes pdf BATCH --out FILE`` writes the executed batch record as signed PDF/A-3b (at the hub).

``mes verify`` runs anywhere: at the hub it trusts the hub's own certificate; an auditor with
only the file gives the hub's certificate with ``--trust``. It tells a batch record from a
comparability report (``mes report comparability``) by what the PDF embeds. Its exit codes:

* 0 — the file verifies (and, with ``--against-hub``, the hub holds exactly its entries);
* 1 — a failure, one line each naming what failed;
* 3 — (``--against-hub``) the file verifies, its signature is valid, but the hub holds entries
  added since (after release: results, custody, the bedside, final certification): it prints
  "superseded by record <SHA-256 of the newest PDF> issued <UTC time>: <what was added>".
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from mes.cli.common import CliState, command_context, out_option, read_file
from mes.core.certificate import load_certificate
from mes.core.errors import ConfigurationError, InvalidInput
from mes.services.document_certificate import (
    document_certificate_pem,
    ensure_document_certificate,
    load_document_key,
)
from mes.services.record_copy import hub_chains
from mes.settings import load_settings

SUPERSEDED = 3  # exit code: the record verifies, but the hub has issued a newer one


def _trusted(state: CliState, trust: tuple[Path, ...]) -> list[x509.Certificate]:
    """The certificates given with --trust, or else this hub's own."""
    if trust:
        certificates = []
        for path in trust:
            try:
                certificates.append(load_certificate(read_file(path, "a certificate")))
            except ValueError:
                raise InvalidInput(
                    f"{path} is not an X.509 certificate (PEM or DER).",
                    what_to_do="Give the hub's certificate, e.g. from 'mes site certificate'.",
                ) from None
        return certificates
    how = "Give the issuing hub's certificate with --trust CERT.pem."
    try:
        pem = document_certificate_pem(load_settings(state.instance))
    except ConfigurationError:
        raise InvalidInput("There is no certificate to trust here.", what_to_do=how) from None
    if pem is None:
        raise InvalidInput(
            "This instance has no document-signing certificate to trust.", what_to_do=how
        )
    return [load_certificate(pem)]


@click.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--trust",
    type=click.Path(path_type=Path),
    multiple=True,
    help="The hub certificate (PEM) to trust (default: this hub's own).",
)
@click.option(
    "--against-hub",
    is_flag=True,
    help="Also compare the record's entries with this hub's database.",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A comparability report's CSV to check against it (default: FILE.csv beside it).",
)
@click.pass_obj
def verify_command(
    state: CliState, file: Path, trust: tuple[Path, ...], against_hub: bool, data: Path | None
) -> None:
    """Check a PDF the hub signed: a batch record or a comparability report.

    A batch record: its signature, its embedded ledger, and (at the hub) the database; a record
    the hub has since superseded names the newest (exit 3). A comparability report: its signature, its embedded data against the digest it prints, and
    the CSV beside it.
    """
    # pyHanko is slow to import: only when used
    from mes.pdf.verify import document_kind, verify_record_pdf, verify_report_pdf

    pdf = read_file(file, "a PDF file")
    if not pdf.startswith(b"%PDF-"):
        raise InvalidInput(f"{file} is not a PDF file.")
    certificates = _trusted(state, trust)
    if document_kind(pdf) == "report":
        if against_hub:
            raise InvalidInput(
                f"{file} is a comparability report: --against-hub compares a batch record's "
                "entries with the hub's database.",
                what_to_do="Verify the report without --against-hub.",
            )
        csv = data if data is not None else file.with_suffix(".csv")
        beside = (csv.name, read_file(csv, "a CSV file")) if data or csv.is_file() else None
        _outcome(file, verify_report_pdf(pdf, certificates, beside))
        return
    if data is not None:
        raise InvalidInput(
            f"{file} is a batch record: --data checks a comparability report's CSV.",
            what_to_do="Verify the record without --data.",
        )
    lookup = newest = None
    if against_hub:
        runtime = state.runtime()
        ctx = command_context()

        def lookup(batch_id: str) -> Mapping[str, list[tuple[int, str]]]:
            with runtime.uow(read_only=True) as uow:
                chains = hub_chains(uow, ctx, batch_id)
            return {"ledger": chains.ledger, "review": chains.review}

        def newest(batch_id: str, heads: Mapping[str, int]) -> Any:
            from mes.pdf.issue import superseding_record

            return superseding_record(runtime, ctx, batch_id, heads)

    outcome = verify_record_pdf(pdf, certificates, lookup, newest)
    _outcome(file, outcome)
    if outcome.superseded is not None:
        click.echo(outcome.superseded.line)
        click.echo(
            "  This record's signature is valid: it is the record as the hub issued it then. "
            "The newer record holds every entry of this one and those added since."
        )
        sys.exit(SUPERSEDED)


def _outcome(file: Path, outcome: Any) -> None:
    """Ok and the summary, or one FAILED line per problem and exit 1."""
    if not outcome.ok:
        for problem in outcome.problems:
            click.echo(f"FAILED: {problem}", err=True)
        sys.exit(1)
    click.echo(f"ok: {file.name}")
    for line in outcome.summary():
        click.echo(f"  {line}")


@click.command("certificate")
@out_option("Also write the certificate (PEM) to this file, e.g. for auditors.")
@click.pass_obj
def certificate_command(state: CliState, out: Path | None) -> None:
    """Show the hub's document-signing certificate, creating it once if this hub has none."""
    info = ensure_document_certificate(state.runtime(), command_context())
    if info.created:
        click.echo("Created the hub's document-signing certificate (ECDSA P-256).")
    click.echo(f"Subject: {info.subject}")
    click.echo(f"Valid until: {info.not_after}")
    click.echo(f"SHA-256 fingerprint: {info.fingerprint}")
    if out is not None:
        out.write_bytes(info.pem)
        click.echo(f"Wrote the certificate to {out}")


@click.command("pdf")
@click.argument("batch")
@out_option("Where to write the PDF (an existing file is refused).", required=True)
@click.pass_obj
def pdf_command(state: CliState, batch: str, out: Path) -> None:
    """Write BATCH's executed record (number or ID) as signed PDF/A-3b to --out."""
    from mes.pdf.issue import issue_record
    from mes.services.batches import find_batch_id

    if out.exists():
        raise InvalidInput(f"{out} exists already.", what_to_do="Choose another --out file.")
    if not out.parent.is_dir():
        raise InvalidInput(f"There is no folder {out.parent}.", what_to_do="Create it first.")
    runtime = state.runtime()
    load_document_key(runtime.settings)  # a spoke, or a hub without its certificate: say so first
    ctx = command_context()
    with runtime.uow(read_only=True) as uow:
        batch_id = find_batch_id(uow, ctx, batch)
    issued = issue_record(runtime, ctx, batch_id)
    out.write_bytes(issued.pdf)
    how = "made and signed now" if issued.made_now else "as issued earlier for this state"
    click.echo(f"Wrote {out}: batch {issued.number}, {len(issued.pdf):,} bytes ({how}).")


def register(group: click.Group) -> None:
    """Add ``pdf``, ``verify``, and ``certificate`` to the ``site`` group (mes.cli.instance)."""
    group.add_command(pdf_command)
    group.add_command(verify_command)
    site = group.commands.get("site")
    if not isinstance(site, click.Group):  # pragma: no cover - registration order is fixed
        raise RuntimeError("mes.cli.instance must be registered before mes.cli.pdf")
    site.add_command(certificate_command)
