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

A record's words are only ever HTML text or attributes, escaped by the template: the running
header takes the batch, product and site from the body's attributes (``string-set``), never
from a CSS string, so no text of a record can end a string and restyle the page (issue 13).
WeasyPrint reads nothing but ``data:`` URLs and the package's own files
(:class:`mes.pdf.fetch.PackageFetcher`), in this process and in the layout workers alike.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import mimetypes
import multiprocessing
import os
import string
import threading
import zlib
from collections.abc import Mapping, Sequence
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
from weasyprint import __version__ as WEASYPRINT
from weasyprint.urls import FatalURLFetchingError

from mes.core.commonmark import markdown_html
from mes.core.record import AuditLine, BatchRecord, UnitSection
from mes.pdf.fetch import PackageFetcher
from mes.services.logger_chart import compact_curve_svg
from mes.store.files import make_private_folder, write_private

TEMPLATES = Path(__file__).resolve().parent / "templates"
PDF_VARIANT = "pdf/a-3b"
# Below this many rows (see _weight) a record is rendered in one piece: starting processes and
# joining parts costs more than it saves.
PARALLEL_FROM_ROWS = 600
AUDIT_CHUNK = 100  # audit lines per piece the parts are cut from
CACHE_VERSION = "record-parts/2"  # change when the layout of a part changes


@dataclass(frozen=True)
class Block:
    """A piece of the record: the cover, a unit procedure, the deviations, or audit lines."""

    kind: str
    unit: UnitSection | None = None
    title: str = ""
    lines: tuple[AuditLine, ...] = ()
    chain: str = ""  # of audit lines: "batch" (the spoke's ledger) or "review" (QA's)
    new_page: bool = True
    weight: int = field(default=0, compare=False)  # rows, roughly what the layout costs


@dataclass(frozen=True)
class Part:
    """One part as rendered in a worker: its PDF, how many pages, and its bookmarks."""

    pdf: bytes
    pages: int
    bookmarks: list[tuple[str, int, int]]  # (label, level, page index within the part)


# --- the HTML -----------------------------------------------------------------------------------


# Characters written into a CSS string as they are; every other one as a hex escape.
CSS_SAFE = frozenset(string.ascii_letters + string.digits + " -.,:()")


def _css_string(text: str) -> markupsafe.Markup:
    """``text`` as a CSS string literal: every character outside a small safe set hex-escaped.

    Only for the text this module makes (the footer's record hash): a record's own words never
    reach a stylesheet (the running header takes them from escaped HTML attributes).
    """
    escaped = "".join(c if c in CSS_SAFE else f"\\{ord(c):06x}" for c in str(text))
    return markupsafe.Markup(f'"{escaped}"')  # noqa: S704 - nothing unescaped but CSS_SAFE


def _markdown(text: str) -> markupsafe.Markup:
    """A phase's instructions, CommonMark rendered safely (no raw HTML, no images): bold, lists."""
    return markupsafe.Markup(markdown_html(text))  # noqa: S704 - mes.core.commonmark escapes


def _logger_curve_uri(logged: Mapping[str, Any]) -> str:
    """A logger import's compact curve as an SVG data URI (matplotlib escapes its text)."""
    svg = compact_curve_svg(logged) or ""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


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
    env.filters["markdown"] = _markdown
    env.filters["logger_curve_uri"] = _logger_curve_uri
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
    if record.after_release:  # what was added after the decision: read right after the cover
        blocks.append(Block("after_release", weight=10 + 2 * len(record.after_release)))
    # Deviations right after the cover: what needs judgement first (review by exception).
    blocks.append(
        Block(
            "deviations",
            weight=10
            + sum(10 + len(d.history) for d in record.deviations)
            + 2 * len(record.reviewed),
        )
    )
    blocks += [Block("unit", unit=u, weight=_phase_rows(u)) for u in record.units]
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
                    chain=chain,
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


def _html(
    record: BatchRecord, blocks: Sequence[Block], *, page_numbers: bool, static: bool = False
) -> str:
    """The HTML of ``blocks``.

    ``static``: a part made only of what the spoke's record fixes (unit procedures, the batch's
    audit trail) — without the record hash, the time of printing and the document metadata, so
    the same part of a later print is byte-identical and its layout can be reused
    (:class:`PartCache`).
    """
    qr = segno.make(record.cover.identity_code, error="m")
    furniture = _furniture(record)
    created = record.generated_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if static:
        furniture["footer_left"], created = "", ""
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
            created_iso=created,
            **furniture,
        )
    )


def record_html(record: BatchRecord) -> str:
    """The whole record as one HTML document, header and footer in its ``@page`` rules.

    The same HTML a browser prints (and the benchmark gives headless Chromium).
    """
    return _html(record, record_blocks(record), page_numbers=True)


