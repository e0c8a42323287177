"""The comparability report: a recipe's continued process verification for a period, signed.

What QA signs off in an annual (product quality) review of a decentralised network, as one
document: per critical parameter the control chart (the same SVG the page draws,
:mod:`mes.services.charts`), a text summary, capability per site and network-wide, the
site-versus-network equivalence table with its verdicts, and every signal with QA's disposition
and who signed it. The data the charts and tables are made from is the page's CSV
(:func:`mes.services.cpv.comparability_csv`): it is embedded in the PDF (PDF/A-3 associated file,
relationship ``Data``) and written beside it, and its SHA-256 is printed on the cover, so the CSV
is bound to the signed report.

The pipeline is the batch record's (:mod:`mes.pdf.render`, :mod:`mes.pdf.readback`,
:mod:`mes.pdf.sign`): HTML from a template whose every word is escaped, laid out by WeasyPrint
as PDF/A-3b with the package-only fetcher, read back (the hub signs only a print that shows
every parameter, every signal and its disposition, and the CSV's digest) and signed with the
hub's document-signing certificate (PAdES). ``mes verify`` recognises the report by its
embedded manifest (:data:`MANIFEST_NAME`) and checks the signature, the embedded CSV against
the manifest's digest, the printed digest, and a CSV beside the file.

A period with no batch is still reported (and signed): an annual review states that nothing was
made rather than leaving a gap in the series of reports (APR/PQR practice).
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from mes.core.canonical import canonical_json
from mes.core.clock import local_text
from mes.core.critical import Criticality
from mes.core.errors import InvalidInput
from mes.pdf.readback import Expected, missing_from
from mes.pdf.render import TEMPLATES, Embedded, _css, _environment, render_document_pdf
from mes.pdf.verify import MANIFEST_NAME, REPORT_FORMAT

CSV_NAME = "comparability.csv"

DISPOSITION_TITLES = {
    "no_action": "No action",
    "deviation": "Deviation opened at the site",
    "capa": "CAPA",
}
NOT_ASSESSED = "Not assessed yet: no disposition signed by QA"


# --- the report in words ------------------------------------------------------------------------


@dataclass(frozen=True)
class CapabilityRow:
    """One line of a capability table: a site or the network."""

    scope: str
    n: str
    mean: str
    sd: str
    ppk: str
    ci: str


@dataclass(frozen=True)
class EquivalenceRow:
    """One site against the network: its numbers, the verdict, and the sentence."""

    site: str
    n: str
    mean: str
    sd: str
    difference: str
    ci: str
    margin: str
    verdict: str
    words: str


@dataclass(frozen=True)
class SignalRow:
    """A signal in words and QA's disposition of it (or that there is none yet)."""

    words: str
    disposition: str
    signed: str  # who signed the disposition and when, or ""


@dataclass(frozen=True)
class ParameterSection:
    """One critical parameter: its chart, summary and tables."""

    parameter: str
    title: str
    criticality: str
    specification: str
    limits: str
    chart_uri: str | None
    summary: str
    capability: tuple[CapabilityRow, ...]
    equivalence: tuple[EquivalenceRow, ...]
    signals: tuple[SignalRow, ...]


@dataclass(frozen=True)
class ComparabilityReport:
    """Everything the report prints, in words (and the chart images)."""

    recipe_code: str
    recipe_title: str
    date_from: str
    date_to: str
    hub: str
    hub_name: str
    generated_at: str  # in the hub's time zone, as printed
    generated_utc: datetime
    generated_by: str
    time_zone: str
    batches: int
    sites: tuple[str, ...]
    csv_name: str
    csv_sha256: str
    csv_bytes: int
    parameters: tuple[ParameterSection, ...]

    @property
    def title(self) -> str:
        """The report's title (also the PDF's)."""
        return f"Comparability report {self.recipe_code}, {self.date_from} to {self.date_to}"


