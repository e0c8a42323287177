"""What the record's renderer may read (mes.pdf.fetch): data: URLs and the package's files only.

Every other URL — http, https, ftp, file: outside the ``mes`` package (also through ``..``),
any other scheme — is refused before anything is opened, and a document that asked for one is
not rendered: :class:`ResourceRefused` names the URL, also when WeasyPrint itself swallows the
refusal (it draws SVG images inside a catch-all), and also in the processes that lay out the
parts of a long record in parallel. A recording server on 127.0.0.1 shows nothing was fetched.
"""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import pikepdf
import pytest
import segno
from record_fixtures import executed_batch, ledger_json, sample_record
from request_recorder import RecordingServer, recording_server
from weasyprint.urls import FatalURLFetchingError

from mes.pdf import render
from mes.pdf.fetch import PACKAGE, PackageFetcher, ResourceRefused, package_file
from mes.pdf.render import _render_part, render_record_pdf

STYLESHEET = PACKAGE / "pdf" / "templates" / "record.css"


@pytest.fixture
def server(tmp_path) -> RecordingServer:
    with recording_server(tmp_path) as running:
        yield running


def refused_urls(server: RecordingServer, folder: Path) -> list[str]:
    outside = folder / "outside.css"
    outside.write_text("body { color: red }", encoding="utf-8")
    return [
        f"{server.base}/style.css",
        f"https://127.0.0.1:{server.port}/style.css",
        f"ftp://127.0.0.1:{server.port}/style.css",
        outside.as_uri(),
        "file:///etc/hostname",
        "file://localhost/etc/passwd",
        f"file://127.0.0.1{STYLESHEET}",  # a host: not this machine's package
        f"{PACKAGE.as_uri()}/pdf/../../pyproject.toml",  # out of the package through ..
        f"{PACKAGE.as_uri()}/pdf/templates",  # a folder, not a file
        "gopher://127.0.0.1/x",
        "javascript:alert(1)",
    ]


def test_the_renderers_fetcher_refuses_the_network_and_files_outside_the_package(server, tmp_path):
    fetcher = PackageFetcher()
    urls = refused_urls(server, tmp_path)
    for url in urls:
        with pytest.raises(FatalURLFetchingError):
            fetcher(url)
    assert fetcher.refused == urls
    with pytest.raises(ResourceRefused) as refused:
        fetcher.check_refusals()
    assert refused.value.urls == urls
    assert server.requests() == []


def test_the_renderers_fetcher_allows_data_urls_and_the_packages_own_files():
    fetcher = PackageFetcher()
    assert fetcher("data:text/plain,hello").read() == b"hello"
    assert fetcher(STYLESHEET.as_uri()).read() == STYLESHEET.read_bytes()
    assert package_file(STYLESHEET.as_uri()) == STYLESHEET
    fetcher.check_refusals()  # nothing refused: no error


def page(body: str) -> str:
    return f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>{body}</body></html>'


def test_a_document_asking_for_an_outside_url_is_not_rendered_and_the_refusal_names_it(
    server,
):
    asked = {
        "stylesheet": page(f'<link rel="stylesheet" href="{server.base}/a.css"><p>x</p>'),
        "image": page(f'<img src="{server.base}/b.png" alt="b">'),
        "import": page(f"<style>@import url({server.base}/c.css);</style><p>x</p>"),
        "file": page('<img src="file:///etc/hostname" alt="c">'),
        # inside an SVG image (a data: URL, allowed), whose drawing WeasyPrint wraps in a
        # catch-all: the refusal is still found
        "svg": page(
            "<img alt='d' src='data:image/svg+xml,"
            '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
            f'<image href="{server.base}/d.png" width="9" height="9"/></svg>\'>'
        ),
    }
    for name, html in asked.items():
        with pytest.raises(ResourceRefused) as refused:
            _render_part(html)
        assert refused.value.urls, name
        assert "the record was not printed" in refused.value.message
    assert server.requests() == []


def test_fonts_and_data_urls_still_render():
    picture = segno.make("BATCH:SPK1-2026-0001").png_data_uri(scale=2)
    part = _render_part(
        page(f'<p style="font-family: DejaVu Sans">Text</p><img alt="QR" src="{picture}">')
    )
    with pikepdf.open(io.BytesIO(part.pdf)) as pdf:
        (only,) = pdf.pages
        fonts = [str(font.BaseFont) for font in only.Resources.Font.values()]
        images = list(only.Resources.get("/XObject", {}).keys())
    assert fonts and all("DejaVu" in font for font in fonts), fonts
    assert images  # the data: image is drawn


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_the_processes_laying_out_parts_in_parallel_refuse_too(server, monkeypatch, method):
    batch = executed_batch()
    stylesheet = render._css() + f"\nsection {{ background: url({server.base}/part.png) }}"
    monkeypatch.setattr(render, "_css", lambda: stylesheet)  # every part asks for it
    monkeypatch.setattr(render, "_pool_context", lambda: multiprocessing.get_context(method))
    with pytest.raises(ResourceRefused) as refused:
        render_record_pdf(sample_record(batch), ledger_json(batch), workers=2)
    assert refused.value.urls == [f"{server.base}/part.png"]
    assert server.requests() == []
