"""Downloads of the comparability report: the signed PDF/A and its CSV, for a recipe and period.

``/network/comparability/<code>/report.pdf?from=…&to=…`` (the page's period, in the site's
date order; "to" empty is today) is made anew on each request — it states when it was generated
and by whom — and signed by the hub like a batch record; ``report.csv`` is the data the PDF
embeds and prints the SHA-256 of, under the PDF's file name. The page's link shows
download.js's progress while the PDF is made.
"""

from __future__ import annotations

from flask import Response, g
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.web import runtime
from mes.web.actions import reading
from mes.web.helpers import requires, service_context
from mes.web.network.comparability import _period, bp


def _attachment(body: bytes, filename: str, mimetype: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/<code>/report.pdf")
@requires(Permission.WATCH_NETWORK)
def report_pdf(code: str) -> ResponseReturnValue:
    """The signed comparability report of the period (PDF/A-3b, its CSV embedded)."""
    from mes.pdf.comparability import issue_comparability_report

    date_from, date_to, _typed = _period()
    issued = issue_comparability_report(
        runtime(), service_context(), code, date_from, date_to or g.now.date()
    )
    return _attachment(issued.pdf, issued.filename, "application/pdf")


@bp.get("/<code>/report.csv")
@requires(Permission.WATCH_NETWORK)
def report_csv(code: str) -> ResponseReturnValue:
    """The report's data as CSV: the file the signed PDF of the same period embeds."""
    from mes.pdf.comparability import report_data, report_filename

    date_from, date_to, _typed = _period()
    date_to = date_to or g.now.date()
    with reading(read_only=False) as (uow, ctx):  # as the report: trends on frozen baselines kept
        view, data = report_data(uow, ctx, code, date_from, date_to)
    name = report_filename(view.recipe_code, date_from, date_to).removesuffix(".pdf") + ".csv"
    return _attachment(data, name, "text/csv")
