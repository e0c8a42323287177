"""The executed batch record as a PDF/A-3b file, with its canonical JSON ledger attached.

``record_html(record)`` writes the record as one HTML document (cover, unit procedures in recipe
order, deviations, the audit trail as an appendix; every page headed with the batch number and
product and footed with "page X of Y" and the record's hash). ``render_record_pdf`` lays it out
with WeasyPrint as PDF/A-3b (XMP metadata, sRGB output intent, embedded DejaVu fonts) and embeds
the ledger as an associated file (``AFRelationship /Source``: the record is made from it).

Speed, measured (``benchmarks/pdf.py``): WeasyPrint lays out a table row by row, slowly, and
every element costs style, box and line work. So the layout avoids its slow paths — no tables;
a row is one element with one text (columns by tab stops and a hanging indent); one font family
— and a long record is laid out in parallel: the document is cut into parts at section
boundaries (each part starts on a new page in any case), each part is rendered in its own
process, and the parts are joined with pikepdf. Page numbers across parts are known only once
every part is laid out, so the running header and footer are a separate, cheap document of
empty pages with only the margin boxes ("page X of Y"), laid over the joined pages. The first
part carries the PDF/A catalog (XMP, output intent, attachment); the outline is rebuilt over the
joined pages. A short record is rendered in one piece, in-process, with the same header and
footer as margin boxes.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pikepdf
import segno
from weasyprint import HTML, Attachment

from mes.core.record import AuditLine, BatchRecord, UnitSection

TEMPLATES = Path(__file__).resolve().parent / "templates"
PDF_VARIANT = "pdf/a-3b"
# Below this many rows (see _weight) a record is rendered in one piece: starting processes and
# joining parts costs more than it saves.
PARALLEL_FROM_ROWS = 600
AUDIT_CHUNK = 100  # audit lines per piece the parts are cut from


@dataclass(frozen=True)
class Block:
    """A piece of the record: the cover, a unit procedure, the deviations, or audit lines."""

    kind: str
    unit: UnitSection | None = None
    title: str = ""
    lines: tuple[AuditLine, ...] = ()
    new_page: bool = True
    weight: int = field(default=0, compare=False)  # rows, roughly what the layout costs


@dataclass(frozen=True)
class Part:
    """One part as rendered in a worker: its PDF, how many pages, and its bookmarks."""

    pdf: bytes
    pages: int
    bookmarks: list[tuple[str, int, int]]  # (label, level, page index within the part)


# --- the HTML -----------------------------------------------------------------------------------


def _css_string(text: str) -> markupsafe.Markup:
    """``text`` as a CSS string literal, safe inside ``<style>`` (no ``</style>`` can close it)."""
    escaped = (
        str(text)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\a ")
        .replace("<", "\\3c ")
    )
    return markupsafe.Markup(f'"{escaped}"')  # noqa: S704 - escaped above


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["css_string"] = _css_string
    return env


@cache
def _css() -> str:
    return (TEMPLATES / "record.css").read_text(encoding="utf-8")


def _phase_rows(unit: UnitSection) -> int:
    rows = 0
    for op in unit.operations:
        rows += 2
        for ph in op.phases:
            rows += 3 + len(ph.materials) + len(ph.equipment) + len(ph.identity)
            rows += len(ph.signatures) + sum(1 + len(v.changes) for v in ph.values)
    return rows


def record_blocks(record: BatchRecord) -> list[Block]:
    """The record's pieces in order, each with its weight (rows to lay out)."""
    blocks = [Block("cover", weight=60 + 4 * len(record.cover.batch_signatures))]
    blocks += [Block("unit", unit=u, weight=_phase_rows(u)) for u in record.units]
    blocks.append(
        Block(
            "deviations",
            weight=10
            + sum(10 + len(d.history) for d in record.deviations)
            + 2 * len(record.reviewed),
        )
    )
    chains = (
        ("batch", f"Audit trail — batch record at {record.cover.site}"),
        ("review", "Audit trail — QA review"),
    )
    for chain, title in chains:
        lines = tuple(a for a in record.audit if a.chain == chain)
        if not lines:
            continue
        for start in range(0, len(lines), AUDIT_CHUNK):
            chunk = lines[start : start + AUDIT_CHUNK]
            blocks.append(
                Block(
                    "audit",
                    title=title if start == 0 else "",
                    lines=chunk,
                    new_page=start == 0,
                    weight=len(chunk) * 16 // 10,  # an audit line costs 1.6 phase rows (measured)
                )
            )
    return blocks


def _furniture(record: BatchRecord) -> dict[str, str]:
    cover = record.cover
    return {
        "header_left": f"Batch {cover.batch_number} · {cover.product}",
        "header_right": f"Executed batch record · {cover.site_name} ({cover.site})",
        "footer_left": f"Record SHA-256 {record.record_hash}",
    }


# "page X of Y" in the bottom right margin box; the same rule in the record and in the overlay
PAGE_NUMBER_STYLE = (
    'content: "page " counter(page) " of " counter(pages); font-size: 7pt; vertical-align: top;'
    " padding-top: 2mm;"
)


def _html(record: BatchRecord, blocks: Sequence[Block], *, page_numbers: bool) -> str:
    qr = segno.make(record.cover.identity_code, error="m")
    return (
        _environment()
        .get_template("record.html")
        .render(
            record=record,
            cover=record.cover,
            blocks=blocks,
            page_numbers=page_numbers,
            page_number_style=markupsafe.Markup(PAGE_NUMBER_STYLE),  # noqa: S704 - ours
            css=_css(),
            qr_uri=qr.svg_data_uri(scale=4, border=0),
            created_iso=record.generated_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **_furniture(record),
        )
    )


