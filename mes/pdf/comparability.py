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
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cache, partial

import markupsafe

from mes.core.access import Permission
from mes.core.canonical import canonical_json
from mes.core.clock import local_text
from mes.core.cpv.rules import Direction, Rule
from mes.core.cpv.words import figure, ppk_figure, specification_words
from mes.core.dates import local_date_text, site_date_text
from mes.core.errors import InvalidInput
from mes.core.trends import NETWORK
from mes.pdf.readback import Expected, missing_from
from mes.pdf.render import (
    PAGE_NUMBER_STYLE,
    PARALLEL_FROM_ROWS,
    TEMPLATES,
    Embedded,
    _css,
    _environment,
    _join,
    _page_numbers_html,
    _pool_context,
    _render_part,
    attach,
    render_document_pdf,
)
from mes.pdf.verify import MANIFEST_NAME, REPORT_FORMAT
from mes.services.context import Context, authorise
from mes.services.cpv import (
    CapabilityRow,
    ComparabilityView,
    EquivalenceRow,
    ParameterView,
    SignalView,
    chart_summary,
)
from mes.services.runtime import Runtime
from mes.store.uow import UnitOfWork

CSV_NAME = "comparability.csv"

NETWORK_TITLE = "Network"
NOT_ASSESSED = "Not assessed yet: a trend to assess, no disposition signed by QA"
NOT_KEPT = (
    "None: found on provisional limits (no baseline frozen by QA), so not kept as a trend to assess"
)
NOT_KEPT_ON_BASELINE = (
    "None: this run, as the period shows it, is not a kept trend (a run begun before the period "
    "is kept from its first batch)"
)


# --- the report in words ------------------------------------------------------------------------


@dataclass(frozen=True)
class CapabilityLine:
    """One line of a capability table: a site or the network, and its sentence."""

    scope: str
    n: str
    mean: str
    sd: str
    ppk: str
    ci: str
    words: str


@dataclass(frozen=True)
class EquivalenceLine:
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
class SignalLine:
    """A signal in words and QA's disposition of it (or that there is none yet)."""

    words: str
    disposition: str
    signed: str  # who signed the disposition and when, or ""


@dataclass(frozen=True)
class SignalGroup:
    """Signals of one site (or the network), rule and direction sharing one disposition.

    A parameter with more than :data:`SIGNALS_IN_FULL` signals (at 50 sites × 1,000 batches the
    run rules' false alarms alone are hundreds per chart) lists its signals that QA has not
    signed a disposition of in such groups: the group's heading names the site, rule, direction
    and count, its disposition is printed once, and every signal is still listed, as its
    batches and their count (``SPK2-2026-0031 to SPK2-2026-0039 (9)``).
    """

    heading: str
    disposition: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class ParameterSection:
    """One critical parameter: its chart, summary and tables."""

    parameter: str
    title: str
    criticality: str
    specification: str
    limits: str
    margin: str
    chart_uri: str | None
    summary: str
    capability: tuple[CapabilityLine, ...]
    equivalence: tuple[EquivalenceLine, ...]
    signals: tuple[SignalLine, ...]  # in full: all, or those QA signed when there are many
    signal_groups: tuple[SignalGroup, ...] = ()  # the others, compactly, when there are many

    @property
    def signal_count(self) -> int:
        """Every signal of the parameter in the period (in full and in groups)."""
        return len(self.signals) + sum(len(g.items) for g in self.signal_groups)

    @property
    def open_signals(self) -> int:
        """Signals not yet signed off by QA (listed in full or in groups)."""
        return sum(1 for s in self.signals if not s.signed) + sum(
            len(g.items) for g in self.signal_groups
        )

    @property
    def equivalence_outcome(self) -> str:
        """The contents' words on equivalence: nothing was tested without a margin."""
        if not self.equivalence:
            return "no equivalence test (fewer than two sites)"
        if all(e.margin == "not set" for e in self.equivalence):
            return "no margin set"
        outside = sum(e.verdict == "Not shown equivalent" for e in self.equivalence)
        return f"{outside} site{'s' if outside != 1 else ''} not shown equivalent"


SIGNALS_IN_FULL = 40  # beyond this many signals on a parameter, the unsigned ones are grouped