def number(x: float | None, digits: int = 4) -> str:
    """``x`` with about ``digits`` significant digits, never in exponent form; "—" for none."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if x == 0:
        return "0"
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "−") if text.startswith("-") else text


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None and high is None else f"{number(low)} to {number(high)}"


def _with_unit(text: str, unit: str | None) -> str:
    return f"{text} {unit}" if unit else text


def _specification(low: float | None, high: float | None, unit: str | None) -> str:
    if low is None and high is None:
        return "no specification (action limits) in the recipe"
    if low is None:
        return _with_unit(f"at most {number(high)}", unit)
    if high is None:
        return _with_unit(f"at least {number(low)}", unit)
    return _with_unit(f"{number(low)} to {number(high)}", unit)


def _limits(parameter: Any) -> str:
    limits = parameter.limits
    if limits is None:
        return "no control limits: too few batches to compute them"
    text = (
        f"centre line {number(limits.centre)}, control limits {number(limits.lcl)} to "
        f"{number(limits.ucl)} (sigma {number(limits.sigma)}, from {limits.n} batches)"
    )
    baseline = getattr(parameter, "baseline", None)
    if limits.provisional or baseline is None:
        return text + " — provisional: no baseline frozen by QA yet"
    return text + f" — baseline frozen by {baseline}"


def _capability_rows(capability: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> list[Any]:
    items = capability.items() if isinstance(capability, Mapping) else capability
    rows = []
    for scope, c in items:
        if c is None:
            rows.append(CapabilityRow(scope, "—", "—", "—", "—", "too few values or no limits"))
            continue
        rows.append(
            CapabilityRow(
                scope,
                str(c.n),
                number(c.mean),
                number(c.sd),
                number(c.ppk, 3),
                _interval(c.ci_low, c.ci_high),
            )
        )
    return rows


def _equivalence_row(row: Any) -> EquivalenceRow:
    eq = row.equivalence
    return EquivalenceRow(
        site=eq.site,
        n=str(eq.n),
        mean=number(eq.mean),
        sd=number(eq.sd),
        difference=number(eq.difference),
        ci=_interval(eq.ci_low, eq.ci_high),
        margin=f"±{number(eq.margin)}",
        verdict="Equivalent" if eq.equivalent else "Not shown equivalent",
        words=row.words,
    )


def _signal_row(signal: Any, time_zone: str) -> SignalRow:
    d = signal.disposition
    if d is None:
        return SignalRow(signal.words, NOT_ASSESSED, "")
    title = DISPOSITION_TITLES.get(d.kind, d.kind.replace("_", " ").capitalize())
    if d.reference:
        title += f" {d.reference}"
    if getattr(d, "note", None):
        title += f" — {d.note}"
    signed = f"signed by {d.by}, {local_text(d.at, time_zone)}"
    return SignalRow(signal.words, title, signed)


def _summary(parameter: Any) -> str:
    points = parameter.points
    if not points:
        return f"No batch recorded {parameter.label} in the period."
    values = [p.value for p in points]
    sites = sorted({p.site for p in points})
    open_signals = sum(1 for s in parameter.signals if s.disposition is None)
    text = (
        f"{len(points)} batches from {len(sites)} site{'s' if len(sites) != 1 else ''} "
        f"({', '.join(sites)}); values from {number(min(values))} to {number(max(values))}"
        f"{' ' + parameter.unit if parameter.unit else ''}. "
    )
    if parameter.signals:
        text += (
            f"{len(parameter.signals)} signal{'s' if len(parameter.signals) != 1 else ''} "
            f"by the Western Electric/Nelson rules, {open_signals} not assessed yet."
        )
    else:
        text += "No signal by the Western Electric/Nelson rules."
    return text


def _criticality(value: Any) -> str:
    """A parameter's criticality in words ("Critical quality attribute")."""
    words = getattr(value, "words", None)
    if words is None:
        try:
            words = Criticality(str(value)).words
        except ValueError:
            words = str(value)
    return str(words)


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def comparability_report(
    view: Any,
    *,
    csv: bytes,
    chart: Callable[[Any], str] | None,
    generated_at: datetime,
    generated_by: str,
    hub: str,
    hub_name: str,
    time_zone: str,
) -> ComparabilityReport:
    """The report of ``view`` (a :class:`mes.services.cpv.ComparabilityView`) in words.

    ``chart(parameter_view)`` draws a parameter's control chart as SVG text; ``csv`` is the
    view's data as the page downloads it.
    """
    sections = []
    for p in view.parameters:
        sections.append(
            ParameterSection(
                parameter=p.parameter,
                title=_with_unit(p.label, f"({p.unit})" if p.unit else None),
                criticality=_criticality(p.criticality),
                specification=_specification(p.low, p.high, p.unit),
                limits=_limits(p),
                chart_uri=_svg_uri(chart(p)) if chart is not None and p.points else None,
                summary=_summary(p),
                capability=tuple(_capability_rows(p.capability)),
                equivalence=tuple(_equivalence_row(e) for e in p.equivalence),
                signals=tuple(_signal_row(s, time_zone) for s in p.signals),
            )
        )
    batches = {pt.batch_id for p in view.parameters for pt in p.points}
    sites = sorted({pt.site for p in view.parameters for pt in p.points})
    return ComparabilityReport(
        recipe_code=view.recipe_code,
        recipe_title=getattr(view, "recipe_title", "") or "",
        date_from=_day(view.date_from),
        date_to=_day(view.date_to),
        hub=hub,
        hub_name=hub_name,
        generated_at=local_text(generated_at, time_zone),
        generated_utc=generated_at.astimezone(UTC).replace(microsecond=0),
        generated_by=generated_by,
        time_zone=time_zone,
        batches=len(batches),
        sites=tuple(sites),
        csv_name=CSV_NAME,
        csv_sha256=hashlib.sha256(csv).hexdigest(),
        csv_bytes=len(csv),
        parameters=tuple(sections),
    )


