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

__all__ = ["csv_text", "safe_cell"]

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


def csv_text(
    rows: Iterable[Sequence[object]],
    *,
    made_safe: Iterable[Sequence[object]] = (),
    after: Iterable[Sequence[object]] = (),
) -> str:
    """The rows as CSV text (CRLF line ends, as RFC 4180), every cell through :func:`safe_cell`.

    ``made_safe``: rows written next as they are, their cells already through :func:`safe_cell`
    (a report's million points share most cells, made safe once); ``after``: rows written last.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    writer.writerows(made_safe)
    for row in after:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()
