"""PAdES signatures on batch-record PDFs that stay PDF/A-3b, and their validation.

The hub signs an issued record with its document-signing certificate (mes.core.certificate):
PAdES baseline B-B (``ETSI.CAdES.detached``, SHA-256, ECDSA P-256), as an incremental update,
so the PDF/A-3b file written by WeasyPrint stays byte-for-byte inside the signed range. No
time-stamping authority is reachable from an offline hub, so there is no B-T timestamp: the
signing time is the hub's clock, stated in the signature and on the stamp.

What keeps PDF/A-3b valid after signing (ISO 19005-3):

* the visible stamp is a page rendered by WeasyPrint in PDF/A-3b mode and imported as the
  widget's only (``/N``) appearance, so its fonts are embedded subsets and it has no
  transparency; the widget is printable and locked (``/F 132``);
* the metadata stay consistent: pyHanko writes its name as ``pdf:Producer`` into the XMP
  packet (keeping ``pdfaid:part`` 3 and ``conformance`` B), so the Info dictionary gets the same
  producer, and an Info ``/ModDate`` is dropped rather than written twice from two clocks;
* the file stays PDF 1.7 with the ESIC (PAdES) developer extension; pyHanko would declare
  PDF 2.0 for ECDSA (ISO/TS 32002), which a PDF/A-3 file (ISO 32000-1 based) must not claim.

(21 CFR 11.10(a): altered records are detected; 11.10(b): accurate copies in electronic and
human-readable form; 11.70: the signature is bound to the exact file.)
"""

from __future__ import annotations

import asyncio
import binascii
import html
import io
import logging
import uuid
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import content, generic, layout
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import VENDOR
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.rw_common import find_inherited_value_in_tree
from pyhanko.sign import fields, signers
from pyhanko.sign.signers import constants
from pyhanko.sign.validation import SignatureCoverageLevel, async_validate_pdf_signature
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from mes.core.certificate import DocumentSigningKey, fingerprint, subject_text
from mes.core.errors import InvalidInput

# pyHanko logs every refused certificate path with a traceback; the refusal is reported here in
# words (PdfSignatureCheck.problems), so the library's log stays quiet unless logging is set up.
T = TypeVar("T")

for _name in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_name).addHandler(logging.NullHandler())

SIGNATURE_FIELD = "HubSignature"
STAMP_WIDTH, STAMP_HEIGHT = 250, 44  # points; the stamp sits in the bottom page margin
STAMP_MARGIN = 10  # points from the bottom edge; the right edge keeps the page's own margin


# --- signing ------------------------------------------------------------------------------


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _stamp_pdf(lines: Sequence[str]) -> bytes:
    """The stamp as a one-page PDF/A-3b (embedded fonts), to become the widget's appearance."""
    from weasyprint import HTML  # heavy; only when signing

    from mes.pdf.fetch import PackageFetcher

    body = "<br>".join(html.escape(line) for line in lines)
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Signature</title><style>
@page {{ size: {STAMP_WIDTH}pt {STAMP_HEIGHT}pt; margin: 0 }}
body {{ margin: 0; height: {STAMP_HEIGHT}pt; box-sizing: border-box; padding: 3pt 5pt;
  border: 0.75pt solid #1f4e79; background: #ffffff; color: #000000;
  font: 6.5pt/1.3 "DejaVu Sans", "Liberation Sans", sans-serif }}
