"""The hub signs only what it has read back: the rendered record's text checked against the record.

The signed PDF is the copy an auditor reads, so before the hub signs it, the text of the
rendered file is extracted (PDFium, through ``pypdfium2``) and every part of the record that
must never go missing is looked for in it, in the record's own words (the properties of
:mod:`mes.core.record` the template prints):

* every deviation's heading — its number, category and status (the audit trail names the
  number too, so the number alone would not show a deviations section that went missing);
* every signature's manifestation (21 CFR 11.50: printed name, user ID, date and time, meaning)
  as often as the record holds it;
* every recorded or calculated value with its status, limits, who and when, and every change
  of a value (original → new, the reason) — 11.10(e);
* every line of the audit trail, and the chain of identity on the cover;
* the certification level on the cover and every entry appended after the release decision
  (the "After release" section, each entry's line as :class:`AfterReleaseLine` writes it).

Text extraction does not keep a layout's line breaks: a long value wraps, columns become
tabs. So both sides are compared without whitespace, control or formatting characters, after
NFKC normalisation (ligatures); nothing else is forgiven. What is detected: anything of the
list above that is not drawn on a page (``display: none``, ``visibility: hidden``, moved off
the page, left out by the template). Not detected: text drawn but made unreadable (white on
white, covered, tiny) — the renderer prevents that by never letting a record's text into a
stylesheet (:mod:`mes.pdf.render`).
"""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from mes.core.record import BatchRecord, SignatureLine

# PDFium is not thread-safe, not even across documents: one extraction at a time per process.
_PDFIUM = threading.Lock()
# PDFium writes a hyphen it finds at the end of a line as U+0002.
_LINE_END_HYPHEN = "\x02"


@dataclass(frozen=True)
class Expected:
    """Words the printed record must show, and how a refusal names them."""

    what: str
    text: str


def expected_words(record: BatchRecord) -> list[Expected]:
    """Everything of ``record`` that its printed copy must show, in the record's words."""
    expected: list[Expected] = []

    def signature(s: SignatureLine | None) -> None:
        if s is not None:
            expected.append(Expected(f"the signature {s.text}", s.text))
            if s.witness:
                expected.append(Expected(f"that {s.text} was given {s.witness}", s.witness))

    cover = record.cover
    for label, value in cover.chain_of_identity:
        expected.append(Expected(f"the chain of identity: {label} {value}", f"{label} {value}"))
    for s in cover.batch_signatures:
        signature(s)
    if cover.release is not None:
        signature(cover.release.signature)
    if cover.certification:
        expected.append(Expected(f"the certification {cover.certification}", cover.certification))
    expected += [
        Expected(f"{a.chain} entry {a.seq} in the after-release section", a.line)
        for a in record.after_release
    ]
    for d in record.deviations:
        expected.append(Expected(f"deviation {d.id}", d.title))
        signature(d.acknowledgement)
        signature(d.closure)
    for r in record.reviewed:
        signature(r.signature)
    for unit in record.units:
        for op in unit.operations:
            for ph in op.phases:
                for v in ph.values:
                    where = f"in phase {ph.number} ({ph.name})"
                    expected.append(
                        Expected(f"the value {v.label} = {v.value_text} {where}", v.text)
                    )
                    expected += [
                        Expected(f"the change of {v.label} to {c.new} {where}", c.text)
                        for c in v.changes
                    ]
                for s in ph.signatures:
                    signature(s)
    expected += [
        Expected(f"line {a.seq} of the {a.chain} audit trail", a.line) for a in record.audit
    ]
    return expected


@cache
def _ignored() -> re.Pattern[str]:
    """Whitespace, control (Cc) and formatting (Cf: soft hyphen, zero-width, bidi) characters."""
    formatting = "".join(
        chr(c) for c in range(0xA0, sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"
    )
    return re.compile(f"[\\s\\x00-\\x1f\\x7f-\\x9f{re.escape(formatting)}]+")


def squeezed(text: str) -> str:
    """``text`` as compared: NFKC, without whitespace, control or formatting characters."""
    text = unicodedata.normalize("NFKC", text.replace(_LINE_END_HYPHEN, "-"))
    return _ignored().sub("", text)


def printed_text(pdf: bytes) -> str:
    """The text drawn on the pages of ``pdf`` (within each page's bounds), page after page."""
    import pypdfium2  # a native library, loaded when a record is first read back

    pages = []
    with _PDFIUM:
        document = pypdfium2.PdfDocument(pdf)
        try:
            for page in document:
                textpage = page.get_textpage()
                pages.append(textpage.get_text_bounded())
                textpage.close()
                page.close()
        finally:
            document.close()
    return "\n".join(pages)


def missing_words(record: BatchRecord, pdf: bytes) -> list[Expected]:
    """What of ``record`` the text of ``pdf`` does not show (empty: the print is whole)."""
    return missing_from(expected_words(record), pdf)


def missing_from(expected: Iterable[Expected], pdf: bytes) -> list[Expected]:
    """What of ``expected`` the text of ``pdf`` does not show (empty: the print is whole).

    Any document the hub signs is read back this way (a batch record, a comparability report).
    Words expected several times (the same manifestation twice) must be there as many times.
    """
    text = squeezed(printed_text(pdf))
    wanted: dict[str, list[Expected]] = defaultdict(list)
    for item in expected:
        wanted[squeezed(item.text)].append(item)
    missing: list[Expected] = []
    for words, items in wanted.items():
        if not words:
            continue  # nothing printable to look for
        # most words are there once: ``in`` stops at the first, ``count`` reads the whole text
        found = int(words in text) if len(items) == 1 else text.count(words)
        missing += items[found:]
    return missing