@dataclass(frozen=True)
class ComparabilityReport:
    """Everything the report prints, in words (and the chart images)."""

    recipe_code: str
    date_from: str  # ISO (the manifest, the title, the file's name)
    date_to: str
    period_from: str  # as the site writes a date (05/12/2026): printed
    period_to: str
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


number = figure  # one number format on the page, in the report and in the words


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None and high is None else f"{number(low)} to {number(high)}"


def _with_unit(text: str, unit: str | None) -> str:
    return f"{text} {unit}" if unit else text


def _specification(low: float | None, high: float | None, unit: str | None) -> str:
    return specification_words(low, high, unit) or "no specification (action limits) in the recipe"


def _when(iso: str | None, time_zone: str) -> str:
    """An ISO instant of the view (UTC) as people at the hub read it."""
    if not iso:
        return ""
    at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return local_text(at if at.tzinfo else at.replace(tzinfo=UTC), time_zone)


def _limits(parameter: ParameterView, time_zone: str) -> str:
    limits = parameter.limits
    if limits is None:
        return "no control limits: fewer than two batches"
    unit = f" {parameter.unit}" if parameter.unit else ""
    text = (
        f"centre line {number(limits.centre)}{unit}, control limits {number(limits.lcl)} to "
        f"{number(limits.ucl)}{unit} (sigma {number(limits.sigma)}, from {limits.n} batches)"
    )
    baseline = parameter.baseline
    if limits.provisional or baseline is None:
        return text + " — provisional: computed from the batches shown, no baseline frozen by QA"
    return text + (
        f" — baseline of {baseline.batches} batches ({baseline.first_number} to "
        f"{baseline.last_number}) frozen by {baseline.frozen_by}, "
        f"{_when(baseline.frozen_at, time_zone)}"
    )


def _capability_row(row: CapabilityRow) -> CapabilityLine:
    c = row.capability
    scope = NETWORK_TITLE if row.scope == NETWORK else row.scope
    if c is None:
        return CapabilityLine(scope, str(row.n), "—", "—", "—", "—", row.words)
    return CapabilityLine(
        scope,
        str(c.n),
        number(c.mean),
        number(c.sd),
        ppk_figure(c.ppk),
        f"{ppk_figure(c.ci_low)} to {ppk_figure(c.ci_high)}",
        row.words,
    )


def _equivalence_row(row: EquivalenceRow) -> EquivalenceLine:
    eq = row.equivalence
    margin = f"±{number(row.margin)}" if row.margin is not None else "not set"
    if eq is None:
        return EquivalenceLine(
            row.site, str(row.n), "—", "—", "—", "—", margin, "Too few batches", row.words
        )
    if row.margin is None:
        verdict = "No margin set"
    else:
        verdict = "Equivalent" if eq.equivalent else "Not shown equivalent"
    return EquivalenceLine(
        site=row.site,
        n=str(eq.n),
        mean=number(eq.mean),
        sd=number(eq.sd),
        difference=number(eq.difference),
        ci=_interval(eq.ci_low, eq.ci_high),
        margin=margin,
        verdict=verdict,
        words=row.words,
    )


def _signal_row(signal: SignalView, provisional: bool, time_zone: str) -> SignalLine:
    if signal.trend_id is None:
        return SignalLine(signal.words, NOT_KEPT if provisional else NOT_KEPT_ON_BASELINE, "")
    if signal.disposition is None:
        return SignalLine(signal.words, NOT_ASSESSED, "")
    title = signal.disposition_words or signal.disposition
    if signal.reference:
        title += f" — reference {signal.reference}"
    if signal.comment:
        title += f" — {signal.comment}"
    signed = f"signed by {signal.decided_by}, {_when(signal.decided_at, time_zone)}"
    return SignalLine(signal.words, title, signed)


def _item(signal: SignalView) -> str:
    """A signal as its batches and their count: ``SPK2-2026-0031 to SPK2-2026-0039 (9)``."""
    numbers = signal.numbers
    batches = numbers[0] if len(numbers) == 1 else f"{numbers[0]} to {numbers[-1]}"
    return f"{batches} ({len(numbers)})"


