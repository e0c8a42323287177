"""Continued process verification across the network (FDA PV guidance stage 3; Annex 15 §5.28).

:func:`comparability` is what the hub's comparability page and the comparability report show for
a recipe code and a period: for each critical number the recipe marks (followed across versions
while its key ``phase_id.value_id`` and unit stay the same), its points in batch order, the
control limits (from the baseline QA froze, else provisional from the points shown), the
signals of the run rules in words with QA's dispositions, capability (Ppk with its interval)
per site and network-wide, and each site's equivalence with the rest of the network.

Governance, each a GMP record of the hub signed by QA in its audit trail (21 CFR 11.50, 11.70):
:func:`freeze_baseline` (signed "approved"; a later one supersedes), :func:`set_margin` (signed
"approved", with a reason), :func:`acknowledge_trend` (signed "acknowledged", with a
disposition and a comment).

**Trends** (signals kept for QA to assess) are judged only against a frozen baseline, over the
whole series since the baseline's period began: provisional limits move with the data shown, so
their signals are shown on the page but not kept. They are kept at ingest, in the transaction
that stores the batch (:func:`keep_new_trends`): with the limits frozen, every rule looks at
most 15 points back, so a received value is judged on the points around it in its site's series
and the network's (two indexed reads), and a signal reaches QA's queue without anyone opening
the page. Freezing a baseline judges the batches already received (:func:`freeze_baseline`),
and :func:`scan_trends` (``mes network cpv-scan``) rescans whole series. The comparability view
only reads.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from mes.core.access import Permission, Role
from mes.core.audit import Actor
from mes.core.clock import utc_text
from mes.core.cpv import (
    Capability,
    ControlLimits,
    Equivalence,
    Rule,
    Signal,
    capability,
    equivalence,
    equivalence_words,
    imr_limits,
    signal_words,
    signals,
)
from mes.core.cpv.rules import WINDOW
from mes.core.cpv.words import figure, ppk_figure, specification_words
from mes.core.critical import Criticality, critical_inputs
from mes.core.csvtext import cell_text, csv_text
from mes.core.errors import InvalidInput, NotFound
from mes.core.esign import Meaning
from mes.core.trends import (
    BASELINE_RECORD_TYPE,
    DEFAULT_BASELINE_BATCHES,
    MARGIN_RECORD_TYPE,
    NETWORK,
    TREND_RECORD_TYPE,
    Disposition,
    baseline_record,
    check_baseline_request,
    check_disposition,
    check_enough_for_baseline,
    check_margin,
    check_reason,
    check_spread,
    disposition_record,
    margin_record,
    parse_disposition,
)
from mes.services.audit import record_entry
from mes.services.context import Context, authorise
from mes.services.esign import Credentials, sign_record
from mes.services.ids import new_id
from mes.services.read_models import checked_against_ledger
from mes.store import cpv as store
from mes.store.uow import UnitOfWork

__all__ = [
    "NETWORK",
    "BaselineView",
    "CapabilityRow",
    "ComparabilityView",
    "EquivalenceRow",
    "ParameterView",
    "SeriesPoint",
    "SignalView",
    "TrendView",
    "TrendsToAssess",
    "acknowledge_trend",
    "chart_csv",
    "comparability",
    "comparability_csv",
    "freeze_baseline",
    "keep_new_trends",
    "parameters_of",
    "recipe_codes",
    "scan_trends",
    "set_margin",
    "trend_view",
    "trends_to_assess",
]

NETWORK_WORDS = "Network"
COMPLETE_ONLY = "Complete batches only: in-progress and aborted batches are left out."


class SeriesPoint(NamedTuple):
    """One batch's value of the parameter: a point of the charts (a tuple: 50,000 made fast)."""

    site: str
    number: str
    batch_id: str
    value: float
    at: str  # UTC text, when recorded
    version: int
    demo: bool = False  # the batch is demo data (``mes demo``): never mixed in silently


@dataclass(frozen=True)
class BaselineView:
    """The baseline in force: the limits QA froze, from which batches, signed by whom."""

    id: str
    date_from: date
    date_to: date
    batches: int
    first_number: str
    last_number: str
    frozen_at: str
    frozen_by: str
    reason: str | None


@dataclass(frozen=True)
class SignalView:
    """A signal of the run rules on one chart, in words, with QA's disposition when kept."""

    scope: str  # a site code or "network"
    rule: Rule
    direction: str
    numbers: tuple[str, ...]  # the batches of the run, in order
    first_batch_id: str
    words: str
    marked: tuple[str, ...] = ()  # the batches whose points break the rule (ringed on a chart)
    trend_id: str | None = None  # kept as a trend to assess (judged on a frozen baseline)
    disposition: str | None = None  # a Disposition value, once QA assessed it
    disposition_words: str | None = None
    reference: str | None = None
    comment: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None


@dataclass(frozen=True)
class CapabilityRow:
    """Ppk of one scope against the specification, with its interval (None: cannot be told)."""

    scope: str
    n: int
    capability: Capability | None
    words: str


@dataclass(frozen=True)
class EquivalenceRow:
    """One site against the rest of the network: TOST against QA's margin, or the CI alone."""

    site: str
    n: int
    equivalence: Equivalence | None
    margin: float | None
    words: str


