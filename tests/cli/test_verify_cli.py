"""``mes site certificate`` and ``mes verify`` as real subprocesses (SQLite and PostgreSQL)."""

from __future__ import annotations

import stat
from datetime import timedelta

import pytest
from cli_helpers import assert_refused, run_bare
from signed_record_helpers import (
    BATCH_ID,
    BATCH_NUMBER,
    SIGNED_AT,
    flip_byte_in_a_stream,
    record_document,
    record_pdf,
)

from mes.core.certificate import DocumentSigningKey, fingerprint
from mes.core.keys import SiteKey
from mes.pdf.sign import sign_pdf
from mes.services.document_certificate import DOCUMENT_CERTIFICATE_FILE, DOCUMENT_KEY_FILE


@pytest.fixture(scope="module")
def site_keys() -> tuple[SiteKey, SiteKey]:
    return SiteKey.generate(), SiteKey.generate()


def hub_key_of(instance) -> DocumentSigningKey:
    return DocumentSigningKey.from_pem(
        (instance.path / DOCUMENT_KEY_FILE).read_bytes(),
        (instance.path / DOCUMENT_CERTIFICATE_FILE).read_bytes(),
    )


def signed_record(key: DocumentSigningKey, document: bytes) -> bytes:
    return sign_pdf(
        record_pdf(document),
        key,
        at=SIGNED_AT,
        reason="Batch record issued",
        location="Central Hub (HUB)",
        name="Central Hub",
    )


@pytest.fixture
def hub(instance):
    assert instance.init().code == 0
    return instance


def test_a_new_hub_has_its_certificate_and_site_certificate_shows_it_without_replacing_it(hub):
    key_file = hub.path / DOCUMENT_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    expected = fingerprint(hub_key_of(hub).certificate)
    first = hub.run("site", "certificate")
    assert first.code == 0, first.err
    assert "Created" not in first.out
    assert f"SHA-256 fingerprint: {expected}\n" in first.out
    assert "Subject: OU=MES site HUB,O=HUB,CN=HUB (HUB) batch records\n" in first.out
    assert hub.run("site", "certificate").out == first.out


def test_a_hub_made_before_certificates_gets_one_once_and_the_audit_trail_says_so(hub, tmp_path):
    (hub.path / DOCUMENT_KEY_FILE).unlink()
    (hub.path / DOCUMENT_CERTIFICATE_FILE).unlink()
    record = tmp_path / "record.pdf"
    record.write_bytes(b"%PDF-1.7\n")
    assert_refused(
        hub.run("verify", str(record)),
        "This instance has no document-signing certificate to trust. "
        "Give the issuing hub's certificate with --trust CERT.pem.",
    )
    out = tmp_path / "hub.pem"
    created = hub.run("site", "certificate", "--out", str(out))
    assert created.code == 0, created.err
    assert created.out.startswith("Created the hub's document-signing certificate (ECDSA P-256).")
    assert out.read_bytes() == (hub.path / DOCUMENT_CERTIFICATE_FILE).read_bytes()
    assert stat.S_IMODE((hub.path / DOCUMENT_KEY_FILE).stat().st_mode) == 0o600
    again = hub.run("site", "certificate")
    assert "Created" not in again.out
    assert fingerprint(hub_key_of(hub).certificate) in again.out
    assert hub.run("audit", "verify").code == 0


def test_a_spoke_has_no_document_certificate(instance):
    assert instance.init(role="spoke", site="SPK1").code == 0
    assert not (instance.path / DOCUMENT_KEY_FILE).exists()
    assert_refused(
        instance.run("site", "certificate"),
        "Only the hub signs PDF documents (batch records, comparability reports); this instance "
        "is a spoke. "
        "Issue and verify signed documents at the hub.",
    )


def test_verify_at_the_hub_trusts_its_own_certificate(hub, tmp_path, site_keys):
    record = tmp_path / "SPK1-2026-0001.pdf"
    record.write_bytes(signed_record(hub_key_of(hub), record_document(*site_keys)))
    result = hub.run("verify", str(record))
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "ok: SPK1-2026-0001.pdf\n"
        "  Signed by HUB (HUB) batch records on 2026-11-25 14:30:00 UTC (certificate SHA-256 "
        f"{fingerprint(hub_key_of(hub).certificate)})\n"
        f"  Batch {BATCH_NUMBER} made at SPK1: 4 ledger entries verified, "
        "2 review entries verified\n"
    )


