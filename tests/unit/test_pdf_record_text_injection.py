"""A record's own words cannot restyle the printed record or make the renderer fetch anything.

Issue 13: the running header was a CSS string built from the product name, and ``\\r`` or
``\\f`` (which end a CSS string) let recipe text out of it — ``.deviation { display: none }``
removed every deviation from the signed record while its cover still counted them, and
``url(...)`` made the hub fetch an author-chosen URL or read a file. The record here is the
sample record with a payload in the product name or the site name, laid out in one piece and
in parallel parts; the text of the real PDF (``pdftotext``) must still show the deviation and
the payload as plain words, and a recording server on 127.0.0.1 must get no request — neither
directly nor through a file outside the package that would ask for it.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest
from record_fixtures import executed_batch, ledger_json, sample_record
from request_recorder import RecordingServer, recording_server

from mes.core.record import BatchRecord
from mes.pdf.render import render_record_pdf

CONTROL = "".join(chr(c) for c in range(1, 32)) + "\x7f"
HIDING = {
    "cr": "Cells\r} .deviation{display:none} @page{",
    "cr-twice": "Cells\r}} .deviation{display:none} @page{",
    "ff-twice": "Cells\f}} .deviation{display:none} @page{",
    "every-control-character": "Cells\r}} .deviation{display:none} @page{" + CONTROL,
    "close-style": "Cells</style><style>.deviation{display:none}</style>",
    "escaped-quote": 'Cells\\"}} .deviation{display:none} @page{',
}


@pytest.fixture(scope="module")
def sample() -> tuple[BatchRecord, bytes]:
    batch = executed_batch()
    return sample_record(batch), ledger_json(batch)


def with_words(record: BatchRecord, field: str, words: str) -> BatchRecord:
    return dataclasses.replace(record, cover=dataclasses.replace(record.cover, **{field: words}))


def pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "record.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return re.sub(r"\s+", " ", text)


def deviation_heading(record: BatchRecord) -> str:
    (deviation,) = record.deviations
    return f"{deviation.id} — {deviation.category} — {deviation.status}"


@pytest.mark.parametrize(
    ("field", "workers"),
    [("product", 1), ("product", 2), ("site_name", 1)],
    ids=["product-one-piece", "product-two-parts", "site-name"],
)
@pytest.mark.parametrize("payload", list(HIDING.values()), ids=list(HIDING))
def test_record_text_with_control_characters_cannot_hide_the_deviations_of_the_printed_record(
    sample, tmp_path, payload, field, workers
):
    record, attachment = sample
    bent = with_words(record, field, payload)
    text = pdf_text(render_record_pdf(bent, attachment, workers=workers), tmp_path)
    assert deviation_heading(bent) in text
    assert ".deviation{display:none}" in text  # shown as words in the header, not obeyed


@pytest.fixture
def server(tmp_path) -> RecordingServer:
    with recording_server(tmp_path) as running:
        yield running


def fetching_payloads(server: RecordingServer, folder: Path) -> dict[str, str]:
    """Payloads that asked the old renderer for a URL of ``server``, or for a file outside the
    package (an SVG image that in turn asks ``server`` for an image: a file read is seen)."""
    outside = folder / "outside.svg"
    outside.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        f'<image href="{server.base}/read-through-a-file" width="10" height="10"/></svg>',
        encoding="utf-8",
    )
    return {
        "http": f"Cells\r}}}} .deviation{{background:url({server.base}/background)}} @page{{",
        "http-ff": f"Cells\f}} .deviation{{background:url({server.base}/ff)}} @page{{",
        "import": f"Cells\r}}}} @import url({server.base}/import.css); @page{{",
        "font-face": f"Cells\r}}}} @font-face{{font-family:x;src:url({server.base}/font)}} "
        ".deviation{font-family:x} @page{",
        "file": f"Cells\r}}}} .deviation{{background:url({outside.as_uri()})}} @page{{",
    }


@pytest.mark.parametrize("workers", [1, 2], ids=["one-piece", "two-parts"])
def test_record_text_pointing_at_a_server_or_a_file_makes_the_renderer_fetch_nothing(
    sample, tmp_path, server, workers
):
    record, attachment = sample
    for name, payload in fetching_payloads(server, tmp_path).items():
        bent = with_words(record, "product", payload)
        text = pdf_text(render_record_pdf(bent, attachment, workers=workers), tmp_path)
        assert deviation_heading(bent) in text, name
    assert server.requests() == []