@dataclass(frozen=True)
class ParameterView:
    """Everything shown for one critical number of the recipe over the period."""

    parameter: str  # phase_id.value_id
    unit: str  # '' without one
    label: str
    criticality: str | None  # Criticality words
    spec_low: float | None  # action limits of the newest version that has the parameter
    spec_high: float | None
    points: list[SeriesPoint]
    limits: ControlLimits | None  # None with fewer than 2 points
    baseline: BaselineView | None
    margin: float | None
    margin_set_by: str | None
    signals: list[SignalView]
    capability: list[CapabilityRow]
    equivalence: list[EquivalenceRow]
    sites: list[str] = field(default_factory=list)
    phase_name: str = ""  # the recipe's name of the phase that records it ('' when not known)

    @property
    def key(self) -> str:
        """The series' key in links and forms: 'phase.value|unit'."""
        return f"{self.parameter}|{self.unit}"

    @property
    def title(self) -> str:
        """'Viability at harvest (%)'."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def specification(self) -> str | None:
        """The specification in words ("at least 2 °C"); None when the recipe gives none."""
        return specification_words(self.spec_low, self.spec_high, self.unit or None)

    @property
    def demo_batches(self) -> int:
        """How many of the batches shown are demo data (a real hub has none)."""
        return sum(1 for p in self.points if p.demo)

    def points_of(self, scope: str) -> list[SeriesPoint]:
        """The points of one site, or every point for the network."""
        return self.points if scope == NETWORK else [p for p in self.points if p.site == scope]


@dataclass(frozen=True)
class ComparabilityView:
    """The comparability of a recipe code's critical numbers across the sites, over a period."""

    recipe_code: str
    date_from: date | None
    date_to: date | None
    parameters: list[ParameterView]
    sites: list[str]
    batches: int
    default_baseline_batches: int = DEFAULT_BASELINE_BATCHES

    @property
    def demo_batches(self) -> int:
        """How many batches of the view are demo data."""
        return len({p.batch_id for view in self.parameters for p in view.points if p.demo})

    def parameter(self, key: str) -> ParameterView:
        """One parameter by its key ('phase.value|unit'), or :class:`NotFound`."""
        for view in self.parameters:
            if view.key == key:
                return view
        raise NotFound(
            f"{self.recipe_code} has no critical number {key.split('|')[0]!r} in this period.",
            what_to_do="Choose one of the parameters the page lists.",
        )


def split_key(key: str) -> store.Series:
    """'phase.value|unit' → (parameter, unit)."""
    parameter, _, unit = (key or "").partition("|")
    return parameter.strip(), unit.strip()


# --- reading ------------------------------------------------------------------------------------


def recipe_codes(uow: UnitOfWork, ctx: Context) -> list[str]:
    """The recipe codes with critical numbers received from the spokes."""
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    return store.recipe_codes(uow.session)


def parameters_of(uow: UnitOfWork, ctx: Context, recipe_code: str) -> list[tuple[str, str]]:
    """The recipe code's critical numbers, in recipe order: (key 'phase.value|unit', title).

    From the recipe's versions at the hub (the numbers received when none is held here).
    """
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    code = (recipe_code or "").strip()
    specs = _specifications(uow, code)
    found = {series: spec[0] for series, spec in specs.items()}
    if not found:
        found = store.series_of(uow.session, code)
    return parameter_titles(found, specs)


def parameter_titles(
    labels: Mapping[store.Series, str], specs: Mapping[store.Series, tuple]
) -> list[tuple[str, str]]:
    """(key, title) of each series, told apart where a label is given to several.

    A label the recipe gives several critical numbers (a viability at receipt, at harvest, at
    release) is followed by its phase's name, as the recipe names it ("Viability (%) — Harvest"),
    else (no recipe at the hub) its phase ID in words.
    """
    titles = {
        series: f"{label} ({series[1]})" if series[1] else label for series, label in labels.items()
    }
    count: dict[str, int] = {}
    for title in titles.values():
        count[title] = count.get(title, 0) + 1
    return [
        (
            f"{parameter}|{unit}",
            title
            if count[title] == 1
            else f"{title} — {_phase_name(specs.get((parameter, unit)), parameter)}",
        )
        for (parameter, unit), title in titles.items()
    ]


def _phase_name(spec: tuple | None, parameter: str) -> str:
    """The recipe's name of the parameter's phase (its ID when the hub holds no recipe)."""
    return (spec[4] if spec else "") or parameter.split(".", 1)[0].replace("_", " ")


def comparability(
    uow: UnitOfWork,
    ctx: Context,
    recipe_code: str,
    date_from: date | None,
    date_to: date | None,
    *,
    only: str | None = None,
    chart_of: str | None = None,
) -> ComparabilityView:
    """The comparability view of ``recipe_code`` over the period (inclusive days, UTC).

    Readers of the network (Permission.WATCH_NETWORK); it only reads: the trends on frozen
    baselines are kept as batches arrive (:func:`keep_new_trends`), as QA freezes a baseline
    and by :func:`scan_trends`. ``only``: the key ('phase.value|unit') of the one parameter
    wanted (a chart), else every one. ``chart_of``: with ``only``, what one chart of that scope
    (a site code or NETWORK) needs: its signals only, no capability or equivalence.
    """
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    if date_from is not None and date_to is not None and date_to < date_from:
        raise InvalidInput("The period ends before it starts.", what_to_do="Swap the two dates.")
    code = (recipe_code or "").strip()
    series = split_key(only) if only is not None else None
    grouped: dict[store.Series, tuple[list[SeriesPoint], str]] = {}
    if series is not None:  # one chart: its points alone, straight into their tuples
        rows, newest_label = store.series_points(uow.session, code, date_from, date_to, series)
        if rows:
            grouped[series] = (list(map(SeriesPoint._make, rows)), newest_label or series[0])
    else:
        by_series: dict[store.Series, list[store.ResultRow]] = {}
        for row in store.results(uow.session, code, date_from, date_to):
            by_series.setdefault((row.parameter, row.unit), []).append(row)
        grouped = {key: (_points(found), found[-1].label) for key, found in by_series.items()}
    if not grouped and code not in store.recipe_codes(uow.session):
        raise NotFound(
            f"No critical numbers of a recipe {code!r} have been received.",
            what_to_do="Choose a recipe code the page lists.",
        )
    specs = _specifications(uow, code)
    baselines = store.baselines(uow.session, code)
    margins = store.margins(uow.session, code)
    # Every trend kept on a run that overlaps the period, with QA's disposition, straight from
    # the trends kept (not matched to the signals of the points shown: a period that starts or
    # ends inside a run would lose them, and its part of the run would show as new).
    kept = {
        key: store.series_trends(
            uow.session, code, key, date_from, date_to, chart_of if only is not None else None
        )
        for key in grouped
    }
    signers = store.people(
        uow.session,
        [b.frozen_by for b in baselines.values()]
        + [m.set_by for m in margins.values()]
        + [
            k.row.disposition.decided_by
            for found in kept.values()
            for k in found
            if k.row.disposition is not None
        ],
    )
    order = {series: i for i, series in enumerate(specs)}
    parameters = [
        _parameter_view(
            key,
            *grouped[key],
            specs.get(key),
            baselines.get(key),
            margins.get(key),
            kept[key],
            signers,
            chart_of=chart_of if only is not None else None,
        )
        for key in sorted(grouped, key=lambda s: (order.get(s, len(order)), s))
    ]
    sites = sorted({site for view in parameters for site in view.sites})
    batches = len({p.batch_id for view in parameters for p in view.points})
    return ComparabilityView(code, date_from, date_to, parameters, sites, batches)


