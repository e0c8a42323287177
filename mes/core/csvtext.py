"""CSV files the hub writes for spreadsheets: one writer, one guard against formula injection.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel and LibreOffice (OWASP "CSV injection"); a recipe label, a site code or a comment typed at
a spoke could carry one, so every text cell starting so is written with a leading apostrophe.
Numbers stay numbers (a float as its exact ``repr``, NaN as empty), None is empty.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence

__all__ = ["cell_text", "csv_text", "safe_cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A cell as written: a text a spreadsheet could take for a formula gets an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def cell_text(value: object) -> str:
    """One cell as :func:`csv_text` writes it: through :func:`safe_cell`, quoted when it must be.

    For a report's million points written a line at a time (``written``): a cell many points
    share is written once. Quoted as :class:`csv.writer` quotes (minimal: a comma, a quote, a
    line break; a quote doubled).
    """
    text = str(safe_cell(value))
    if "," in text or '"' in text or "\r" in text or "\n" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_text(
    rows: Iterable[Sequence[object]],
    *,
    written: Iterable[str] = (),
    after: Iterable[Sequence[object]] = (),
) -> str:
    """The rows as CSV text (CRLF line ends, as RFC 4180), every cell through :func:`safe_cell`.

    ``written``: lines written next as they are, already CSV text with their CRLF (their cells
    through :func:`cell_text`: a report's million points share most cells, written once);
    ``after``: rows written last.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    out.write("".join(written))
    for row in after:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()