def _page_numbers_html(pages: int, footer_left: str) -> str:
    """A document of ``pages`` empty pages with only the footer, to lay over the parts.

    The footer is the record hash and "page X of Y": both known only once every part is laid out
    and the review is as printed.
    """
    body = '<div style="break-before: page"></div>' * (pages - 1)
    footer = (
        f"@bottom-left {{ content: {_css_string(footer_left)}; font-size: 6.5pt; "
        "vertical-align: top; padding-top: 2mm; }"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>'
        f"@page {{ size: A4; margin: 17mm 13mm 15mm 13mm; {footer} "
        f"@bottom-right {{ {PAGE_NUMBER_STYLE} }} }}"
        ' html { font-family: "DejaVu Sans", sans-serif; } body { margin: 0 }'
        f"</style></head><body><div></div>{body}</body></html>"
    )


# --- WeasyPrint ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Embedded:
    """A file attached to a document as a PDF/A-3 associated file.

    ``relationship``: how the document relates to it (``Source``: the document is made from
    it, as a record from its ledger; ``Data``: it is the data the document shows, as a
    report's table).
    """

    data: bytes
    name: str
    description: str
    relationship: str = "Source"


def ledger_attachment(attachment: bytes, name: str) -> Embedded:
    """The batch's ledger, embedded in its record."""
    return Embedded(
        attachment,
        name,
        "The batch's ledger as canonical JSON (RFC 8785), the source of this record",
    )


def _render_part(
    html: str, embedded: Sequence[Embedded] = (), created: datetime | None = None
) -> Part:
    """Lay out ``html`` and write it as PDF/A-3b (with the attachments, for the first part)."""
    fetcher = PackageFetcher()
    try:
        document = HTML(string=html, url_fetcher=fetcher).render()
        pdf = document.write_pdf(**_pdf_options(embedded, created))
    except FatalURLFetchingError:
        fetcher.check_refusals()
        raise
    fetcher.check_refusals()  # also what WeasyPrint caught (it draws SVG images in a catch-all)
    bookmarks: list[tuple[str, int, int]] = []

    def walk(tree: list[Any], level: int) -> None:
        for label, (page, _x, _y), children, _state in tree:
            bookmarks.append((label, level, page))
            walk(children, level + 1)

    walk(document.make_bookmark_tree(), 0)
    return Part(pdf, len(document.pages), bookmarks)


def _pdf_options(embedded: Sequence[Embedded], created: datetime | None) -> dict[str, Any]:
    options: dict[str, Any] = {"pdf_variant": PDF_VARIANT}
    if embedded:
        options["attachments"] = [
            Attachment(
                file_obj=io.BytesIO(item.data),
                name=item.name,
                description=item.description,
                created=created,
                modified=created,
                relationship=item.relationship,
            )
            for item in embedded
        ]
    return options


def render_document_pdf(
    html: str, embedded: Sequence[Embedded] = (), created: datetime | None = None
) -> bytes:
    """One HTML document laid out in one piece as PDF/A-3b, with ``embedded`` attached.

    The path of a short batch record and of every other document the hub signs (the
    comparability report): the same fetcher, the same PDF/A options, the same clean-up.
    """
    return _save(pikepdf.open(io.BytesIO(_render_part(html, embedded, created).pdf)))


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