def _specifications(uow: UnitOfWork, recipe_code: str) -> dict[store.Series, tuple]:
    """Each critical number's label, criticality words and action limits, in recipe order.

    From the newest version of the recipe that has it. Where two numbers of the recipe share a
    label ("Viability" at harvest and at release testing), each is named with its phase
    ("Viability at release testing"): the words QA signs, the charts' titles, the CSV and the
    report must tell them apart.
    """
    found: dict[store.Series, tuple] = {}
    phases: dict[store.Series, str] = {}
    for _version, compiled in store.compiled_versions(uow.session, recipe_code):
        for item in critical_inputs(json.loads(compiled)):
            series = (item.parameter, item.unit or "")
            phases.setdefault(series, item.phase_name)
            found.setdefault(
                series,
                (
                    item.label,
                    Criticality(item.criticality).words,
                    item.action_low,
                    item.action_high,
                    item.phase_name,
                ),
            )
    return {
        series: (distinct_label(series, found, phases), *spec[1:]) for series, spec in found.items()
    }


def distinct_label(
    series: store.Series, found: Mapping[store.Series, tuple], phases: Mapping[store.Series, str]
) -> str:
    """The label, with its phase's name when another number of the recipe has the same label."""
    label = found[series][0]
    same = [s for s, spec in found.items() if spec[0].casefold() == label.casefold()]
    if len({s[0] for s in same}) < 2:
        return label
    phase = phases.get(series) or series[0].split(".")[0]
    phase = phase if phase[1:2].isupper() else phase[:1].lower() + phase[1:]
    if phase.casefold() in label.casefold():
        return label
    return f"{label} at {phase}"


def _limits(baseline: store.CpvBaseline | None, values: Sequence[float]) -> ControlLimits | None:
    if baseline is not None:
        return ControlLimits(
            centre=baseline.centre,
            sigma=baseline.sigma,
            lcl=baseline.lcl,
            ucl=baseline.ucl,
            mr_centre=baseline.mr_centre,
            mr_ucl=baseline.mr_ucl,
            n=baseline.batches,
            provisional=False,
        )
    return imr_limits(values, provisional=True) if len(values) >= 2 else None


def _scope_words(scope: str) -> str:
    return NETWORK_WORDS if scope == NETWORK else scope


def _signals_of(
    scope: str, points: Sequence[SeriesPoint], limits: ControlLimits, label: str
) -> list[tuple[SignalView, Sequence[SeriesPoint]]]:
    if len(points) < 2 or limits.sigma <= 0:
        return []
    numbers = [p.number for p in points]
    found = []
    for signal in signals([p.value for p in points], limits):
        run = points[signal.first : signal.last + 1]
        view = SignalView(
            scope=scope,
            rule=signal.rule,
            direction=str(signal.direction),
            numbers=tuple(p.number for p in run),
            first_batch_id=run[0].batch_id,
            words=signal_words(signal, scope=_scope_words(scope), parameter=label, numbers=numbers),
            marked=_marked(signal, run, limits),
        )
        found.append((view, run))
    return found


def _marked(signal: Signal, run: Sequence[SeriesPoint], limits: ControlLimits) -> tuple[str, ...]:
    """The batches of a signal whose points break the rule.

    Every point of an "in a row" run; for "beyond 3σ", "2 of 3 beyond 2σ" and "4 of 5 beyond
    1σ", only the points beyond the zone on the signal's side (the others only share the window).
    """
    zone = {Rule.BEYOND_3_SIGMA: 3.0, **{rule: k for rule, (_m, _n, k) in WINDOW.items()}}.get(
        signal.rule
    )
    if zone is None:
        return tuple(p.number for p in run)
    edge = zone * limits.sigma
    if signal.direction == "above":
        return tuple(p.number for p in run if p.value > limits.centre + edge)
    if signal.direction == "below":
        return tuple(p.number for p in run if p.value < limits.centre - edge)
    return tuple(p.number for p in run if abs(p.value - limits.centre) > edge)


def _listed(
    scope: str,
    points: Sequence[SeriesPoint],
    limits: ControlLimits,
    label: str,
    kept: Sequence[store.KeptTrend],
    signers: dict[str, str],
) -> list[SignalView]:
    """The signals of one chart: every kept trend overlapping the period, then the new ones.

    A kept trend is shown as kept (its words, its disposition) even when the period holds only
    part of its run; a signal of the points shown is added only where no trend of the same rule
    is kept on a run that overlaps it (else a period starting inside a run would show the rest
    of it as a new signal with no disposition).
    """
    keys = [(p.at, p.number) for p in points]
    computed = _signals_of(scope, points, limits, label)
    covered: dict[int, list[int]] = {}  # kept trend → the signals of the points shown it covers
    new: list[int] = []
    for j, (view, run) in enumerate(computed):
        home = next((i for i, item in enumerate(kept) if _covers(item, view, run, keys)), None)
        if home is None:
            new.append(j)
        else:
            covered.setdefault(home, []).append(j)
    listed: list[tuple[tuple[str, str], SignalView]] = []
    for i, item in enumerate(kept):
        trend = item.row.trend
        start, end = _extent(item)
        if i not in covered and not (keys and start <= keys[-1] and end >= keys[0]):
            continue  # a run that ended before the period (or kept on points not shown)
        inside = points[bisect_left(keys, start) : bisect_right(keys, end)]
        marked = [n for j in covered.get(i, []) for n in computed[j][0].marked]
        view = SignalView(
            scope=scope,
            rule=Rule(trend.rule),
            direction=trend.direction,
            numbers=tuple(
                dict.fromkeys([trend.first_number, *(p.number for p in inside), trend.last_number])
            ),
            first_batch_id=trend.first_batch_id,
            words=trend.words,
            marked=tuple(dict.fromkeys(marked)) if marked else tuple(p.number for p in inside),
        )
        listed.append((start, _with_trend(view, item.row, signers)))
    for j in new:
        view, run = computed[j]
        listed.append(((run[0].at, run[0].number), view))
    listed.sort(key=itemgetter(0))
    return [view for _start, view in listed]