def record_html(record: BatchRecord) -> str:
    """The whole record as one HTML document, header and footer in its ``@page`` rules.

    The same HTML a browser prints (and the benchmark gives headless Chromium).
    """
    return _html(record, record_blocks(record), page_numbers=True)


def _page_numbers_html(pages: int) -> str:
    """A document of ``pages`` empty pages with only "page X of Y", to lay over the parts."""
    body = '<div style="break-before: page"></div>' * (pages - 1)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>'
        f"@page {{ size: A4; margin: 17mm 13mm 15mm 13mm; @bottom-right {{ {PAGE_NUMBER_STYLE} }} }}"
        ' html { font-family: "DejaVu Sans", sans-serif; } body { margin: 0 }'
        f"</style></head><body><div></div>{body}</body></html>"
    )


# --- WeasyPrint ---------------------------------------------------------------------------------


def _render_part(
    html: str,
    attachment: bytes | None = None,
    attachment_name: str = "",
    created: datetime | None = None,
) -> Part:
    """Lay out ``html`` and write it as PDF/A-3b (with the attachment, for the first part)."""
    document = HTML(string=html).render()
    options: dict[str, Any] = {"pdf_variant": PDF_VARIANT}
    if attachment is not None:
        options["attachments"] = [
            Attachment(
                file_obj=io.BytesIO(attachment),
                name=attachment_name,
                description="The batch's ledger as canonical JSON (RFC 8785), the source of "
                "this record",
                created=created,
                modified=created,
                relationship="Source",
            )
        ]
    bookmarks: list[tuple[str, int, int]] = []

    def walk(tree: list[Any], level: int) -> None:
        for label, (page, _x, _y), children, _state in tree:
            bookmarks.append((label, level, page))
            walk(children, level + 1)

    walk(document.make_bookmark_tree(), 0)
    return Part(document.write_pdf(**options), len(document.pages), bookmarks)


def _partition(blocks: list[Block], parts: int) -> list[list[Block]]:
    """Cut ``blocks`` into at most ``parts`` runs of about equal weight, in order."""
    total = sum(b.weight for b in blocks) or 1
    runs: list[list[Block]] = [[]]
    done = 0
    for block in blocks:
        target = total * len(runs) / parts
        # start the next run when this block would overshoot the target more than it fills it
        if runs[-1] and len(runs) < parts and done + block.weight / 2 > target:
            runs.append([])
        runs[-1].append(block)
        done += block.weight
    return runs


def _pool_context() -> multiprocessing.context.BaseContext:
    """Fork where it is safe (no other thread in this process), a fork server otherwise."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["weasyprint", "mes.pdf.render"])
        return context
    return multiprocessing.get_context("spawn")


def render_record_pdf(
    record: BatchRecord,
    attachment: bytes,
    attachment_name: str = "batch-record.json",
    *,
    workers: int | None = None,
) -> bytes:
    """The unsigned PDF/A-3b of the executed batch record, with ``attachment`` embedded.

    ``workers``: how many processes lay out the parts (default: one for a short record, else
    the CPUs, at most 4); 1 renders in one piece in this process.
    """
    blocks = record_blocks(record)
    weight = sum(b.weight for b in blocks)
    if workers is None:
        workers = 1 if weight < PARALLEL_FROM_ROWS else min(os.cpu_count() or 1, 4)
    created = record.generated_utc
    if workers <= 1:
        html = _html(record, blocks, page_numbers=True)
        whole = pikepdf.open(
            io.BytesIO(_render_part(html, attachment, attachment_name, created).pdf)
        )
        return _save(whole)
    runs = [run for run in _partition(blocks, workers) if run]
    # a part after a cut inside the audit trail starts on a new page all the same
    htmls = [_html(record, run, page_numbers=False) for run in runs]
    with ProcessPoolExecutor(max_workers=len(htmls), mp_context=_pool_context()) as pool:
        futures = [
            pool.submit(
                _render_part,
                html,
                attachment if index == 0 else None,
                attachment_name,
                created,
            )
            for index, html in enumerate(htmls)
        ]
        parts = [future.result() for future in futures]
    pages = sum(part.pages for part in parts)
    return _join(parts, _render_part(_page_numbers_html(pages)))


def _join(parts: list[Part], page_numbers: Part) -> bytes:
    """The parts' pages in order in the first part's PDF, each with its page number laid over."""
    joined = pikepdf.open(io.BytesIO(parts[0].pdf))
    for part in parts[1:]:
        joined.pages.extend(pikepdf.open(io.BytesIO(part.pdf)).pages)
    overlay = pikepdf.open(io.BytesIO(page_numbers.pdf))
    for page, numbered in zip(joined.pages, overlay.pages, strict=True):
        page.add_overlay(numbered)
    with joined.open_outline() as outline:
        outline.root.clear()
        stack: list[tuple[int, Any]] = []
        offset = 0
        for part in parts:
            for label, level, page in part.bookmarks:
                item = pikepdf.OutlineItem(label, offset + page)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                (stack[-1][1].children if stack else outline.root).append(item)
                stack.append((level, item))
            offset += part.pages
    return _save(joined)


def _save(pdf: pikepdf.Pdf) -> bytes:
    """The file's bytes, each associated file listed once in the catalog's ``/AF``.

    (WeasyPrint 70 lists the ledger's file specification twice: once from the embedded files'
    name tree, once from the file specifications.)
    """
    if "/AF" in pdf.Root:
        seen: set[tuple[int, int]] = set()
        unique = []
        for spec in pdf.Root.AF:
            if spec.objgen not in seen:
                seen.add(spec.objgen)
                unique.append(spec)
        pdf.Root.AF = pikepdf.Array(unique)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