def _direction(direction: str) -> str:
    try:
        return Direction(direction).words
    except ValueError:
        return direction


def _signals(
    p: ParameterView, provisional: bool, time_zone: str
) -> tuple[tuple[SignalLine, ...], tuple[SignalGroup, ...]]:
    """The signals in full (few, or signed by QA) and the others in groups (many)."""
    lines = [_signal_row(s, provisional, time_zone) for s in p.signals]
    if len(lines) <= SIGNALS_IN_FULL:
        return tuple(lines), ()
    full: list[SignalLine] = []
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for signal, line in zip(p.signals, lines, strict=True):
        if line.signed:
            full.append(line)
            continue
        scope = signal.words.split(": ", 1)[0]
        key = (scope, str(signal.rule), signal.direction, line.disposition)
        groups.setdefault(key, []).append(_item(signal))
    made = []
    for (scope, rule, direction, disposition), items in groups.items():
        count = f"{len(items)} signal{'s' if len(items) != 1 else ''}"
        heading = f"{scope}: {Rule(rule).words} ({rule}), {_direction(direction)} — {count}"
        made.append(SignalGroup(heading, disposition, tuple(items)))
    return tuple(full), tuple(made)


PARALLEL_CHART_POINTS = 20_000  # from this many points in all, charts are drawn in processes
_CHARTING: tuple[Sequence[ParameterView], Callable[[ParameterView], str]] | None = None


def _chart_of(index: int) -> str:
    """In a forked worker: the chart of the ``index``-th parameter (inherited, not pickled)."""
    assert _CHARTING is not None
    parameters, chart = _CHARTING
    return _svg_uri(chart(parameters[index]))


def _chart_uris(
    parameters: Sequence[ParameterView], chart: Callable[[ParameterView], str] | None
) -> list[str | None]:
    """Each parameter's chart as a data URI (None: no chart), long series drawn in parallel.

    Thousands of points a chart take matplotlib about a second each: with many points, the
    charts are drawn by forked processes (which inherit the view: nothing is pickled but the
    SVG text that comes back), as many as the CPUs (at most 4).
    """
    global _CHARTING
    uris: list[str | None] = [None] * len(parameters)
    if chart is None:
        return uris
    todo = [i for i, p in enumerate(parameters) if p.points]
    workers = min(os.cpu_count() or 1, 4, len(todo))
    context = _pool_context()
    parallel = (
        workers > 1
        and sum(len(parameters[i].points) for i in todo) >= PARALLEL_CHART_POINTS
        and context.get_start_method() == "fork"
    )
    if not parallel:
        for i in todo:
            uris[i] = _svg_uri(chart(parameters[i]))
        return uris
    _CHARTING = (parameters, chart)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for i, uri in zip(todo, pool.map(_chart_of, todo), strict=True):
                uris[i] = uri
    finally:
        _CHARTING = None
    return uris


def _section(
    p: ParameterView,
    chart_uri: str | None,
    time_zone: str,
) -> ParameterSection:
    signals, groups = _signals(p, p.limits is None or p.limits.provisional, time_zone)
    return ParameterSection(
        parameter=p.parameter,
        title=p.title,
        criticality=p.criticality or "Critical parameter",
        specification=_specification(p.spec_low, p.spec_high, p.unit or None),
        limits=_limits(p, time_zone),
        margin=(
            f"±{number(p.margin)}{' ' + p.unit if p.unit else ''}, set by {p.margin_set_by}"
            if p.margin is not None
            else "not set by QA: the sites' differences are shown without a verdict"
        ),
        chart_uri=chart_uri,
        summary=_summary(p),
        capability=tuple(_capability_row(c) for c in p.capability),
        equivalence=tuple(_equivalence_row(e) for e in p.equivalence),
        signals=signals,
        signal_groups=groups,
    )