def _extent(item: store.KeptTrend) -> tuple[tuple[str, str], tuple[str, str]]:
    """Where a kept trend's run starts and ends, as (recorded at, batch number)."""
    trend = item.row.trend
    return (item.first_at or "", trend.first_number), (item.last_at or "\uffff", trend.last_number)


def _covers(
    item: store.KeptTrend,
    view: SignalView,
    run: Sequence[SeriesPoint],
    keys: Sequence[tuple[str, str]],
) -> bool:
    """Whether a signal of the points shown is (part of) the run of a kept trend.

    Same rule, and the runs overlap; or the kept run began before the period and the signal
    begins within the first points shown (the rest of that run: a kept trend names the run as
    it stood when kept, and a run goes on as long as the rule holds).
    """
    if item.row.trend.rule != view.rule.value:
        return False
    start, end = _extent(item)
    if view.first_batch_id == item.row.trend.first_batch_id or _overlap(run, start, end):
        return True
    return (
        bool(keys) and start < keys[0] and bisect_left(keys, (run[0].at, run[0].number)) < RULE_SPAN
    )


def _overlap(run: Sequence[SeriesPoint], start: tuple[str, str], end: tuple[str, str]) -> bool:
    return (run[0].at, run[0].number) <= end and (run[-1].at, run[-1].number) >= start


def _with_trend(view: SignalView, row: store.TrendRow, signers: dict[str, str]) -> SignalView:
    done = row.disposition
    if done is None:
        return _replace(view, trend_id=row.trend.id)
    return _replace(
        view,
        trend_id=row.trend.id,
        disposition=done.disposition,
        disposition_words=Disposition(done.disposition).words,
        reference=done.reference,
        comment=done.comment,
        decided_by=signers.get(done.decided_by, done.decided_by),
        decided_at=utc_text(done.decided_at),
    )


def _replace(view: SignalView, **changes: object) -> SignalView:
    return replace(view, **changes)  # type: ignore[arg-type]


_POINT = itemgetter(
    5, 6, 7, 8, 9, 4, 10
)  # a ResultRow's site, number, batch, value, at, version, demo


def _points(rows: Sequence[store.ResultRow]) -> list[SeriesPoint]:
    return list(map(SeriesPoint._make, map(_POINT, rows)))


def _by_site(points: list[SeriesPoint]) -> dict[str, list[SeriesPoint]]:
    """The points of each site, in order (sites by code)."""
    grouped: dict[str, list[SeriesPoint]] = {}
    for point in points:
        grouped.setdefault(point.site, []).append(point)
    return dict(sorted(grouped.items()))


def _parameter_view(
    series: store.Series,
    points: list[SeriesPoint],
    newest_label: str,
    spec: tuple | None,
    baseline: store.CpvBaseline | None,
    margin: store.CpvMargin | None,
    kept: Sequence[store.KeptTrend],
    signers: dict[str, str],
    *,
    chart_of: str | None = None,
) -> ParameterView:
    parameter, unit = series
    label, criticality, low, high, phase_name = spec or (newest_label, None, None, None, "")
    values = np.fromiter((p.value for p in points), dtype=float, count=len(points))
    limits = _limits(baseline, values)
    by_site = _by_site(points)
    sites = list(by_site)

    def site_of() -> np.ndarray:
        return np.array([p.site for p in points])

    found: list[SignalView] = []
    if limits is not None:
        scopes = (NETWORK, *sites) if chart_of is None else (chart_of,)
        for scope in scopes:
            scoped = points if scope == NETWORK else by_site.get(scope, [])
            mine = [k for k in kept if k.row.trend.scope == scope]
            found += _listed(scope, scoped, limits, label, mine, signers)
    return ParameterView(
        parameter=parameter,
        unit=unit,
        label=label,
        criticality=criticality,
        spec_low=low,
        spec_high=high,
        points=points,
        limits=limits,
        baseline=_baseline_view(baseline, signers),
        margin=margin.margin if margin is not None else None,
        margin_set_by=signers.get(margin.set_by) if margin is not None else None,
        signals=found,
        capability=[]
        if chart_of
        else _capabilities(values, site_of(), sites, low, high, label, unit),
        equivalence=[]
        if chart_of
        else _equivalences(
            values, site_of(), sites, margin.margin if margin else None, label, unit
        ),
        sites=sites,
        phase_name=phase_name,
    )


def _baseline_view(row: store.CpvBaseline | None, signers: dict[str, str]) -> BaselineView | None:
    if row is None:
        return None
    return BaselineView(
        id=row.id,
        date_from=row.period_from,
        date_to=row.period_to,
        batches=row.batches,
        first_number=row.first_number,
        last_number=row.last_number,
        frozen_at=utc_text(row.frozen_at),
        frozen_by=signers.get(row.frozen_by, row.frozen_by),
        reason=row.reason,
    )


_number = figure  # one number format on the page, in the report and in the words


def _capabilities(
    values: np.ndarray,
    site_of: np.ndarray,
    sites: list[str],
    low: float | None,
    high: float | None,
    label: str,
    unit: str,
) -> list[CapabilityRow]:
    rows = []
    for scope in (NETWORK, *sites):
        scoped = values if scope == NETWORK else values[site_of == scope]
        found = capability(scoped, low, high) if len(scoped) >= 2 else None
        who = _scope_words(scope)
        if low is None and high is None:
            words = f"{who}: no Ppk — the recipe gives {label} no specification (action limits)"
        elif found is None:
            words = f"{who}: too few batches or no spread for a Ppk of {label}"
        else:
            words = (
                f"{who}: Ppk {ppk_figure(found.ppk)} (95 % CI {ppk_figure(found.ci_low)} to "
                f"{ppk_figure(found.ci_high)}) "
                f"over {found.n} batches, mean {_number(found.mean)}"
                f"{' ' + unit if unit else ''}, SD {_number(found.sd)}"
            )
        rows.append(CapabilityRow(scope, len(scoped), found, words))
    return rows


