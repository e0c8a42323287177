"""The signed PDF of a real batch, issued at the hub (mes.pdf.issue), checked with real tools.

A batch is made at spoke SPK1 through its services — a viability outside alert limits, a value
corrected after signing with a reason (the calculation worked out again falls outside action
limits and raises a deviation, acknowledged by the supervisor), a syringe lot, a scanner and a
cell counter — sent to the hub as a chunk, and reviewed there by QA Quinn: each exception marked
reviewed, the deviation assessed and closed, the batch released. The hub then issues the record
and the file is read back by poppler (``pdfsig``, ``pdftotext``, ``pdftoppm``), ``qpdf`` and
pyHanko. The strings looked for in the text are worked out from the hub's ledger and review
chain with the record's own wording functions (mes.core.record), so a value, a correction or a
signature missing from the print fails the test.

Hub and spoke run on two separate databases of the same kind (see ``sync_sites``).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from batch_helpers import Spoke
from signed_record_helpers import flip_byte_in_a_stream
from support import NOW, PASSWORD, user_ctx
from sync_sites import CLI, SPOKE, Network, net
from test_batch_release import finish

from mes.core.batch import DEVIATION_CATEGORY_TITLES, DeviationCategory, EntryKind
from mes.core.certificate import load_certificate
from mes.core.record import manifestation_text, shown_value
from mes.core.review import ASSESSMENT_TITLES, ReviewKind
from mes.pdf.issue import IssuedRecord, issue_record, records_folder
from mes.pdf.sign import verify_pdf
from mes.pdf.verify import compare_chains, embedded_file, verify_record_pdf
from mes.services import batches, ingest, outbox, review
from mes.services.context import Context
from mes.services.document_certificate import ensure_document_certificate
from mes.services.esign import Credentials
from mes.services.record_copy import hub_chains
from mes.services.runtime import Runtime
from mes.store.files import write_private

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOURS = timedelta(hours=1)
QA_AT = NOW + timedelta(days=1)
CORRECTION_REASON = "Counter re-read: the first reading was of the diluted sample"
INVESTIGATION = {
    "classification": "minor",
    "description": "Total viable cells below the action limit after the counter was re-read.",
    "impact": "None: the dose is made from the viable cells measured at harvest.",
    "root_cause": "The first reading was of the diluted sample.",
}
VALUE_KINDS = (EntryKind.VALUE_RECORDED, EntryKind.VALUE_CORRECTED, EntryKind.CALCULATED)
SIGNED_REVIEW_KINDS = (
    ReviewKind.EXCEPTION_REVIEWED,
    ReviewKind.DEVIATION_CLOSED,
    ReviewKind.BATCH_RELEASED,
)


# --- the batch at the spoke --------------------------------------------------------------------


def make_batch(site: Spoke) -> tuple[str, str]:
    """A complete batch: viability 80 % (alert), viable cells corrected after signing so that
    the total falls below its action limit (a deviation, acknowledged by Sam); (ID, deviation)."""
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)  # verified by Sam the moment it was performed: a rubber stamp
    site.do_count(batch_id, viability="80.0")
    with site.uow() as uow:
        corrected = batches.correct_value(
            uow, site.ctx("olivia", NOW + 20 * timedelta(minutes=1)), batch_id, "count_cells",
            "viable_conc", "0.45", CORRECTION_REASON, Credentials(PASSWORD, "olivia"),
            first_signing_in_session=True,
        )  # fmt: skip
    (deviation,) = corrected.state.deviations
    site.comment(batch_id, deviation, "The total is below 100 after the re-read; QA told.",
                 at=NOW + 25 * timedelta(minutes=1))  # fmt: skip
    site.acknowledge(batch_id, deviation, who="sam", at=NOW + 30 * timedelta(minutes=1))
    finish(site, batch_id, NOW)  # the other phases, 3 h later, and Sam signs it complete
    return batch_id, deviation


def send(net: Network, site: Spoke, batch_id: str) -> None:
    """Push the whole batch to the hub as one chunk."""
    with site.uow() as uow:
        token, _first, _last = outbox.chunk_after(uow, NOW + 6 * HOURS, batch_id, 0, 500)
    with net.hub() as uow:
        ingest.ingest_chunk(uow, NOW + 6 * HOURS, SPOKE, token)


# --- QA at the hub -------------------------------------------------------------------------------


def qa(net: Network, at: datetime = QA_AT) -> Context:
    return user_ctx(net.hub_ids["quinn"], at=at, terminal="QA office")


def review_everything(net: Network, batch_id: str, deviation: str) -> None:
    """Assess and close the deviation, then mark every exception reviewed (not yet released)."""
    with net.hub() as uow:
        review.assess_deviation(uow, qa(net), batch_id, deviation, INVESTIGATION)
    with net.hub() as uow:
        review.close_deviation(
            uow, qa(net, QA_AT + 5 * timedelta(minutes=1)), batch_id, deviation,
            Credentials(PASSWORD), first_signing_in_session=False,
        )  # fmt: skip
    with net.hub() as uow:
        waiting = review.review_batch(uow, qa(net), batch_id).unreviewed
    assert {f.category.value for f in waiting} >= {"alert_limit", "correction"}, waiting
    for minutes, finding in enumerate(waiting, start=10):
        with net.hub() as uow:
            review.mark_reviewed(
                uow, qa(net, QA_AT + minutes * timedelta(minutes=1)), batch_id, finding.key,
                Credentials(PASSWORD), first_signing_in_session=False,
                note="Checked against the printout" if finding.category.value == "correction"
                else None,
            )  # fmt: skip


def release(net: Network, batch_id: str) -> None:
    with net.hub() as uow:
        review.decide_batch(
            uow, qa(net, QA_AT + HOURS), batch_id, "released", Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip


def hub_runtime(net: Network) -> tuple[Runtime, bytes]:
    """The hub's runtime, with its document-signing certificate made; (runtime, certificate)."""
    runtime = net.runtime("hub")
    (net.folder / "hub" / "keys").mkdir(parents=True)
    return runtime, ensure_document_certificate(runtime, CLI).pem


