"""Batch-record PDFs for the signature tests: a real PDF/A-3b with a real sealed record inside.

The embedded ``batch-record.json`` has the issue-6 format (mes.pdf.verify): a spoke's ledger and
the hub's review chain, each entry sealed with ``mes.core.ledger.seal`` and a real Ed25519 key.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from weasyprint import HTML, Attachment

from mes.core.canonical import canonical_json, content_hash
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, seal

BATCH_ID = "0193a8a0-0000-7000-8000-00000000b001"
BATCH_NUMBER = "SPK1-2026-0001"
SIGNED_AT = datetime(2026, 11, 25, 14, 30, 0, tzinfo=UTC)


def _chain(
    key: SiteKey, site: str, kinds: list[str], edit: Callable[[int, dict[str, Any]], None] | None
) -> list[dict[str, Any]]:
    entries, prev = [], GENESIS
    for seq, kind in enumerate(kinds, start=1):
        body = {
            "batch": BATCH_ID,
            "seq": seq,
            "prev": prev,
            "at": f"2026-11-25T09:{seq:02d}:00.000000Z",
            "site": site,
            "terminal": "Bench 1",
            "actor": {"user_id": None, "username": "olivia", "name": "Olivia Operator"},
            "kind": kind,
            "payload": {"value": seq},
        }
        sealed = seal(body, key)
        prev = sealed.hash
        stored = {"body": dict(sealed.body), "hash": sealed.hash, "signature": sealed.signature}
        if edit is not None:
            edit(seq, stored["body"])  # changed after sealing, as a forger would
        entries.append(stored)
    return entries


def record_document(
    spoke_key: SiteKey,
    hub_key: SiteKey,
    *,
    edit_ledger: Callable[[int, dict[str, Any]], None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The embedded record: 4 ledger entries (SPK1), 2 review entries (HUB), keys and hash."""
    document: dict[str, Any] = {
        "format": "mes-batch-record/1",
        "batch": {"id": BATCH_ID, "number": BATCH_NUMBER, "site": "SPK1"},
        "keys": {
            "SPK1": spoke_key.public.pem().decode("ascii"),
            "HUB": hub_key.public.pem().decode("ascii"),
        },
        "ledger": _chain(
            spoke_key, "SPK1", ["start", "record", "perform", "complete"], edit_ledger
        ),
        "review": _chain(hub_key, "HUB", ["reviewed", "released"], None),
        **(extra or {}),
    }
    return canonical_json({**document, "record_hash": content_hash(document)})


def record_pdf(document: bytes) -> bytes:
    """An unsigned PDF/A-3b batch record with ``document`` attached as batch-record.json."""
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Batch record {BATCH_NUMBER}</title><meta name="author" content="Central Hub">
<meta name="dcterms.created" content="2026-11-25T14:29:00Z">
<meta name="dcterms.modified" content="2026-11-25T14:29:30Z"></head>
<body><h1>Executed batch record {BATCH_NUMBER}</h1>
<p>Viability: 92.5 % (alert 70–100 %) — within limits. Cells: 2.1 × 10^8 µL⁻¹.</p>
<p>Olivia Operator (olivia) — Performed — 2026-11-25 09:03:00 UTC</p></body></html>"""
    return HTML(string=page).write_pdf(
        pdf_variant="pdf/a-3b",
        attachments=[
            Attachment(
                file_obj=io.BytesIO(document),
                name="batch-record.json",
                description="The batch's signed ledger and review chain (RFC 8785 JSON)",
                relationship="Source",
            )
        ],
    )


def flip_byte_in_a_stream(pdf: bytes, occurrence: int = 0) -> bytes:
    """The file with one bit of one byte changed inside the data of its n-th stream."""
    start = -1
    for _ in range(occurrence + 1):
        start = pdf.index(b"stream\n", start + 1)
    end = pdf.index(b"endstream", start)
    middle = (start + 7 + end) // 2
    changed = bytearray(pdf)
    changed[middle] ^= 0x01
    return bytes(changed)