def _equivalences(
    values: np.ndarray,
    site_of: np.ndarray,
    sites: list[str],
    margin: float | None,
    label: str,
    unit: str,
) -> list[EquivalenceRow]:
    rows = []
    if len(sites) < 2:
        return rows
    for site in sites:
        mine = site_of == site
        own, rest = values[mine], values[~mine]
        found = equivalence(own, rest, margin if margin else 1.0, site=site)
        if found is None:
            words = f"{site}: too few batches (or no spread) to compare {label} with the rest of the network"
        elif margin is None:
            size = _number(abs(found.difference))
            if float(size) == 0:
                how = "is level with the rest of the network"
            else:
                way = "higher" if found.difference > 0 else "lower"
                how = f"is {size}{' ' + unit if unit else ''} {way} than the rest of the network"
            words = (
                f"{site} {label} {how} "
                f"(90 % CI {_number(found.ci_low)} to {_number(found.ci_high)}); "
                "no margin set: QA sets one"
            )
        else:
            words = equivalence_words(found, parameter=label, unit=unit or None)
        rows.append(EquivalenceRow(site, len(own), found, margin, words))
    return rows


# --- trends -------------------------------------------------------------------------------------


SYSTEM_CPV = Actor(user_id=None, username="system", name="System (CPV)")
# Every rule judges at most 15 points in a row (N7: fifteen within 1σ), so a signal is complete
# within the 15 points that end at its last; 5 points more before them tell where a run (or a
# chain of "4 of 5" windows) that reaches further back began.
RULE_SPAN, CONTEXT = 15, 5


def _keep_trend(
    uow: UnitOfWork,
    ctx: Context,
    recipe_code: str,
    series: store.Series,
    baseline: store.CpvBaseline,
    view: SignalView,
    run: Sequence[SeriesPoint],
) -> bool:
    """Keep one signal judged on a frozen baseline as a trend to assess, with its audit entry.

    False when it was kept already (by another transaction: the trend's unique key), or when
    a trend of the same rule and scope is kept on a run that overlaps this one (the same run
    seen from elsewhere, e.g. judged on a later baseline or from a window that starts inside it).
    """
    if store.overlapping_trend(
        uow.session, recipe_code, series, view.scope, view.rule.value, run[0].at, run[-1].at
    ):
        return False
    trend = store.CpvTrend(
        id=new_id(),
        recipe_code=recipe_code,
        parameter=series[0],
        unit=series[1],
        scope=view.scope,
        rule=view.rule.value,
        direction=view.direction,
        first_batch_id=run[0].batch_id,
        last_batch_id=run[-1].batch_id,
        first_number=run[0].number,
        last_number=run[-1].number,
        words=view.words[:1000],
        provisional=False,
        baseline_id=baseline.id,
        detected_at=ctx.at,
    )
    if not store.add_trend(uow.session, trend):
        return False
    record_entry(
        uow,
        ctx,
        SYSTEM_CPV,
        "CPV trend detected",
        TREND_RECORD_TYPE,
        trend.id,
        new={"recipe_code": recipe_code, "parameter": series[0], "signal": view.words},
    )
    return True


def _keep_series(
    uow: UnitOfWork,
    ctx: Context,
    recipe_code: str,
    series: store.Series,
    baseline: store.CpvBaseline,
    label: str | None,
    known: set[tuple[str, str, str, str]],
) -> int:
    """Keep the new signals of one series since its baseline's period began (whole series).

    ``label``: the parameter's label in the newest recipe version (None: the newest point's).
    """
    rows = store.results(uow.session, recipe_code, baseline.period_from, None, series=series)
    label = label or (rows[-1].label if rows else series[0])
    points = _points(rows)
    limits = _limits(baseline, [])
    by_site = _by_site(points)
    added = 0
    for scope in (NETWORK, *by_site):
        scoped = points if scope == NETWORK else by_site[scope]
        for view, run in _signals_of(scope, scoped, limits, label):  # type: ignore[arg-type]
            key = (series[0], scope, view.rule.value, view.first_batch_id)
            if key not in known and _keep_trend(uow, ctx, recipe_code, series, baseline, view, run):
                known.add(key)
                added += 1
    return added


def _keep_trends(uow: UnitOfWork, ctx: Context, recipe_code: str) -> int:
    """Keep the signals found on each frozen baseline since its period began; commit if any."""
    baselines = store.baselines(uow.session, recipe_code)
    if not baselines:
        return 0
    known = store.known_signals(uow.session, recipe_code)
    specs = _specifications(uow, recipe_code)
    added = 0
    for series, baseline in baselines.items():
        label = (specs.get(series) or (None,))[0]
        added += _keep_series(uow, ctx, recipe_code, series, baseline, label, known)
    if added:
        uow.commit()
    return added


def keep_new_trends(uow: UnitOfWork, at: datetime, changed: Sequence[Mapping[str, Any]]) -> int:
    """At ingest: judge the points a received batch added or changed against frozen baselines.

    ``changed``: the batch's ``parameter_results`` rows that are new or changed (as
    :func:`mes.store.read_models.refresh_batch` returns them). With a frozen baseline the
    limits are fixed and each rule needs only the last 15 points of a series, so for each
    changed value of a parameter with a baseline, its site's series and the network's are read
    around the point (20 before, 14 after: one indexed statement each) and the new signals are
    kept as trends to assess, in the caller's transaction (no commit). A signal that starts in
    the first 5 points of a window that does not reach the baseline's start is left alone: its
    run began further back, it was kept when it began (``mes network cpv-scan`` rescans whole
    series). The number kept.

    Without a frozen baseline of the batch's recipe this reads the baselines (one statement)
    and nothing else.
    """
    if not changed:
        return 0
    ctx = Context(at=at, user_id=None, terminal="hub ingest")
    added = 0
    for code in sorted({row["recipe_code"] for row in changed}):
        baselines = store.baselines(uow.session, code)
        if not baselines:
            continue
        specs = _specifications(uow, code)  # the labels QA reads (with the phase where clashing)
        for row in changed:
            series = (row["parameter"], row["unit"] or "")
            baseline = baselines.get(series)
            if (
                row["recipe_code"] != code
                or baseline is None
                or row["value"] is None
                or row["recorded_at"] < baseline.period_from.isoformat()
            ):
                continue
            limits = _limits(baseline, [])
            found: list[tuple[SignalView, Sequence[SeriesPoint]]] = []
            for site in (row["site"], None):
                rows, older = store.window(
                    uow.session, code, series, baseline.period_from, site,
                    row["recorded_at"], row["number"],
                    before=RULE_SPAN + CONTEXT, after=RULE_SPAN - 1,
                )  # fmt: skip
                points = _points(rows)
                scope = NETWORK if site is None else site
                found += [
                    (view, run)
                    for view, run in _signals_of(
                        scope, points, limits, (specs.get(series) or (row["label"],))[0]
                    )  # type: ignore[arg-type]
                    if not older or points.index(run[0]) >= CONTEXT
                ]
            if not found:
                continue
            known = store.known_among(
                uow.session, code, series[0], {view.first_batch_id for view, _run in found}
            )
            for view, run in found:
                key = (series[0], view.scope, view.rule.value, view.first_batch_id)
                if key not in known and _keep_trend(uow, ctx, code, series, baseline, view, run):
                    known.add(key)
                    added += 1
    return added