def sent_to_the_hub(net: Network) -> tuple[Runtime, bytes, str, str]:
    """A batch made at the spoke (:func:`make_batch`) and sent to the hub, whose runtime has its
    document-signing certificate; (runtime, certificate, batch ID, deviation)."""
    site = net.connected()
    batch_id, deviation = make_batch(site)
    send(net, site, batch_id)
    runtime, certificate = hub_runtime(net)
    return runtime, certificate, batch_id, deviation


@dataclass
class Made:
    """A batch made, sent, reviewed and released, with its record issued before and after."""

    runtime: Runtime
    certificate: bytes
    batch_id: str
    deviation: str
    before: IssuedRecord  # issued with every exception reviewed, before the release
    again: IssuedRecord  # asked for again, nothing added since
    after: IssuedRecord  # issued after the release


@pytest.fixture
def made(net) -> Made:
    runtime, certificate, batch_id, deviation = sent_to_the_hub(net)
    review_everything(net, batch_id, deviation)
    before = issue_record(runtime, qa(net, QA_AT + 40 * timedelta(minutes=1)), batch_id)
    again = issue_record(runtime, qa(net, QA_AT + 45 * timedelta(minutes=1)), batch_id)
    release(net, batch_id)
    after = issue_record(runtime, qa(net, QA_AT + 2 * HOURS), batch_id)
    return Made(runtime, certificate, batch_id, deviation, before, again, after)


# --- reading the file back ---------------------------------------------------------------------


def written(folder: Path, name: str, pdf: bytes) -> Path:
    path = folder / name
    path.write_bytes(pdf)
    return path


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def pdfsig(path: Path) -> str:
    result = run("pdfsig", str(path))  # exits 0 even on a digest mismatch: read the text
    return result.stdout + result.stderr


