"""The review page's download: the executed batch record as signed PDF/A-3b, from the real app.

The hub signs with its document-signing certificate; without one the download is refused with
what to do (never a 500). The signed file is kept per state of the record: asked again, the
same bytes come back.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

from support import NOW
from test_network_pages import browser, hub_app, people, received
from test_qa_pages import completed
from web_helpers import text

from mes.core.certificate import DocumentSigningKey
from mes.services.document_certificate import write_document_key

__all__ = ["completed", "hub_app", "people", "received"]


def test_without_a_certificate_the_download_is_refused_with_what_to_do(hub_app, completed):
    batch_id, _number, _deviation = completed
    response = browser(hub_app, "quinn").get(f"/qa/batches/{batch_id}/record.pdf")
    assert 400 <= response.status_code < 500
    assert "no document-signing certificate" in text(response)
    assert "mes site certificate" in text(response)


def test_qa_downloads_the_signed_record_and_gets_the_kept_copy_again(hub_app, completed, tmp_path):
    batch_id, number, _deviation = completed
    (tmp_path / "keys").mkdir(exist_ok=True)
    write_document_key(tmp_path, DocumentSigningKey.generate("TEST", "Test site", NOW))
    quinn = browser(hub_app, "quinn")
    response = quinn.get(f"/qa/batches/{batch_id}/record.pdf")
    assert response.status_code == 200, text(response)
    assert response.mimetype == "application/pdf"
    assert f'filename="{number}-record.pdf"' in response.headers["Content-Disposition"]
    pdf = tmp_path / "downloaded.pdf"
    pdf.write_bytes(response.data)
    signature = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True).stdout
    assert "Signature is Valid" in signature and "Total document signed" in signature
    shown = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert number in shown and "Executed batch record" in shown
    assert quinn.get(f"/qa/batches/{batch_id}/record.pdf").data == response.data
    kept = list((tmp_path / "records").glob(f"{batch_id}-*.pdf"))
    assert len(kept) == 1


def test_an_issued_record_and_its_folder_are_private_to_the_owner(hub_app, completed, tmp_path):
    batch_id, _number, _deviation = completed
    (tmp_path / "keys").mkdir(exist_ok=True)
    write_document_key(tmp_path, DocumentSigningKey.generate("TEST", "Test site", NOW))
    previous = os.umask(0o022)  # whatever the server's umask, the files it writes are private
    try:
        response = browser(hub_app, "quinn").get(f"/qa/batches/{batch_id}/record.pdf")
    finally:
        os.umask(previous)
    assert response.status_code == 200, text(response)
    records = tmp_path / "records"
    found = [records, *records.rglob("*")]
    assert any(p.suffix == ".pdf" and p.parent == records for p in found)
    modes = {str(p.relative_to(tmp_path)): f"{stat.S_IMODE(p.stat().st_mode):04o}" for p in found}
    private = {p: ("0700" if (tmp_path / p).is_dir() else "0600") for p in modes}
    assert modes == private


def test_after_a_new_entry_the_download_is_the_newest_record_and_the_earlier_one_is_kept(
    hub_app, completed, tmp_path
):
    from test_qa_pages import fresh
    from web_helpers import post_form

    from mes.pdf.issue import IssueNote

    batch_id, _number, deviation = completed
    (tmp_path / "keys").mkdir(exist_ok=True)
    write_document_key(tmp_path, DocumentSigningKey.generate("TEST", "Test site", NOW))
    quinn = browser(hub_app, "quinn")
    first = quinn.get(f"/qa/batches/{batch_id}/record.pdf")
    assert first.status_code == 200, text(first)
    page = f"/qa/batches/{batch_id}"
    assessment = {
        "classification": "minor", "description": "Viability below the action limit.",
        "impact": "None.", "root_cause": "Transport delay.", "capa": "",
    }  # fmt: skip
    saved = post_form(
        quinn, f"{page}/deviations/{deviation}/assessment", fresh(quinn, page, assessment),
        page=page,
    )  # fmt: skip
    assert saved.status_code == 303, text(saved)
    newest = quinn.get(f"/qa/batches/{batch_id}/record.pdf")
    assert newest.status_code == 200 and newest.data != first.data
    assert quinn.get(f"/qa/batches/{batch_id}/record.pdf").data == newest.data
    kept = sorted((tmp_path / "records").glob(f"{batch_id}-*.json"))
    notes = sorted((IssueNote.read(path) for path in kept), key=lambda n: n.review_head[0])
    assert [n.sha256 for n in notes] == [
        hashlib.sha256(first.data).hexdigest(),
        hashlib.sha256(newest.data).hexdigest(),
    ]
    assert notes[1].review_head[0] == notes[0].review_head[0] + 1
    assert len(list((tmp_path / "records").glob(f"{batch_id}-*.pdf"))) == 2