def scan_trends(uow: UnitOfWork, ctx: Context, recipe_code: str | None = None) -> int:
    """Keep every new trend of the recipe code (or of every code); the number kept.

    The command line's scan (``mes network cpv-scan``, run from a timer) and the QA queue's
    source, so trends reach QA without anyone opening the comparability page.
    """
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    if recipe_code is not None:
        recipe_code = recipe_code.strip()
        if recipe_code not in store.recipe_codes(uow.session) and not store.compiled_versions(
            uow.session, recipe_code
        ):
            raise NotFound(
                f"The hub knows no recipe {recipe_code!r}.",
                what_to_do="Give a recipe code of the hub (or no --recipe: every one).",
            )
    codes = [recipe_code] if recipe_code else store.recipe_codes(uow.session)
    return sum(_keep_trends(uow, ctx, code) for code in codes)


@dataclass(frozen=True)
class TrendsToAssess:
    """QA's trends to assess: the oldest first, and how many there are."""

    count: int
    trends: list[store.CpvTrend]


def trends_to_assess(uow: UnitOfWork, ctx: Context, *, limit: int = 20) -> TrendsToAssess:
    """The trends no one has assessed yet, for QA's queue (Permission.GOVERN_CPV)."""
    authorise(uow, ctx, Permission.GOVERN_CPV)
    count, rows = store.open_trends(uow.session, limit)
    return TrendsToAssess(count, rows)


@dataclass(frozen=True)
class TrendView:
    """One trend for QA's assessment: the signal in words, where, and its disposition if any."""

    trend: store.CpvTrend
    disposition: store.CpvDisposition | None
    decided_by: str | None
    baseline_from: date | None

    @property
    def key(self) -> str:
        """The series' key ('phase.value|unit') of the comparability page."""
        return f"{self.trend.parameter}|{self.trend.unit}"

    @property
    def disposition_words(self) -> str | None:
        """QA's disposition in words (None while open)."""
        return Disposition(self.disposition.disposition).words if self.disposition else None


def trend_view(uow: UnitOfWork, ctx: Context, trend_id: str) -> TrendView:
    """One trend and its disposition, for readers of the network (Permission.WATCH_NETWORK)."""
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    found = store.trend(uow.session, (trend_id or "").strip()[:36])
    if found is None:
        raise NotFound("There is no such trend.", what_to_do="Open it from the QA queue.")
    signer = found.disposition.decided_by if found.disposition else None
    names = store.people(uow.session, [signer] if signer else [])
    baseline = (
        uow.session.get(store.CpvBaseline, found.trend.baseline_id)
        if found.trend.baseline_id
        else None
    )
    return TrendView(
        found.trend,
        found.disposition,
        names.get(signer) if signer else None,
        baseline.period_from if baseline is not None else None,
    )


# --- governance ---------------------------------------------------------------------------------


def freeze_baseline(
    uow: UnitOfWork,
    ctx: Context,
    recipe_code: str,
    key: str,
    date_from: date,
    date_to: date,
    batches: int | None,
    reason: str | None,
    *,
    credentials: Credentials,
    first_signing_in_session: bool,
) -> store.CpvBaseline:
    """QA freezes the control limits of a parameter from the first ``batches`` of a period.

    Network-wide, in the order the batches' values were recorded; signed "approved" by QA
    (21 CFR 11.50, 11.70: bound to the limits and the batches they came from). A later
    baseline of the same parameter supersedes it as a new record; the earlier stays.
    """
    actor = authorise(uow, ctx, Permission.GOVERN_CPV)
    request = check_baseline_request(date_from, date_to, batches)
    code = (recipe_code or "").strip()
    series = split_key(key)
    in_force = store.baselines(uow.session, code).get(series)
    why = check_reason(reason, required=in_force is not None, of="baseline")
    rows = store.results(uow.session, code, request.date_from, request.date_to, series=series)
    label = rows[0].label if rows else series[0]
    check_enough_for_baseline(len(rows), request.batches, label)
    chosen = rows[: request.batches]
    check_spread([r.value for r in chosen], label, series[1] or None)
    checked_against_ledger(  # refused, nothing written, when a value differs from its entry
        uow, code, parameter=series[0], unit=series[1], batch_ids=[r.batch_id for r in chosen]
    )
    limits = imr_limits([r.value for r in chosen])
    numbers = [r.number for r in chosen]
    record = baseline_record(
        recipe_code=code,
        parameter=series[0],
        unit=series[1],
        date_from=request.date_from,
        date_to=request.date_to,
        batch_numbers=numbers,
        centre=limits.centre,
        sigma=limits.sigma,
        lcl=limits.lcl,
        ucl=limits.ucl,
        mr_centre=limits.mr_centre,
        mr_ucl=limits.mr_ucl,
    )
    baseline_id = new_id()
    row = _qa_signed(
        uow, ctx, actor, BASELINE_RECORD_TYPE, baseline_id, record, Meaning.APPROVED,
        credentials, first_signing_in_session, "CPV baseline frozen", reason=why,
        row=lambda signature_seq: store.CpvBaseline(
            id=baseline_id, recipe_code=code, parameter=series[0], unit=series[1],
            period_from=request.date_from, period_to=request.date_to, batches=len(chosen),
            first_number=numbers[0], last_number=numbers[-1], centre=limits.centre,
            sigma=limits.sigma, lcl=limits.lcl, ucl=limits.ucl, mr_centre=limits.mr_centre,
            mr_ucl=limits.mr_ucl, frozen_at=ctx.at, frozen_by=ctx.user_id,
            signature_seq=signature_seq, reason=why,
        ),
    )  # fmt: skip
    # The batches already received are judged against it at once (later ones as they arrive).
    specs = _specifications(uow, code)
    _keep_series(
        uow, ctx, code, series, row, (specs.get(series) or (None,))[0],
        store.known_signals(uow.session, code),
    )  # fmt: skip
    uow.commit()
    return row