b {{ color: #1f4e79 }}
</style></head><body>{body}</body></html>"""
    fetcher = PackageFetcher()  # the stamp needs nothing from outside either
    pdf = HTML(string=page, url_fetcher=fetcher).write_pdf(pdf_variant="pdf/a-3b")
    fetcher.check_refusals()
    return pdf


class _RenderedPage(content.PdfContent):
    """A page of another PDF (held in memory) drawn as a form XObject."""

    def __init__(self, pdf: bytes) -> None:
        super().__init__()
        self.pdf = pdf

    def render(self) -> bytes:
        writer = self._ensure_writer
        xobject = writer.import_page_as_xobject(PdfFileReader(io.BytesIO(self.pdf)))
        name = "/Stamp" + binascii.hexlify(uuid.uuid4().bytes).decode("ascii")
        self.resources.xobject[name] = xobject
        x1, y1, x2, y2 = xobject.get_object()["/BBox"]
        self.box = layout.BoxConstraints(width=abs(x2 - x1), height=abs(y2 - y1))
        return name.encode("ascii") + b" Do"


class _PdfA3Signer(signers.PdfSigner):
    """pyHanko's signer with the signing time given, declaring PAdES without PDF 2.0."""

    def __init__(self, *args: Any, signing_time: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signing_time = signing_time

    def register_extensions(self, pdf_out: Any, *, md_algorithm: str) -> None:
        """Only the ESIC extension: the file stays PDF 1.7, as PDF/A-3 requires."""
        pdf_out.register_extension(constants.ESIC_EXTENSION_1)

    def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
        """The signing session, with the caller's time instead of the local clock read again."""
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._signing_time
        return session


def _consistent_info(writer: IncrementalPdfFileWriter) -> None:
    """Make the Info dictionary say what pyHanko will write into the XMP packet (PDF/A 6.6.2)."""
    try:
        info_ref = writer.trailer.raw_get("/Info")
    except KeyError:
        return
    info = info_ref.get_object()
    info["/Producer"] = generic.TextStringObject(VENDOR)
    if "/ModDate" in info:
        del info["/ModDate"]  # pyHanko would write it and xmp:ModifyDate from two clock reads
    writer.mark_update(info_ref)


def _default_box(writer: IncrementalPdfFileWriter, page: int) -> tuple[int, int, int, int]:
    index = page if page >= 0 else int(writer.root["/Pages"]["/Count"]) + page
    page_object = writer.find_page_for_modification(index)[0].get_object()
    media_box = find_inherited_value_in_tree(page_object, "/MediaBox", "/Parent")
    width = float(media_box[2]) if media_box is not None else 595.0  # A4
    right = int(width) - 36
    return (right - STAMP_WIDTH, STAMP_MARGIN, right, STAMP_MARGIN + STAMP_HEIGHT)


def sign_pdf(
    pdf: bytes,
    signing_key: DocumentSigningKey,
    *,
    at: datetime,
    reason: str,
    location: str,
    name: str,
    stamp_page: int = -1,
    stamp_box: tuple[int, int, int, int] | None = None,
) -> bytes:
    """Sign ``pdf`` (a PDF/A-3b file) with the hub's certificate; the signed file's bytes.

    ``name`` is the signer as printed (the hub's name), ``reason`` and ``location`` go into the
    signature and onto the visible stamp, drawn on ``stamp_page`` (default: the last) inside
    ``stamp_box`` (x1, y1, x2, y2 in points; default: the bottom right corner, in the margin).
    """
    at = at.astimezone(UTC).replace(microsecond=0)
    certificate = signing_key.certificate
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    except (PdfError, ValueError, KeyError, TypeError) as err:
        raise InvalidInput(f"The PDF to sign is unreadable: {err}.") from None
    _consistent_info(writer)
    box = stamp_box or _default_box(writer, stamp_page)
    stamp = _stamp_pdf(
        [
            f"Digitally signed by {name}",
            f"{reason} · {location} · {at:%Y-%m-%d %H:%M:%S} UTC",
            f"Certificate SHA-256 {fingerprint(certificate).replace(':', '')[:32]}…",
        ]
    )
    asn1_certificate = _asn1_certificate(certificate)
    signer = signers.SimpleSigner(
        signing_cert=asn1_certificate,
        signing_key=asn1_keys.PrivateKeyInfo.load(
            signing_key.private.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([asn1_certificate]),
    )
    pdf_signer = _PdfA3Signer(
        signers.PdfSignatureMetadata(
            field_name=SIGNATURE_FIELD,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            reason=reason,
            location=location,
            name=name,
            certify=True,  # the issuer certifies the record: no later change is permitted
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        ),
        signer=signer,
        signing_time=at,
        stamp_style=StaticStampStyle(
            background=_RenderedPage(stamp),
            border_width=0,
            background_layout=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MID,
                y_align=layout.AxisAlignment.ALIGN_MID,
                margins=layout.Margins.uniform(0),
            ),
        ),
        new_field_spec=fields.SigFieldSpec(
            sig_field_name=SIGNATURE_FIELD, on_page=stamp_page, box=box
        ),
    )
    output = io.BytesIO()
    _run(pdf_signer.async_sign_pdf(writer, output=output))
    return output.getvalue()


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run pyHanko's coroutine to its end, whatever the calling thread is doing.

    pyHanko's synchronous wrappers call ``asyncio.run``, which refuses to start where the
    thread already runs an event loop (a server or test harness with one, e.g. Playwright's
    sync API in the same process): the signing then failed with a 500. Such a thread hands the
    coroutine to a thread of its own, with its own loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf-sign") as pool:
        return pool.submit(asyncio.run, work).result()


# --- validation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PdfSignatureCheck:
    """What a PDF's signature says, judged against the trusted certificates."""

    signed: bool
    intact: bool = False  # the signed bytes are unchanged
    valid: bool = False  # the signature is the certificate's over those bytes
    trusted: bool = False  # the certificate is one of the trusted ones
    covers_whole_file: bool = False  # nothing was appended after signing
    signer: str | None = None
    signer_fingerprint: str | None = None
    signing_time: datetime | None = None
    reason: str | None = None
    location: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def verify_pdf(pdf: bytes, trust: Sequence[x509.Certificate]) -> PdfSignatureCheck:
    """Validate the PDF's signature (pyHanko) against ``trust``; each problem in words.

    A document the hub issues (a batch record, a comparability report) carries exactly one
    signature, the hub's, covering the whole file. Raises
    :class:`InvalidInput` when the bytes are not a readable PDF.
    """
    try:
        reader = PdfFileReader(io.BytesIO(pdf))
        signatures = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as err:
        raise InvalidInput(f"The file is not a readable PDF ({err}).") from None
    if not signatures:
        return PdfSignatureCheck(signed=False, problems=("the PDF carries no digital signature",))
    problems = []
    if len(signatures) > 1:
        problems.append(
            f"the PDF carries {len(signatures)} signatures; a document the hub issues carries one"
        )
    embedded = signatures[0]
    context = ValidationContext(
        trust_roots=[_asn1_certificate(c) for c in trust], allow_fetching=False
    )
    try:
        status = _run(async_validate_pdf_signature(embedded, context))
    except (PdfError, ValueError, KeyError, TypeError) as err:
        return PdfSignatureCheck(
            signed=True, problems=(*problems, f"the PDF signature cannot be read ({err})")
        )
    signer_cert = x509.load_der_x509_certificate(status.signing_cert.dump())
    signer = subject_text(signer_cert)
    signer_fingerprint = fingerprint(signer_cert)
    covers = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if not status.intact:
        problems.append(
            "the PDF signature does not match the file's content: it was altered after signing"
        )
    elif not status.valid:
        problems.append("the PDF signature is not a valid signature of its certificate")
    if status.intact and status.valid and not status.trusted:  # else trust was not judged
        problems.append(
            f"the PDF was signed by '{signer}' (certificate SHA-256 {signer_fingerprint}), "
            "which is not a trusted hub certificate"
        )
    if not covers:
        problems.append(
            "the PDF signature does not cover the whole file: content was added after signing"
        )
    sig_object = embedded.sig_object
    return PdfSignatureCheck(
        signed=True,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        covers_whole_file=covers,
        signer=signer,
        signer_fingerprint=signer_fingerprint,
        signing_time=status.signer_reported_dt,
        reason=_text(sig_object.get("/Reason")),
        location=_text(sig_object.get("/Location")),
        problems=tuple(problems),
    )