def _summary(parameter: ParameterView) -> str:
    """The chart's summary in words (the page's), its signals counted: they are listed below."""
    text = chart_summary(replace(parameter, signals=[]))
    count = len(parameter.signals)
    if count:
        text += f" {count} signal{'s' if count != 1 else ''} of the run rules, listed below."
    return text


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def comparability_report(
    view: ComparabilityView,
    *,
    csv: bytes,
    chart: Callable[[ParameterView], str] | None,
    generated_at: datetime,
    generated_by: str,
    hub: str,
    hub_name: str,
    time_zone: str,
) -> ComparabilityReport:
    """The report of ``view`` in words.

    ``chart(parameter_view)`` draws a parameter's control chart as SVG text (the page's,
    :func:`mes.services.charts.control_chart_svg`); ``csv`` is the view's data as the page
    downloads it (:func:`mes.services.cpv.comparability_csv`).
    """
    uris = _chart_uris(view.parameters, chart)
    sections = [_section(p, uri, time_zone) for p, uri in zip(view.parameters, uris, strict=True)]
    return ComparabilityReport(
        recipe_code=view.recipe_code,
        date_from=_day(view.date_from),
        date_to=_day(view.date_to),
        period_from=_day(view.date_from, time_zone),
        period_to=_day(view.date_to, time_zone),
        hub=hub,
        hub_name=hub_name,
        generated_at=local_text(generated_at, time_zone),
        generated_utc=generated_at.astimezone(UTC).replace(microsecond=0),
        generated_by=generated_by,
        time_zone=time_zone,
        batches=view.batches,
        sites=tuple(view.sites),
        csv_name=CSV_NAME,
        csv_sha256=hashlib.sha256(csv).hexdigest(),
        csv_bytes=len(csv),
        parameters=tuple(sections),
    )


def _day(value: date | None, time_zone: str | None = None) -> str:
    """A day of the period: ISO, or with ``time_zone`` as the site writes a date (printed)."""
    if value is None:
        return "—"
    return value.isoformat() if time_zone is None else local_date_text(value, time_zone)


# --- HTML, read-back words, manifest ------------------------------------------------------------


@cache
def _report_css() -> str:
    return _css() + (TEMPLATES / "comparability.css").read_text(encoding="utf-8")


def _footer_left(report: ComparabilityReport) -> str:
    return f"Data {report.csv_name} SHA-256 {report.csv_sha256}"


def _html(
    report: ComparabilityReport,
    sections: Sequence[tuple[int, ParameterSection]],
    *,
    cover: bool,
    page_numbers: bool,
) -> str:
    return (
        _environment()
        .get_template("comparability.html")
        .render(
            report=report,
            sections=sections,
            cover=cover,
            page_numbers=page_numbers,
            page_number_style=markupsafe.Markup(PAGE_NUMBER_STYLE),  # noqa: S704 - ours
            css=_report_css(),
            created_iso=report.generated_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            header_left=f"{report.recipe_code} · {report.period_from} to {report.period_to}",
            header_right=f"Comparability report · {report.hub_name} ({report.hub})",
            footer_left=_footer_left(report),
        )
    )


def comparability_html(report: ComparabilityReport) -> str:
    """The report as one HTML document (header and footer in its ``@page`` rules)."""
    return _html(report, list(enumerate(report.parameters, start=1)), cover=True, page_numbers=True)


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
        for g in p.signal_groups:
            expected.append(Expected(f"the signals '{g.heading}' on {p.title}", g.heading))
            expected.append(Expected(f"the disposition of '{g.heading}'", g.disposition))
            expected += [
                Expected(f"the signal {item} of '{g.heading}' on {p.title}", item)
                for item in g.items
            ]
        for c in p.capability:
            expected.append(Expected(f"the capability of {c.scope} on {p.title}", c.words))
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