def _qa_signed(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    record_type: str,
    record_id: str,
    record: Mapping[str, Any],
    meaning: Meaning,
    credentials: Credentials,
    first_signing_in_session: bool,
    action: str,
    *,
    row: Callable[[int], Any],
    reason: str | None,
    old: Mapping[str, Any] | None = None,
) -> Any:
    """QA's decision on CPV: the signature bound to ``record``, the row, the audit entry.

    One rule for the three decisions (a baseline frozen, a margin set, a trend assessed): QA
    signs ``record`` with ``meaning``; ``row(signature_seq)`` is the decision's new row
    (append-only: a later one supersedes it); the hub's audit trail says what was decided,
    with the signature's entry. Same transaction; the caller commits.
    """
    signature = sign_record(
        uow,
        ctx,
        record_type=record_type,
        record_id=record_id,
        record=record,
        meaning=meaning,
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        signer_roles=[Role.QA.value],
    )
    added = row(signature.entry_seq)
    uow.add(added)
    record_entry(
        uow, ctx, actor, action, record_type, record_id,
        old=old, new={**record, "signature_entry": signature.entry_seq}, reason=reason,
    )  # fmt: skip
    return added


def set_margin(
    uow: UnitOfWork,
    ctx: Context,
    recipe_code: str,
    key: str,
    margin: float | None,
    reason: str | None,
    *,
    credentials: Credentials,
    first_signing_in_session: bool,
) -> store.CpvMargin:
    """QA sets the equivalence margin of a parameter (signed "approved", with a reason).

    The largest site-vs-network difference of means that is still equivalent, set in advance
    (ICH Q5E); a later margin supersedes it as a new record, and the audit trail keeps both.
    """
    actor = authorise(uow, ctx, Permission.GOVERN_CPV)
    value = check_margin(margin)
    why = check_reason(reason, required=True) or ""
    code = (recipe_code or "").strip()
    series = split_key(key)
    if not store.results(uow.session, code, None, None, series=series)[:1]:
        raise NotFound(
            f"{code} has no critical number {series[0]!r} received.",
            what_to_do="Choose one of the parameters the page lists.",
        )
    previous = store.margins(uow.session, code).get(series)
    record = margin_record(recipe_code=code, parameter=series[0], unit=series[1], margin=value)
    margin_id = new_id()
    row = _qa_signed(
        uow, ctx, actor, MARGIN_RECORD_TYPE, margin_id, record, Meaning.APPROVED,
        credentials, first_signing_in_session, "CPV equivalence margin set", reason=why,
        old={"margin": previous.margin} if previous is not None else None,
        row=lambda signature_seq: store.CpvMargin(
            id=margin_id,
            recipe_code=code,
            parameter=series[0],
            unit=series[1],
            margin=value,
            set_at=ctx.at,
            set_by=ctx.user_id,
            signature_seq=signature_seq,
            reason=why,
        ),
    )  # fmt: skip
    uow.commit()
    return row


def acknowledge_trend(
    uow: UnitOfWork,
    ctx: Context,
    trend_id: str,
    disposition: str | None,
    reference: str | None,
    comment: str | None,
    *,
    credentials: Credentials,
    first_signing_in_session: bool,
) -> store.TrendRow:
    """QA assesses a trend: no action, a deviation at the site, or a CAPA, with a comment.

    Signed "acknowledged" (bound to the trend's words and the decision) and kept in the hub's
    audit trail; a trend is assessed once (a second assessment is refused, naming the first).
    """
    actor = authorise(uow, ctx, Permission.GOVERN_CPV)
    chosen = parse_disposition(disposition)
    ref, text = check_disposition(chosen, reference, comment)
    found = store.trend(uow.session, trend_id, lock=True)
    if found is None:
        raise NotFound("There is no such trend.", what_to_do="Open it from the QA queue.")
    if found.disposition is not None:
        raise InvalidInput(
            f"This trend was already assessed: {Disposition(found.disposition.disposition).words}.",
            what_to_do="Reload the page to see the assessment.",
        )
    trend = found.trend
    record = disposition_record(
        trend_id=trend.id, words=trend.words, disposition=chosen, reference=ref, comment=text
    )
    row = _qa_signed(
        uow, ctx, actor, TREND_RECORD_TYPE, trend.id, record, Meaning.ACKNOWLEDGED,
        credentials, first_signing_in_session, "CPV trend assessed", reason=text,
        row=lambda signature_seq: store.CpvDisposition(
            trend_id=trend.id, disposition=chosen.value, reference=ref, comment=text,
            decided_at=ctx.at, decided_by=ctx.user_id, signature_seq=signature_seq,
        ),
    )  # fmt: skip
    uow.commit()
    return store.TrendRow(trend, row)


# --- CSV ----------------------------------------------------------------------------------------


def _csv(
    rows: list[list[object]], written: Sequence[str] = (), after: Sequence[list[object]] = ()
) -> str:
    """CSV text of ``rows``, then ``written`` (lines: :func:`_chart_lines`), then ``after``."""
    return csv_text(rows, written=written, after=after)


CHART_COLUMNS = [
    "recipe_code",
    "parameter",
    "unit",
    "label",
    "site",
    "batch",
    "recipe_version",
    "recorded_at",
    "value",
    "centre",
    "lcl",
    "ucl",
    "limits",
    "moving_range",
    "spec_low",
    "spec_high",
    "signals",
    "demo",
]