def page_texts(path: Path) -> list[str]:
    result = run("pdftotext", "-layout", str(path), "-")
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\f")[:-1]


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def hub_view(net: Network, batch_id: str) -> review.ReviewView:
    with net.hub() as uow:
        return review.load_review(uow, batch_id)


def expected_values(view: review.ReviewView) -> tuple[list[str], list[str]]:
    """From the hub's ledger: each value's line ('Label = value unit') and each change's words
    ('original → new — reason: …'), as the record prints them."""
    zone = view.time_zone
    versions: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for entry in view.record:
        body = entry.body
        if body["kind"] not in VALUE_KINDS:
            continue
        p = body["payload"]
        spec = view.batch.procedure.phases[p["phase"]].value_spec(p["value"])
        shown = shown_value(p["recorded"], spec, zone)
        versions.setdefault((p["phase"], p["value"]), []).append((shown, p))
    lines, changes = [], []
    for (phase, value_id), history in versions.items():
        spec = view.batch.procedure.phases[phase].value_spec(value_id)
        calculated = any(
            c["id"] == value_id for c in view.batch.procedure.phases[phase].spec["calculations"]
        )
        lines.append(f"{spec['label']}{' (calculated)' if calculated else ''} = {history[-1][0]}")
        for (before, _), (after, payload) in pairwise(history):
            changes.append(
                f"Correction of entry {payload['corrects']}: {before} → {after} — "
                f"reason: {payload['reason']}"
            )
    return lines, changes


def signatures(view: review.ReviewView) -> tuple[list[str], list[str]]:
    """Every manifestation in words: the spoke's (ledger signatures) and QA's (review chain)."""
    zone = view.time_zone
    spoke = [
        manifestation_text(e.body["payload"]["manifestation"], zone)
        for e in view.record
        if e.body["kind"] == EntryKind.SIGNATURE
    ]
    hub = [
        manifestation_text(e.body["payload"]["manifestation"], zone)
        for e in view.review_entries
        if e.body["kind"] in SIGNED_REVIEW_KINDS
    ]
    return spoke, hub


# --- the tests -----------------------------------------------------------------------------------