def _day(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# --- HTML, read-back words, manifest ------------------------------------------------------------


@cache
def _report_css() -> str:
    return _css() + (TEMPLATES / "comparability.css").read_text(encoding="utf-8")


def comparability_html(report: ComparabilityReport) -> str:
    """The report as one HTML document (header and footer in its ``@page`` rules)."""
    return (
        _environment()
        .get_template("comparability.html")
        .render(
            report=report,
            css=_report_css(),
            created_iso=report.generated_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            header_left=f"{report.recipe_code} · {report.date_from} to {report.date_to}",
            header_right=f"Comparability report · {report.hub_name} ({report.hub})",
            footer_left=f"Data {report.csv_name} SHA-256 {report.csv_sha256}",
        )
    )


def expected_words(report: ComparabilityReport) -> list[Expected]:
    """What the printed report must show: each parameter, signal, disposition, the CSV digest."""
    expected = [Expected("the digest of the data (CSV)", f"SHA-256 {report.csv_sha256}")]
    for p in report.parameters:
        expected.append(Expected(f"the parameter {p.title}", p.title))
        for s in p.signals:
            expected.append(Expected(f"the signal '{s.words}'", s.words))
            expected.append(Expected(f"the disposition of '{s.words}'", s.disposition))
            if s.signed:
                expected.append(Expected(f"who signed the disposition of '{s.words}'", s.signed))
        for e in p.equivalence:
            expected.append(Expected(f"the equivalence of {e.site} on {p.title}", e.words))
    return expected


def manifest(report: ComparabilityReport) -> bytes:
    """The embedded manifest (canonical JSON): what the report covers and the CSV's digest."""
    return canonical_json(
        {
            "format": REPORT_FORMAT,
            "recipe_code": report.recipe_code,
            "period": {"from": report.date_from, "to": report.date_to},
            "hub": report.hub,
            "generated_at": report.generated_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generated_by": report.generated_by,
            "batches": report.batches,
            "sites": list(report.sites),
            "parameters": [p.parameter for p in report.parameters],
            "data": {"name": report.csv_name, "sha256": report.csv_sha256},
        }
    )


def render_comparability_pdf(report: ComparabilityReport, csv: bytes) -> bytes:
    """The unsigned PDF/A-3b report with its manifest and the CSV embedded."""
    embedded = [
        Embedded(
            manifest(report),
            MANIFEST_NAME,
            "What this comparability report covers and the SHA-256 of its data",
        ),
        Embedded(
            csv,
            report.csv_name,
            "The data of this report's charts and tables (CSV)",
            relationship="Data",
        ),
    ]
    return render_document_pdf(comparability_html(report), embedded, report.generated_utc)


def missing_in_print(report: ComparabilityReport, pdf: bytes) -> list[Expected]:
    """What the rendered report does not show (empty: it is whole)."""
    return missing_from(expected_words(report), pdf)


# --- issuing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedReport:
    """A signed report, its CSV, and the file names they are offered under."""

    pdf: bytes
    csv: bytes
    filename: str  # the PDF's; the CSV's is the same stem with .csv
    report: ComparabilityReport

    @property
    def csv_filename(self) -> str:
        """The CSV's file name: the PDF's stem with ``.csv``."""
        return self.filename.removesuffix(".pdf") + ".csv"


def report_filename(recipe_code: str, date_from: date, date_to: date) -> str:
    """``<CODE>-comparability-<from>-to-<to>.pdf`` (the code as typed in the recipe)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in recipe_code)
    return f"{safe}-comparability-{date_from.isoformat()}-to-{date_to.isoformat()}.pdf"


def check_period(date_from: date, date_to: date) -> None:
    """A report's period starts on or before the day it ends."""
    if date_to < date_from:
        raise InvalidInput(
            f"The period ends ({date_to.isoformat()}) before it starts ({date_from.isoformat()}).",
            what_to_do="Swap the two dates.",
        )


def issue_comparability_report(
    runtime: Any, ctx: Any, recipe_code: str, date_from: date, date_to: date
) -> IssuedReport:
    """The signed PDF/A-3b comparability report of ``recipe_code`` for the period, and its CSV.

    The view is read in one read-only transaction (the service checks who may read it); the
    report is made anew each time (it states when it was generated and by whom), read back,
    and signed by the hub like a batch record. Refused at a spoke (no document-signing key).
    """
    from mes.pdf.issue import COVER_STAMP_BOX, PrintIncomplete
    from mes.pdf.sign import sign_pdf
    from mes.services.document_certificate import load_document_key

    settings = runtime.settings
    key = load_document_key(settings)  # refused at a spoke, with what to do at a hub without
    check_period(date_from, date_to)
    from mes.services.charts import control_chart_svg
    from mes.services.cpv import comparability, comparability_csv

    with runtime.uow(read_only=True) as uow:
        view = comparability(uow, ctx, recipe_code, date_from, date_to)
    csv = comparability_csv(view).encode("utf-8")
    report = comparability_report(
        view,
        csv=csv,
        chart=control_chart_svg,
        generated_at=ctx.at,
        generated_by=view.generated_by,
        hub=settings.site_code,
        hub_name=settings.site_name,
        time_zone=settings.time_zone,
    )
    pdf = render_comparability_pdf(report, csv)
    missing = missing_in_print(report, pdf)
    if missing:
        raise PrintIncomplete(
            f"The printed comparability report of {report.recipe_code}",
            missing,
            leaves_out="part of the report",
            hides="a parameter's, signal's or disposition's words are hidden by the template",
        )
    signed = sign_pdf(
        pdf,
        key,
        at=ctx.at,
        reason=f"Comparability report {report.recipe_code} {report.date_from} to {report.date_to}",
        location=f"{settings.site_name} ({settings.site_code})",
        name=settings.site_name,
        stamp_page=0,
        stamp_box=COVER_STAMP_BOX,
    )
    return IssuedReport(signed, csv, report_filename(view.recipe_code, date_from, date_to), report)