def _chart_lines(code: str, view: ParameterView, scope: str, section: str = "") -> list[str]:
    """The chart's rows as CSV lines (each cell through :func:`mes.core.csvtext.cell_text`).

    At 50 sites × 1,000 batches × 19 parameters the report's CSV has close to a million lines:
    the cells the parameter's points share (its code, limits, specification) are written once,
    a site's cell once per site, and each line is joined as text (issue 16).
    ``section``: a first cell (the report's ``point``).
    """
    limits = view.limits
    rules: dict[str, str] = {}
    for signal in view.signals:
        if signal.scope == scope:
            for number in signal.numbers:
                rules[number] = (
                    f"{rules[number]} {signal.rule.value}"
                    if number in rules
                    else (signal.rule.value)
                )
    head = ",".join(
        cell_text(v)
        for v in ((section,) if section else ()) + (code, view.parameter, view.unit, view.label)
    )
    shared = ",".join(
        cell_text(v)
        for v in (
            limits.centre if limits else None,
            limits.lcl if limits else None,
            limits.ucl if limits else None,
            ("provisional" if limits.provisional else "baseline") if limits else None,
        )
    )
    spec = ",".join(cell_text(v) for v in (view.spec_low, view.spec_high))
    sites: dict[str, str] = {}
    lines = []
    previous: float | None = None
    for point in view.points_of(scope):
        value = point.value
        site = sites.get(point.site)
        if site is None:
            site = sites[point.site] = cell_text(point.site)
        signals = rules.get(point.number)
        lines.append(
            f"{head},{site},{cell_text(point.number)},{cell_text(point.version)},"
            f"{cell_text(point.at)},{cell_text(value)},{shared},"
            f"{cell_text(abs(value - previous)) if previous is not None else ''},{spec},"
            f"{cell_text(signals) if signals else ''},{'demo' if point.demo else ''}\r\n"
        )
        previous = value
    return lines


def chart_csv(view: ComparabilityView, key: str, scope: str = NETWORK) -> str:
    """One chart's data as CSV: each point with the limits, its moving range and its signals."""
    parameter = view.parameter(key)
    return _csv([CHART_COLUMNS], _chart_lines(view.recipe_code, parameter, scope))


def comparability_csv(
    view: ComparabilityView, ledger: Mapping[tuple[str, str], Any] | None = None
) -> str:
    """The whole view as CSV, in sections: the points, capability, equivalence, signals.

    ``ledger``: per (batch ID, parameter) the entry its value stands on (``entry_seq`` and
    ``entry_hash``, :func:`mes.services.read_models.checked_against_ledger`): each point of the
    signed report tied to its ledger entry (the columns are empty without it).
    """
    ties = ledger or {}
    points: list[str] = []
    for parameter in view.parameters:
        lines = _chart_lines(view.recipe_code, parameter, NETWORK, "point")
        for point, line in zip(parameter.points_of(NETWORK), lines, strict=True):
            tie = ties.get((point.batch_id, parameter.parameter))
            ends = f"{tie.entry_seq},{tie.entry_hash}" if tie else ","
            points.append(line.removesuffix("\r\n") + f",{ends}\r\n")
    rows: list[list[object]] = [[]]
    rows.append(
        ["section", "recipe_code", "parameter", "unit", "scope", "n", "mean", "sd", "ppk",
         "ppk_ci_low", "ppk_ci_high", "spec_low", "spec_high"]
    )  # fmt: skip
    for parameter in view.parameters:
        for c in parameter.capability:
            cap = c.capability
            rows.append(
                ["capability", view.recipe_code, parameter.parameter, parameter.unit, c.scope, c.n]
                + ([cap.mean, cap.sd, cap.ppk, cap.ci_low, cap.ci_high] if cap else [None] * 5)
                + [parameter.spec_low, parameter.spec_high]
            )
    rows.append([])
    rows.append(
        ["section", "recipe_code", "parameter", "unit", "site", "n", "mean", "sd",
         "difference", "ci90_low", "ci90_high", "margin", "equivalent", "p_value"]
    )  # fmt: skip
    for parameter in view.parameters:
        for e in parameter.equivalence:
            eq = e.equivalence
            rows.append(
                ["equivalence", view.recipe_code, parameter.parameter, parameter.unit, e.site, e.n]
                + ([eq.mean, eq.sd, eq.difference, eq.ci_low, eq.ci_high] if eq else [None] * 5)
                + [
                    e.margin,
                    (eq.equivalent if eq and e.margin else None),
                    (eq.p_value if eq and e.margin else None),
                ]
            )
    rows.append([])
    rows.append(
        ["section", "recipe_code", "parameter", "unit", "scope", "rule", "first_batch",
         "last_batch", "words", "disposition", "reference", "comment", "decided_by", "decided_at"]
    )  # fmt: skip
    for parameter in view.parameters:
        for s in parameter.signals:
            rows.append(
                ["signal", view.recipe_code, parameter.parameter, parameter.unit, s.scope,
                 s.rule.value, s.numbers[0], s.numbers[-1], s.words, s.disposition, s.reference,
                 s.comment, s.decided_by, s.decided_at]
            )  # fmt: skip
    return _csv([["section", *CHART_COLUMNS, "entry_seq", "entry_hash"]], points, rows)


# --- words for screen readers ---------------------------------------------------------------------


def chart_summary(view: ParameterView, scope: str = NETWORK) -> str:
    """What the chart shows, in sentences (beside it, for screen readers and the report)."""
    points = view.points_of(scope)
    who = "every site" if scope == NETWORK else f"site {scope}"
    if not points:
        return f"{view.title}: no batches of {who} in this period."
    values = [p.value for p in points]
    unit = f" {view.unit}" if view.unit else ""
    text = [
        f"{view.title}, {len(points)} batch{'es' if len(points) != 1 else ''} of {who} "
        f"from {points[0].number} to {points[-1].number}; values from {_number(min(values))} "
        f"to {_number(max(values))}{unit}."
    ]
    demo = sum(1 for p in points if p.demo)
    if demo:
        text.append(
            f"Includes {demo} demo batch{'es' if demo != 1 else ''} (demonstration data, "
            "not production)."
        )
    text.append(COMPLETE_ONLY)
    limits = view.limits
    if limits is not None:
        source = (
            f"provisional, computed from the {limits.n} batches shown"
            if limits.provisional
            else f"from the baseline frozen by {view.baseline.frozen_by}"
            if view.baseline
            else ""
        )
        text.append(
            f"Centre line {_number(limits.centre)}{unit}, control limits {_number(limits.lcl)} "
            f"to {_number(limits.ucl)}{unit} ({source})."
        )
    specification = specification_words(view.spec_low, view.spec_high, view.unit or None)
    if specification is not None:
        text.append(f"Specification (action limits): {specification}.")
    own = [s for s in view.signals if s.scope == scope]
    if own:
        text.append(
            f"{len(own)} signal{'s' if len(own) != 1 else ''}: "
            + "; ".join(s.words for s in own)
            + "."
        )
    else:
        text.append("No signal of the run rules.")
    return " ".join(text)