def test_the_released_record_is_signed_intact_and_shows_every_signature_value_and_correction(
    net, made, tmp_path, database_url
):
    path = written(tmp_path, "released.pdf", made.after.pdf)
    trusted = [load_certificate(made.certificate)]
    # 1. poppler: the signature holds over the whole document.
    report = pdfsig(path)
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Total document signed" in report, report
    # 2. pyHanko: intact, valid, made with the trusted hub certificate, covering the file.
    check = verify_pdf(made.after.pdf, trusted)
    assert (check.intact, check.valid, check.trusted, check.covers_whole_file) == (
        True,
        True,
        True,
        True,
    ), check.problems
    assert check.problems == ()
    # 3. qpdf finds nothing wrong with the structure.
    qpdf = run("qpdf", "--check", str(path))
    assert qpdf.returncode == 0, qpdf.stdout + qpdf.stderr
    assert "No syntax or stream encoding errors found" in qpdf.stdout
    # 4. Every manifestation, value and correction of the ledger and the review is printed.
    view = hub_view(net, made.batch_id)
    assert view.time_zone == "Europe/London"
    pages = page_texts(path)
    text = one_line(" ".join(pages))
    spoke_signed, qa_signed = signatures(view)
    meanings = [e.body["payload"]["manifestation"]["meaning"] for e in view.review_entries
                if e.body["kind"] in SIGNED_REVIEW_KINDS]  # fmt: skip
    assert {"reviewed", "closed", "released"} == set(meanings)
    assert len(spoke_signed) >= 10 and len(qa_signed) == len(meanings)
    for manifestation, times in Counter(spoke_signed + qa_signed).items():
        assert text.count(manifestation) >= times, manifestation
    values, changes = expected_values(view)
    assert len(changes) == 2  # viable cells corrected, the total worked out again
    missing = [v for v in values + changes if v not in text]
    assert missing == []
    assessed = next(
        e for e in view.review_entries if e.body["kind"] == ReviewKind.DEVIATION_ASSESSED
    )
    classification = assessed.body["payload"]["assessment"]["classification"]
    assert f"{ASSESSMENT_TITLES['classification']}: {classification}" in text
    (raised,) = [e.body["payload"] for e in view.record if e.body["kind"] == "deviation_raised"]
    category = DEVIATION_CATEGORY_TITLES[DeviationCategory(raised["category"])]
    assert raised["deviation"] == made.deviation
    assert f"{made.deviation} — {category} — Closed by QA" in text
    # 5. The attachment is exactly the hub's chains, and its hash is on every page's footer.
    document = json.loads(embedded_file(made.after.pdf))
    with net.hub() as uow:
        chains = hub_chains(uow, qa(net), made.batch_id)
    assert [(e["body"]["seq"], e["hash"]) for e in document["ledger"]] == chains.ledger
    assert [(e["body"]["seq"], e["hash"]) for e in document["review"]] == chains.review
    shown = run("qpdf", "--show-attachment=batch-record.json", str(path))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == document
    for number, page in enumerate(pages, start=1):
        footer = [line for line in page.splitlines() if line.strip()][-1]
        assert f"Record SHA-256 {document['record_hash']}" in footer, (number, footer)
        assert f"page {number} of {len(pages)}" in footer
    # 9. The first pages as pictures, to look at.
    ARTIFACTS.mkdir(exist_ok=True)
    prefix = ARTIFACTS / f"issued-record-{database_url.split(':', 1)[0]}"
    for old in ARTIFACTS.glob(f"{prefix.name}-*.png"):
        old.unlink()
    drawn = run("pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "3", str(path), str(prefix))
    assert drawn.returncode == 0, drawn.stderr
    pictures = sorted(ARTIFACTS.glob(f"{prefix.name}-*.png"))
    assert len(pictures) == 3 and all(p.stat().st_size > 2000 for p in pictures)


def test_one_flipped_byte_in_the_signed_content_fails_pdfsig_and_the_check_of_mes_verify(
    made, tmp_path
):
    signed = made.after.pdf
    altered = flip_byte_in_a_stream(signed, occurrence=1)
    (flipped,) = [i for i, (a, b) in enumerate(zip(signed, altered, strict=True)) if a != b]
    byte_range = [int(n) for n in re.search(rb"/ByteRange\s*\[([\d\s]+)\]", signed)[1].split()]
    assert byte_range[0] == 0 and flipped < byte_range[1]  # signed, before the /Contents hex
    report = pdfsig(written(tmp_path, "altered.pdf", altered))
    assert "Signature is Valid" not in report
    assert "Digest Mismatch" in report, report
    assert "Signature is Valid" in pdfsig(written(tmp_path, "genuine.pdf", signed))
    outcome = verify_record_pdf(altered, [load_certificate(made.certificate)])
    assert not outcome.ok
    assert outcome.problems[0] == (
        "PDF signature: the PDF signature does not match the file's content: "
        "it was altered after signing"
    )


def test_a_record_issued_before_the_release_is_kept_until_qa_acts_then_differs_from_the_hub(
    net, made, tmp_path, monkeypatch
):
    trusted = [load_certificate(made.certificate)]

    def lookup(batch_id: str) -> dict[str, list[tuple[int, str]]]:  # as ``mes verify`` does
        with made.runtime.uow(read_only=True) as uow:
            chains = hub_chains(uow, qa(net), batch_id)
        return {"ledger": chains.ledger, "review": chains.review}

    # Asked for again with nothing added: the same signed bytes, not made again.
    assert (made.before.made_now, made.again.made_now, made.after.made_now) == (True, False, True)
    assert made.again.pdf == made.before.pdf
    assert made.after.pdf != made.before.pdf
    kept = sorted(p.name for p in records_folder(made.runtime.settings).glob("*.pdf"))
    assert len(kept) == 2 and all(name.startswith(made.batch_id) for name in kept)

    def no_rendering(*args, **kwargs):
        raise AssertionError("the kept record was rendered again")

    monkeypatch.setattr("mes.pdf.issue.render_record_pdf", no_rendering)
    kept_after = issue_record(made.runtime, qa(net, QA_AT + 3 * HOURS), made.batch_id)
    assert (kept_after.pdf, kept_after.made_now) == (made.after.pdf, False)
    # The record made after the release says so on its first page; the earlier one did not.
    first_pages = {}
    for name, issued in (("before", made.before), ("after", made.after)):
        first_pages[name] = one_line(page_texts(written(tmp_path, f"{name}.pdf", issued.pdf))[0])
    assert "Release decision Released By Quinn Hub (quinn)" in first_pages["after"]
    assert "Release decision No release decision recorded." in first_pages["before"]
    # Against the hub's database: the record issued now matches it …
    now = verify_record_pdf(made.after.pdf, trusted, lookup)
    assert now.problems == []
    assert now.summary()[-1] == "The hub's database holds the same entries."
    # … the one issued before the release lacks the release entry: named as the difference.
    with net.hub() as uow:
        chains = hub_chains(uow, qa(net), made.batch_id)
    last = len(chains.review)
    assert chains.review[-1] == (last, hub_view(net, made.batch_id).review_entries[-1].hash)
    earlier = verify_record_pdf(made.before.pdf, trusted, lookup)
    assert earlier.signature.ok and earlier.record.problems == ()
    assert earlier.problems == [
        f"hub database: review: the hub holds {last} entries, the record only {last - 1} "
        f"(entries {last}–{last} are not in this record)"
    ]
    assert compare_chains(earlier.record.chains, lookup(made.batch_id)) == [
        earlier.problems[0].removeprefix("hub database: ")
    ]


def test_two_requests_for_the_same_record_at_once_both_get_a_whole_signed_file(
    net, tmp_path, monkeypatch
):
    runtime, certificate, batch_id, _deviation = sent_to_the_hub(net)
    folder = records_folder(runtime.settings)
    started: list[bool] = []
    others: list[IssuedRecord] = []

    def meanwhile(path: Path, data: bytes, **options: bool) -> None:
        """Writing the signed file: another request for the same record comes in meanwhile."""
        write_private(path, data, **options)
        if path.parent == folder and path.name.endswith(".tmp") and not started:
            started.append(True)  # once only
            others.append(issue_record(runtime, qa(net, QA_AT + HOURS), batch_id))

    monkeypatch.setattr("mes.pdf.issue.write_private", meanwhile)
    first = issue_record(runtime, qa(net), batch_id)
    monkeypatch.undo()
    (second,) = others
    assert (first.made_now, second.made_now) == (True, True)
    assert first.pdf != second.pdf  # signed at different times
    (kept,) = folder.glob("*.pdf")
    assert kept.read_bytes() in (first.pdf, second.pdf)
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(
        [kept.name, kept.with_suffix(".json").name, kept.with_suffix(".sha256").name]
    )  # the record, its issue note (when, which heads) and its digest
    for issued in (first, second):
        check = verify_pdf(issued.pdf, [load_certificate(certificate)])
        assert check.problems == ()
    again = issue_record(runtime, qa(net, QA_AT + 2 * HOURS), batch_id)
    assert (again.pdf, again.made_now) == (kept.read_bytes(), False)


def test_the_hub_signs_no_copy_of_a_record_that_fails_verification(net):
    from test_batch_release import alter_payload, drop_update_trigger

    from mes.pdf.issue import RecordNotIssued, records_folder
    from mes.store.models import BatchEntry

    runtime, _certificate, batch_id, _deviation = sent_to_the_hub(net)
    drop_update_trigger(net.hub_engine, "batch_entries")
    alter_payload(net.hub_engine, BatchEntry, batch_id, 3, edited=True)
    with pytest.raises(RecordNotIssued) as refused:
        issue_record(runtime, qa(net), batch_id)
    assert "fails verification" in refused.value.message
    assert "entry 3" in refused.value.message
    assert not list(records_folder(runtime.settings).glob("*.pdf"))


__all__ = ["net"]  # the fixture, imported from sync_sites
