"""PAdES signatures on batch-record PDFs: valid for poppler and pyHanko, still PDF/A-3b, and
every alteration found (mes.pdf.sign, mes.pdf.verify).

Poppler's ``pdfsig`` exits 0 even on a digest mismatch, so its text is read. The hub's
certificate is self-signed and not in poppler's NSS database, so pdfsig says "Certificate issuer
isn't Trusted"; trust is judged by pyHanko against the pinned hub certificate.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
from datetime import timedelta

import pikepdf
import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from signed_record_helpers import (
    BATCH_NUMBER,
    SIGNED_AT,
    flip_byte_in_a_stream,
    record_document,
    record_pdf,
)

from mes.core.canonical import canonical_json, content_hash
from mes.core.certificate import DocumentSigningKey, fingerprint
from mes.core.errors import InvalidInput
from mes.core.keys import SiteKey
from mes.pdf.sign import SIGNATURE_FIELD, sign_pdf, verify_pdf
from mes.pdf.verify import check_record, compare_chains, embedded_file, verify_record_pdf

ANNOT_PRINT, ANNOT_HIDDEN, ANNOT_INVISIBLE, ANNOT_NOVIEW = 4, 2, 1, 32


@pytest.fixture(scope="module")
def hub_document_key() -> DocumentSigningKey:
    return DocumentSigningKey.generate("HUB", "Central Hub", SIGNED_AT - timedelta(days=1))


@pytest.fixture(scope="module")
def keys() -> tuple[SiteKey, SiteKey]:
    return SiteKey.generate(), SiteKey.generate()


@pytest.fixture(scope="module")
def unsigned(keys) -> bytes:
    return record_pdf(record_document(*keys))


def sign(pdf: bytes, key: DocumentSigningKey) -> bytes:
    return sign_pdf(
        pdf, key, at=SIGNED_AT, reason="Batch record issued", location="HUB", name="Central Hub"
    )


@pytest.fixture(scope="module")
def signed(unsigned, hub_document_key) -> bytes:
    return sign(unsigned, hub_document_key)


def pdfsig(tmp_path, pdf: bytes) -> str:
    path = tmp_path / "record.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def test_poppler_reports_the_signature_valid_over_the_whole_document(tmp_path, signed):
    report = pdfsig(tmp_path, signed)
    assert "Signature Validation: Signature is Valid." in report
    assert "Total document signed" in report
    assert "Signature Type: ETSI.CAdES.detached" in report
    assert "Signing Hash Algorithm: SHA-256" in report
    assert "Signer Certificate Common Name: Central Hub (HUB) batch records" in report
    assert "Signing Time: Nov 25 2026 14:30:00" in report
    # Self-signed and not in poppler's NSS database: poppler cannot judge trust, pyHanko does.
    assert "Certificate issuer isn't Trusted" in report


def test_pyhanko_finds_the_signature_intact_valid_trusted_and_covering_the_file(
    signed, hub_document_key
):
    check = verify_pdf(signed, [hub_document_key.certificate])
    assert check.problems == ()
    assert (check.intact, check.valid, check.trusted, check.covers_whole_file) == (
        True,
        True,
        True,
        True,
    )
    assert check.signer == "Central Hub (HUB) batch records"
    assert check.signer_fingerprint == fingerprint(hub_document_key.certificate)
    assert check.signing_time == SIGNED_AT
    assert (check.reason, check.location) == ("Batch record issued", "HUB")


def test_a_record_is_signed_and_verified_in_a_thread_that_already_runs_an_event_loop(
    unsigned, hub_document_key
):
    """pyHanko's own wrappers call asyncio.run, which refuses inside a running loop: QA's
    download then failed with a 500 in a process that had one (a Playwright test beside it)."""

    async def inside_a_loop() -> tuple[bytes, object]:
        pdf = sign(unsigned, hub_document_key)
        return pdf, verify_pdf(pdf, [hub_document_key.certificate])

    pdf, check = asyncio.run(inside_a_loop())
    assert pdf.startswith(unsigned)
    assert check.problems == () and check.valid and check.trusted


def test_signing_only_appends_to_the_file_and_qpdf_finds_no_error(tmp_path, unsigned, signed):
    assert signed.startswith(unsigned)  # an incremental update: the PDF/A bytes are untouched
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


def _pdf_date(text: str) -> str:
    """'D:20261125142900Z' or '2026-11-25T14:29:00Z' → '20261125142900' (for comparison)."""
    return re.sub(r"\D", "", text)[:14]


def test_the_signed_file_still_declares_and_keeps_the_rules_of_pdf_a_3b(signed):
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        meta = pdf.open_metadata()
        assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("3", "B")
        assert signed.startswith(b"%PDF-1.7")
        assert "/Version" not in pdf.Root  # PDF/A-3 is PDF 1.7: no PDF 2.0 declared by signing
        assert "/ESIC" in pdf.Root.Extensions  # the PAdES developer extension
        # Info entries must match their XMP equivalents (ISO 19005-3 6.6.2.3).
        info = pdf.docinfo
        assert str(info.Producer) == meta.get("pdf:Producer")
        assert str(info.Title) == meta.get("dc:title")
        assert [str(info.Author)] == meta.get("dc:creator")
        assert _pdf_date(str(info.CreationDate)) == _pdf_date(meta.get("xmp:CreateDate"))
        assert "/ModDate" not in info or _pdf_date(str(info.ModDate)) == _pdf_date(
            meta.get("xmp:ModifyDate")
        )
        # The signature widget: printable, not hidden, one normal appearance.
        widgets = [a for page in pdf.pages for a in page.get("/Annots", [])]
        assert [str(w.T) for w in widgets] == [SIGNATURE_FIELD]
        widget = widgets[0]
        flags = int(widget.F)
        assert flags & ANNOT_PRINT
        assert not flags & (ANNOT_HIDDEN | ANNOT_INVISIBLE | ANNOT_NOVIEW)
        assert list(widget.AP.keys()) == ["/N"]
        fonts, opacities = _appearance_resources(widget.AP.N)
        assert fonts  # the stamp has text …
        assert all(embedded for _, embedded in fonts), fonts  # … in embedded fonts only
        assert all(value == 1 for value in opacities)  # no transparency
        # The embedded ledger is still a PDF/A-3 associated file.
        associated = {(str(f.F), str(f.AFRelationship)) for f in pdf.Root.AF}
        assert associated == {("batch-record.json", "/Source")}


def _appearance_resources(xobject, depth: int = 0) -> tuple[list, list]:
    fonts, opacities = [], []
    resources = xobject.get("/Resources", {})
    for name, font in resources.get("/Font", {}).items():
        descriptor = font.get("/FontDescriptor") or font.DescendantFonts[0].FontDescriptor
        embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
        fonts.append((f"{name} {font.get('/BaseFont')}", embedded))
    for state in resources.get("/ExtGState", {}).values():
        opacities.extend(float(state[k]) for k in ("/CA", "/ca") if k in state)
        assert state.get("/SMask", pikepdf.Name.None_) == pikepdf.Name.None_
    for inner in resources.get("/XObject", {}).values():
        assert "/SMask" not in inner
        if inner.get("/Subtype") == "/Form" and depth < 5:
            inner_fonts, inner_opacities = _appearance_resources(inner, depth + 1)
            fonts += inner_fonts
            opacities += inner_opacities
    return fonts, opacities


def test_one_flipped_byte_in_the_signed_content_fails_pdfsig_and_pyhanko(
    tmp_path, signed, hub_document_key
):
    altered = flip_byte_in_a_stream(signed, occurrence=1)
    assert altered != signed
    report = pdfsig(tmp_path, altered)
    assert "Signature is Valid" not in report
    assert "Digest Mismatch" in report
    check = verify_pdf(altered, [hub_document_key.certificate])
    assert not check.intact
    assert check.problems == (
        "the PDF signature does not match the file's content: it was altered after signing",
    )


def test_a_pdf_signed_with_another_certificate_of_the_same_name_is_not_trusted(
    unsigned, hub_document_key
):
    impostor = DocumentSigningKey.generate("HUB", "Central Hub", SIGNED_AT - timedelta(days=1))
    check = verify_pdf(sign(unsigned, impostor), [hub_document_key.certificate])
    assert (check.intact, check.valid, check.trusted) == (True, True, False)
    assert check.problems == (
        "the PDF was signed by 'Central Hub (HUB) batch records' (certificate SHA-256 "
        f"{fingerprint(impostor.certificate)}), which is not a trusted hub certificate",
    )


def test_content_appended_after_signing_is_named(signed, hub_document_key):
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.root["/Lang"] = writer.root.get("/Lang", "en")  # any later revision
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    check = verify_pdf(out.getvalue(), [hub_document_key.certificate])
    assert check.intact and check.trusted
    assert check.problems == (
        "the PDF signature does not cover the whole file: content was added after signing",
    )


def test_an_unsigned_pdf_and_a_file_that_is_not_a_pdf_are_told_apart(unsigned):
    assert verify_pdf(unsigned, []).problems == ("the PDF carries no digital signature",)
    with pytest.raises(InvalidInput, match="not a readable PDF"):
        verify_pdf(b"%PDF-1.7\nnot really", [])


def test_the_whole_record_verifies_with_the_keys_inside_it(signed, hub_document_key):
    outcome = verify_record_pdf(signed, [hub_document_key.certificate])
    assert outcome.problems == []
    assert outcome.record.verified == {"ledger": 4, "review": 2}
    assert outcome.summary() == [
        "Signed by Central Hub (HUB) batch records on 2026-11-25 14:30:00 UTC "
        f"(certificate SHA-256 {fingerprint(hub_document_key.certificate)})",
        f"Batch {BATCH_NUMBER} made at SPK1: 4 ledger entries verified, 2 review entries verified",
    ]


def test_a_ledger_entry_edited_before_signing_is_named_though_the_pdf_signature_holds(
    keys, hub_document_key
):
    def edit(seq, body):
        if seq == 3:
            body["payload"] = {"value": 300}

    pdf = sign(record_pdf(record_document(*keys, edit_ledger=edit)), hub_document_key)
    outcome = verify_record_pdf(pdf, [hub_document_key.certificate])
    assert outcome.signature.ok
    assert outcome.problems == [
        "batch record: ledger entry 3: its content does not match its hash: it was edited"
    ]


def test_an_entry_signed_with_another_key_is_named(keys):
    spoke_key, hub_key = keys
    forged = record_document(SiteKey.generate(), hub_key)  # whole ledger by another key …
    document = record_document(spoke_key, hub_key)
    # … under the real spoke's key in "keys": the first entry's signature does not match.
    record = json.loads(document)
    record["ledger"] = json.loads(forged)["ledger"]
    record.pop("record_hash")
    record["record_hash"] = content_hash(record)
    check = check_record(canonical_json(record))
    assert check.problems == (
        "ledger entry 1: the site signature does not match: it was rewritten or forged",
    )


def test_an_edited_record_hash_or_format_is_named(keys):
    record = json.loads(record_document(*keys))
    record["batch"]["number"] = "SPK1-2026-0002"
    assert check_record(json.dumps(record).encode()).problems == (
        "record_hash does not match the record's content: it was edited",
    )
    assert check_record(b'{"format": "something-else"}').problems == (
        "the embedded file is not a mes-batch-record/1 record (format: 'something-else')",
    )
    assert check_record(b"\x00not json").problems == ("the embedded batch-record.json is not JSON",)


def test_the_attachment_is_read_from_the_signed_file(signed, keys):
    assert embedded_file(signed) == record_document(*keys)
    assert embedded_file(signed, "other.json") is None


def test_the_first_difference_from_the_hubs_chains_is_named():
    record = {"ledger": [(1, "a" * 64), (2, "b" * 64), (3, "c" * 64)], "review": [(1, "r" * 64)]}
    assert compare_chains(record, record) == []
    hub = {"ledger": [(1, "a" * 64), (2, "x" * 64), (3, "c" * 64)], "review": [(1, "r" * 64)]}
    assert compare_chains(record, hub) == [
        "ledger entry 2: the hub holds a different entry (hash xxxxxxxxxxxx…, the record has "
        "bbbbbbbbbbbb…)"
    ]
    longer = {"ledger": record["ledger"], "review": [(1, "r" * 64), (2, "s" * 64)]}
    assert compare_chains(record, longer) == [
        "review: the hub holds 2 entries, the record only 1 (entries 2–2 are not in this record)"
    ]
    assert compare_chains(record, {"ledger": record["ledger"][:2], "review": []}) == [
        "ledger entry 3: the record has 3 entries, the hub only 2",
        "review entry 1: the record has 1 entries, the hub only 0",
    ]


def test_the_signature_reads_back_with_pyhankos_own_reader(signed):
    reader = PdfFileReader(io.BytesIO(signed))
    assert [s.field_name for s in reader.embedded_signatures] == [SIGNATURE_FIELD]
