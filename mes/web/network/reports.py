"""Downloads of the comparability report: the signed PDF/A and its CSV, for a recipe and period.

``/network/comparability/<code>/report.pdf?from=YYYY-MM-DD&to=YYYY-MM-DD`` is made anew on each
request (it states when it was generated and by whom) and signed by the hub like a batch record;
``report.csv`` is the same data the PDF embeds and prints the SHA-256 of. The page's link
shows download.js's progress while the PDF is made.
"""

from __future__ import annotations

from datetime import date

from flask import Response, request
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.dates import parse_local_date
from mes.core.errors import InvalidInput
from mes.web import runtime, site_zone
from mes.web.actions import reading
from mes.web.helpers import requires, service_context
from mes.web.network.views import bp


def _period() -> tuple[date, date]:
    """The period of the query string (``from``, ``to``), both required."""
    days = []
    for name, label in (("from", "From"), ("to", "To")):
        text = request.args.get(name, "").strip()
        if not text:
            raise InvalidInput(
                f"The report needs a period: '{name}' is missing.",
                what_to_do="Choose the period on the comparability page and download again.",
            )
        days.append(parse_local_date(text, site_zone(), label=label))
    return days[0], days[1]


def _attachment(body: bytes, filename: str, mimetype: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/comparability/<string:code>/report.pdf")
@requires(Permission.WATCH_NETWORK)
def comparability_report_pdf(code: str) -> ResponseReturnValue:
    """The signed comparability report (PDF/A-3b, the CSV embedded)."""
    from mes.pdf.comparability import issue_comparability_report

    date_from, date_to = _period()
    issued = issue_comparability_report(runtime(), service_context(), code, date_from, date_to)
    return _attachment(issued.pdf, issued.filename, "application/pdf")


@bp.get("/comparability/<string:code>/report.csv")
@requires(Permission.WATCH_NETWORK)
def comparability_report_csv(code: str) -> ResponseReturnValue:
    """The report's data as CSV: the file the signed PDF embeds."""
    from mes.pdf.comparability import report_filename
    from mes.services import cpv

    date_from, date_to = _period()
    with reading() as (uow, ctx):
        view = cpv.comparability(uow, ctx, code, date_from, date_to)
    filename = report_filename(view.recipe_code, date_from, date_to).removesuffix(".pdf")
    return _attachment(cpv.comparability_csv(view).encode("utf-8"), f"{filename}.csv", "text/csv")
