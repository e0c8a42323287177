"""A record issued at release is superseded when entries are appended after release.

The batch of ``test_issued_record`` (made at SPK1, sent to the hub, reviewed and released by QA
Quinn) gets two entries after its release in the hub's review chain, appended as the review's
own actions append (the after-release actions of issue 17 append their kinds the same way; the
spoke's ledger entries after release are printed alike: tests/unit/
test_after_release_in_the_printed_record.py). Then the hub issues a new record and keeps the old one; ``mes verify --against-hub`` of
the old file (a real subprocess) names the newer record, its issue time and what was added, and
exits 3; the new file verifies against the hub (exit 0). Files are read back with pdfsig,
pdftotext and qpdf. SQLite and PostgreSQL (hub and spoke on two databases, ``sync_sites``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from support import NOW
from sync_sites import Network, net
from test_issued_record import (
    HOURS,
    QA_AT,
    hub_runtime,
    make_batch,
    one_line,
    page_texts,
    pdfsig,
    qa,
    release,
    review_everything,
    run,
    send,
)
from test_pdf_cli import hub_instance

from mes.core.audit import Actor
from mes.core.record import after_release_summary
from mes.core.review import ReviewKind
from mes.pdf.issue import issue_record, issued_records, records_folder
from mes.pdf.readback import squeezed
from mes.services import review

AFTER = QA_AT + 3 * HOURS  # the release was at QA_AT + 1 h
FOLLOW_UP = ({"capa": "CAPA-2026-031"}, {"impact": "None: the recipient is well at day 28."})
SUPERSEDED = 3  # the exit code of a valid record the hub has superseded (mes.cli.pdf)


def appended_at_the_hub(net: Network, batch_id: str, deviation: str) -> None:
    """Two review-chain entries at the hub after release, sealed by the hub."""
    quinn = Actor(user_id=net.hub_ids["quinn"], username="quinn", name="Quinn Hub")
    with net.hub() as uow:
        view = review.load_review(uow, batch_id, lock=True)
        for minutes, assessment in enumerate(FOLLOW_UP, start=5):
            view.review._append(
                ReviewKind.DEVIATION_ASSESSED, {"deviation": deviation, "assessment": assessment},
                quinn, AFTER + timedelta(minutes=minutes), "QA office",
            )  # fmt: skip
        review.commit_review(uow, view)


def mes_verify(instance: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mes.cli", "--instance", str(instance), "verify", *args],
        capture_output=True, text=True, timeout=300, input="",
        env={**os.environ, "MES_INSTANCE": ""},
    )  # fmt: skip


def test_an_older_record_is_superseded_by_the_newest_which_shows_what_came_after_release(
    net, tmp_path
):
    site = net.connected()
    batch_id, deviation = make_batch(site)
    send(net, site, batch_id)
    runtime, _certificate = hub_runtime(net)
    review_everything(net, batch_id, deviation)
    release(net, batch_id)
    released = issue_record(runtime, qa(net, QA_AT + 2 * HOURS), batch_id)
    assert released.made_now

    appended_at_the_hub(net, batch_id, deviation)
    newest = issue_record(runtime, qa(net, AFTER + HOURS), batch_id)
    again = issue_record(runtime, qa(net, AFTER + 2 * HOURS), batch_id)
    # A new issue since the chains moved; asked again, the same newest; the old one kept.
    assert newest.made_now and newest.pdf != released.pdf
    assert (again.made_now, again.pdf, again.issued_at) == (
        False,
        newest.pdf,
        "2026-11-22T13:00:00Z",
    )
    notes = issued_records(runtime.settings, batch_id)
    assert [(n.sha256, n.issued_at) for n in notes] == [
        (released.sha256, "2026-11-22T11:00:00Z"),
        (newest.sha256, "2026-11-22T13:00:00Z"),
    ]
    assert notes[1].ledger_head == notes[0].ledger_head
    assert notes[1].review_head[0] == notes[0].review_head[0] + 2
    folder = records_folder(runtime.settings)
    for note in notes:
        kept = folder / f"{batch_id}-{note.record_hash}-issued.pdf"
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == note.sha256

    # The newest record: signed whole, sound, and its "After release" section shows both entries.
    old, new = tmp_path / "released.pdf", tmp_path / "newest.pdf"
    old.write_bytes(released.pdf)
    new.write_bytes(newest.pdf)
    assert "Signature Validation: Signature is Valid." in pdfsig(new)
    assert run("qpdf", "--check", str(new)).returncode == 0
    text = one_line(" ".join(page_texts(new)))
    assert "After release" in text and "After release" not in one_line(" ".join(page_texts(old)))
    assert "Certification Final" in text
    for words in (
        "Hub review chain HUB entry",
        "Quinn Hub (quinn) at QA office: deviation assessed — deviation:",
        "capa: CAPA-2026-031",
        "impact: None: the recipient is well at day 28.",
    ):
        assert squeezed(words) in squeezed(text), words

    # mes verify --against-hub: the old file is superseded (exit 3), the newest is current.
    instance = hub_instance(net).path
    verified = mes_verify(instance, str(old), "--against-hub")
    assert (verified.returncode, verified.stderr) == (SUPERSEDED, ""), verified.stderr
    added = ", ".join(
        after_release_summary({"kind": ReviewKind.DEVIATION_ASSESSED, "payload": a})
        for a in FOLLOW_UP
    )
    assert added == "deviation assessed, deviation assessed"
    line = f"superseded by record {newest.sha256} issued 2026-11-22T13:00:00Z: 2 entries: {added}"
    lines = verified.stdout.splitlines()
    assert lines[0] == "ok: released.pdf"
    assert (
        "  The hub's database holds every entry of this record, and entries added since." in lines
    )
    assert line in lines
    assert "This record's signature is valid" in verified.stdout
    current = mes_verify(instance, str(new), "--against-hub")
    assert (current.returncode, current.stderr) == (0, "")
    assert current.stdout.splitlines()[-1] == "  The hub's database holds the same entries."
    assert len(issued_records(runtime.settings, batch_id)) == 2  # verifying issued nothing new
    assert NOW < AFTER


__all__ = ["net"]  # the fixture, imported from sync_sites
