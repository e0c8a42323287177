"""Every CSV the hub writes goes through one guard against formula injection."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from test_turnaround import BATCHES

from mes.core.csvtext import cell_text, csv_text, safe_cell
from mes.core.turnaround import turnaround
from mes.services.turnaround import RecipeTurnaround, TurnaroundView, turnaround_csv


def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe():
    assert [safe_cell(v) for v in ("=1+1", "+1", "-x", "@SUM(A1)", "\tx", "ok", 1.5, None)] == [
        "'=1+1", "'+1", "'-x", "'@SUM(A1)", "'\tx", "ok", "1.5", "",
    ]  # fmt: skip
    assert csv_text([["a", "=b"]]) == "a,'=b\r\n"


def test_the_turnaround_csv_is_guarded_like_the_cpv_csv():
    """Review: the turnaround CSV wrote a site code '=HYPERLINK(…)' as a formula."""
    hostile = [replace(b, site='=HYPERLINK("x")') if b.site == "SPK2" else b for b in BATCHES]
    stats = turnaround("CART", hostile)
    recipe = RecipeTurnaround("CART", 1, None, None, stats, [], {})
    view = TurnaroundView([recipe], None, ["CART"], date(2026, 1, 1), date(2026, 12, 31))
    text = turnaround_csv(view)
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_a_cell_written_alone_is_written_as_in_a_row():
    cells = ["=1+1", "-2", 'a "b", c', "x\r\ny", "plain", 1.5, float("nan"), 3, None, "", "@s"]
    line = ",".join(cell_text(c) for c in cells) + "\r\n"
    assert csv_text([cells]) == line
    assert csv_text([["h"]], written=[line], after=[["t"]]) == f"h\r\n{line}t\r\n"