class PartCache:
    """Parts already laid out, by the SHA-256 of their HTML (a folder of files).

    A batch's record is append-only: once the batch is complete, its unit procedures and its
    audit trail never change, and only the cover, the deviations' workflow and QA's review do.
    The layout of an unchanged part is the costly step and its result depends on nothing but
    its HTML, so it is kept and reused: the same HTML gives the same part.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @staticmethod
    def key(html: str) -> str:
        """The part's identity: the SHA-256 of its HTML and of this module's version."""
        return hashlib.sha256(f"{CACHE_VERSION} {WEASYPRINT}\n{html}".encode()).hexdigest()

    def get(self, html: str) -> Part | None:
        """The part laid out from exactly ``html`` before, if kept."""
        base = self.folder / self.key(html)
        try:
            meta = json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))
            pdf = base.with_suffix(".pdf").read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(pdf).hexdigest() != meta.get("sha256"):
            return None  # a damaged file is laid out again, never used
        return Part(pdf, int(meta["pages"]), [tuple(b) for b in meta["bookmarks"]])

    def put(self, html: str, part: Part) -> None:
        """Keep a part (written to a temporary name, then renamed: never half a file)."""
        make_private_folder(self.folder)
        base = self.folder / self.key(html)
        meta = {
            "pages": part.pages,
            "bookmarks": part.bookmarks,
            "sha256": hashlib.sha256(part.pdf).hexdigest(),
        }
        for suffix, data in ((".pdf", part.pdf), (".json", json.dumps(meta).encode())):
            temporary = base.with_suffix(f"{suffix}.{os.getpid()}.tmp")
            write_private(temporary, data)
            temporary.replace(base.with_suffix(suffix))


def _static(block: Block) -> bool:
    return block.kind == "unit" or (block.kind == "audit" and block.chain == "batch")


def render_record_pdf(
    record: BatchRecord,
    attachment: bytes,
    attachment_name: str = "batch-record.json",
    *,
    workers: int | None = None,
    cache: PartCache | None = None,
) -> bytes:
    """The unsigned PDF/A-3b of the executed batch record, with ``attachment`` embedded.

    ``workers``: how many processes lay out the parts (default: one for a short record, else
    the CPUs, at most 4); 1 renders in one piece in this process. A long record is cut into
    parts: the head (cover and deviations, with the document metadata and the attachment),
    the static middle (unit procedures and the batch's audit trail, cut into ``workers`` runs
    of about equal cost) and the tail (QA's audit trail). ``cache``: where the static parts'
    layouts are kept and reused.
    """
    blocks = record_blocks(record)
    weight = sum(b.weight for b in blocks)
    if workers is None:
        workers = 1 if weight < PARALLEL_FROM_ROWS else min(os.cpu_count() or 1, 4)
    created = record.generated_utc
    if workers <= 1:
        html = _html(record, blocks, page_numbers=True)
        return render_document_pdf(html, [ledger_attachment(attachment, attachment_name)], created)
    middle = [b for b in blocks if _static(b)]
    head = [b for b in blocks if not _static(b) and b.kind != "audit"]
    tail = [b for b in blocks if not _static(b) and b.kind == "audit"]
    htmls = [_html(record, head, page_numbers=False)]
    statics = [
        _html(record, run, page_numbers=False, static=True)
        for run in _partition(middle, workers)
        if run
    ]
    htmls += statics
    if tail:
        htmls.append(_html(record, tail, page_numbers=False))
    parts: list[Part | None] = [
        cache.get(h) if cache is not None and h in statics else None for h in htmls
    ]
    # The static parts not kept yet go to the workers, the longest first; meanwhile this process
    # lays out the head and the tail (small: the cover, the deviations, QA's audit trail).
    todo = sorted(
        (i for i, part in enumerate(parts) if part is None and htmls[i] in statics),
        key=lambda i: -len(htmls[i]),
    )
    pool = (
        ProcessPoolExecutor(max_workers=min(len(todo), workers), mp_context=_pool_context())
        if todo
        else None
    )
    try:
        futures = {i: pool.submit(_render_part, htmls[i]) for i in todo} if pool else {}
        for i, html in enumerate(htmls):
            if parts[i] is None and i not in futures:
                embedded = [ledger_attachment(attachment, attachment_name)] if i == 0 else []
                parts[i] = _render_part(html, embedded, created)
        for i, future in futures.items():
            parts[i] = future.result()
            if cache is not None:
                cache.put(htmls[i], parts[i])
    finally:
        if pool is not None:
            pool.shutdown()
    done = [p for p in parts if p is not None]
    pages = sum(part.pages for part in done)
    footer = _render_part(_page_numbers_html(pages, _furniture(record)["footer_left"]))
    return _join(done, footer)


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


def _pdf_date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")


def attach(pdf: bytes, embedded: Sequence[Embedded], created: datetime) -> bytes:
    """``pdf`` with ``embedded`` attached as PDF/A-3 associated files, as WeasyPrint attaches them.

    For a large attachment (a report's CSV) after the parts are joined: WeasyPrint writes an
    attachment slowly, and the part carrying it would hold up the join. Each file is a
    ``/Filespec`` in the catalog's ``/EmbeddedFiles`` name tree (names in order) and its
    ``/AF`` array, with its relationship, description, MIME type, size, MD5 checksum and dates.
    """
    document = pikepdf.open(io.BytesIO(pdf))
    when = _pdf_date(created)
    specs: list[tuple[str, pikepdf.Dictionary]] = []
    for item in embedded:
        mime = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        stream = pikepdf.Stream(document, zlib.compress(item.data, 6))
        stream.Filter = pikepdf.Name.FlateDecode
        stream.Type = pikepdf.Name.EmbeddedFile
        stream.Subtype = pikepdf.Name("/" + mime)
        stream.Params = pikepdf.Dictionary(
            Size=len(item.data),
            CheckSum=pikepdf.String(hashlib.md5(item.data).digest()),  # noqa: S324 - PDF's
            CreationDate=when,
            ModDate=when,
        )
        spec = document.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Filespec,
                F=item.name,
                UF=item.name,
                Desc=item.description,
                EF=pikepdf.Dictionary(F=stream),
                AFRelationship=pikepdf.Name("/" + item.relationship),
            )
        )
        specs.append((item.name, spec))
    names = pikepdf.Dictionary(Names=pikepdf.Array())
    if "/Names" in document.Root and "/EmbeddedFiles" in document.Root.Names:
        names = document.Root.Names.EmbeddedFiles
    listed = list(names.Names) if "/Names" in names else []
    pairs = [(str(listed[i]), listed[i + 1]) for i in range(0, len(listed), 2)]
    pairs = sorted(pairs + specs, key=lambda pair: pair[0])
    names.Names = pikepdf.Array([x for name, spec in pairs for x in (pikepdf.String(name), spec)])
    if "/Names" not in document.Root:
        document.Root.Names = pikepdf.Dictionary()
    document.Root.Names.EmbeddedFiles = names
    associated = list(document.Root.AF) if "/AF" in document.Root else []
    document.Root.AF = pikepdf.Array(associated + [spec for _name, spec in specs])
    return _save(document)


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