def test_verify_against_the_hub_names_a_batch_the_hub_does_not_hold(hub, tmp_path, site_keys):
    record = tmp_path / "record.pdf"
    record.write_bytes(signed_record(hub_key_of(hub), record_document(*site_keys)))
    assert_refused(
        hub.run("verify", str(record), "--against-hub"),
        f"This instance holds no batch with the record's batch ID {BATCH_ID}. "
        "Compare the record at the hub that issued it.",
    )


# --- an auditor with the file and the hub's certificate, no instance ------------------------


@pytest.fixture(scope="module")
def auditor_files(tmp_path_factory, site_keys):
    folder = tmp_path_factory.mktemp("auditor")
    hub = DocumentSigningKey.generate("HUB", "Central Hub", SIGNED_AT - timedelta(days=1))
    (folder / "hub.pem").write_bytes(hub.certificate_pem())
    signed = signed_record(hub, record_document(*site_keys))
    (folder / "record.pdf").write_bytes(signed)
    return folder, hub, signed


def test_an_auditor_verifies_the_file_with_the_hubs_certificate(auditor_files):
    folder, _, _ = auditor_files
    result = run_bare("verify", str(folder / "record.pdf"), "--trust", str(folder / "hub.pem"))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("ok: record.pdf\n  Signed by Central Hub (HUB) batch records")
    assert "4 ledger entries verified, 2 review entries verified" in result.stdout


def test_one_flipped_byte_fails_verify_naming_the_pdf_signature(auditor_files, tmp_path):
    folder, _, signed = auditor_files
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(flip_byte_in_a_stream(signed, occurrence=1))
    result = run_bare("verify", str(altered), "--trust", str(folder / "hub.pem"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "FAILED: PDF signature: the PDF signature does not match the file's content: "
        "it was altered after signing"
    ]


def test_an_entry_edited_before_signing_is_named(auditor_files, site_keys, tmp_path):
    folder, hub, _ = auditor_files

    def edit(seq, body):
        if seq == 2:
            body["at"] = "2026-11-25T08:00:00.000000Z"

    record = tmp_path / "edited.pdf"
    record.write_bytes(signed_record(hub, record_document(*site_keys, edit_ledger=edit)))
    result = run_bare("verify", str(record), "--trust", str(folder / "hub.pem"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "FAILED: batch record: ledger entry 2: its content does not match its hash: it was edited\n"
    )


def test_a_record_signed_by_another_certificate_is_not_trusted(auditor_files, site_keys, tmp_path):
    folder, _, _ = auditor_files
    other = DocumentSigningKey.generate("HUB", "Central Hub", SIGNED_AT - timedelta(days=1))
    record = tmp_path / "other.pdf"
    record.write_bytes(signed_record(other, record_document(*site_keys)))
    result = run_bare("verify", str(record), "--trust", str(folder / "hub.pem"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "FAILED: PDF signature: the PDF was signed by 'Central Hub (HUB) batch records' "
        f"(certificate SHA-256 {fingerprint(other.certificate)}), "
        "which is not a trusted hub certificate\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello", "{file} is not a PDF file."),
        (b"", "{file} is not a PDF file."),
        (b"%PDF-1.7\n\x00\xff garbage", "The file is not a readable PDF"),
    ],
)
def test_a_file_that_is_not_a_readable_pdf_is_one_line(auditor_files, tmp_path, content, message):
    folder, _, _ = auditor_files
    path = tmp_path / "junk.pdf"
    path.write_bytes(content)
    result = run_bare("verify", str(path), "--trust", str(folder / "hub.pem"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: " + message.format(file=path))
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_verify_needs_a_certificate_to_trust_or_a_file(auditor_files, tmp_path):
    folder, _, _ = auditor_files
    no_trust = run_bare("verify", str(folder / "record.pdf"))
    assert (no_trust.returncode, no_trust.stdout) == (1, "")
    assert no_trust.stderr == (
        "error: There is no certificate to trust here. "
        "Give the issuing hub's certificate with --trust CERT.pem.\n"
    )
    missing = run_bare("verify", str(tmp_path / "nope.pdf"), "--trust", str(folder / "hub.pem"))
    assert (missing.returncode, missing.stderr) == (
        1,
        f"error: There is no file {tmp_path}/nope.pdf.\n",
    )
    not_a_cert = run_bare(
        "verify", str(folder / "record.pdf"), "--trust", str(folder / "record.pdf")
    )
    assert not_a_cert.returncode == 1
    assert not_a_cert.stderr.startswith(
        f"error: {folder / 'record.pdf'} is not an X.509 certificate"
    )