def _weight(section: ParameterSection) -> int:
    """Rows to lay out, roughly (a chart as 40 rows)."""
    grouped = sum(1 + len(g.items) // 4 for g in section.signal_groups)
    return (
        40
        + 2 * (len(section.capability) + len(section.equivalence))
        + len(section.signals)
        + grouped
    )


def render_comparability_pdf(
    report: ComparabilityReport, csv: bytes, *, workers: int | None = None
) -> bytes:
    """The unsigned PDF/A-3b report with its manifest and the CSV embedded.

    A long report (many sites, thousands of signals) is laid out as the batch record is
    (:mod:`mes.pdf.render`): the cover and each parameter's section in parallel processes, the
    pages joined, "page X of Y" and the digest laid over them, and the manifest and the CSV
    attached to the joined file (:func:`mes.pdf.render.attach`). ``workers``: processes (default:
    one for a short report, else the CPUs, at most 4).
    """
    embedded = [
        Embedded(
            manifest(report),
            MANIFEST_NAME,
            "What this comparability report covers and the SHA-256 of its data",
            relationship="Supplement",
        ),
        Embedded(
            csv,
            report.csv_name,
            "The data of this report's charts and tables (CSV)",
            relationship="Data",
        ),
    ]
    created = report.generated_utc
    weight = sum(_weight(p) for p in report.parameters)
    if workers is None:
        workers = 1 if weight < PARALLEL_FROM_ROWS else min(os.cpu_count() or 1, 4)
    if workers <= 1 or not report.parameters:
        return render_document_pdf(comparability_html(report), embedded, created)
    sections = [_html(report, [], cover=True, page_numbers=False)] + [
        _html(report, [(number, p)], cover=False, page_numbers=False)
        for number, p in enumerate(report.parameters, start=1)
    ]
    # the cover is a part like the others; the manifest and the CSV are attached to the joined
    # pages (laid out with the cover, the CSV held up the join: issue 16)
    weights = [0] + [_weight(p) for p in report.parameters]
    order = sorted(range(len(sections)), key=lambda i: -weights[i])
    with ProcessPoolExecutor(
        max_workers=min(workers, len(sections)), mp_context=_pool_context()
    ) as pool:
        futures = {i: pool.submit(_render_part, sections[i]) for i in order}
        parts = [futures[i].result() for i in range(len(sections))]
    pages = sum(part.pages for part in parts)
    joined = _join(parts, _render_part(_page_numbers_html(pages, _footer_left(report))))
    return attach(joined, embedded, created)


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


def report_data(
    uow: UnitOfWork, ctx: Context, recipe_code: str, date_from: date, date_to: date
) -> tuple[ComparabilityView, bytes]:
    """The report's view and its CSV, each point tied to the ledger entry it stands on.

    The period's values are first checked against their ledger entries (one query): a value
    changed in ``parameter_results`` behind the hub's back refuses the report, nothing written.
    """
    from mes.services.cpv import comparability, comparability_csv
    from mes.services.read_models import checked_against_ledger

    check = checked_against_ledger(
        uow,
        (recipe_code or "").strip(),
        recorded_from=date_from.isoformat(),
        recorded_before=f"{date_to.isoformat()}U",  # as mes.store.cpv: every time of date_to
    )
    view = comparability(uow, ctx, recipe_code, date_from, date_to)
    return view, comparability_csv(view, ledger=check.ties).encode("utf-8")


def issue_comparability_report(
    runtime: Runtime, ctx: Context, recipe_code: str, date_from: date, date_to: date
) -> IssuedReport:
    """The signed PDF/A-3b comparability report of ``recipe_code`` for the period, and its CSV.

    The view is computed as the page computes it (the service checks who may read it, and keeps
    the trends found on frozen baselines, so each is shown with its state); the report is made
    anew each time (it states when it was generated and by whom), read back,
    and signed by the hub like a batch record. Refused at a spoke (no document-signing key).
    """
    from mes.pdf.issue import COVER_STAMP_BOX, PrintIncomplete
    from mes.pdf.sign import sign_pdf
    from mes.services.document_certificate import load_document_key

    settings = runtime.settings
    key = load_document_key(settings)  # refused at a spoke, with what to do at a hub without
    check_period(date_from, date_to)
    from mes.services.charts import PRINT_RASTER_FROM, control_chart_svg

    with runtime.uow() as uow:  # as the page: new trends on frozen baselines are kept
        view, csv = report_data(uow, ctx, recipe_code, date_from, date_to)
        actor = authorise(uow, ctx, Permission.WATCH_NETWORK)  # who generates it, in words
    report = comparability_report(
        view,
        csv=csv,
        chart=partial(
            control_chart_svg,
            raster_from=PRINT_RASTER_FROM,
            day=partial(site_date_text, time_zone=settings.time_zone),
        ),
        generated_at=ctx.at,
        generated_by=f"{actor.name} ({actor.username})" if actor.user_id else actor.name,
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
