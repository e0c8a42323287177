"""Continued process verification at the hub: the series of critical values, and its governance.

The values come from the read model ``parameter_results`` (one row per batch and critical value,
kept by ingest, :mod:`mes.store.read_models`); the baselines, margins, trends and dispositions
are the append-only tables of :mod:`mes.store.models.cpv`. Plain selects and inserts; who may
read or write is the service's (:mod:`mes.services.cpv`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Float,
    String,
    column,
    exists,
    func,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mes.store.models import (
    Batch,
    CpvBaseline,
    CpvDisposition,
    CpvMargin,
    CpvTrend,
    RecipeVersion,
    User,
)
from mes.store.queries import RecordName, plain_rows

# The read model, named by its columns (its model class is the read-model module's).
parameter_results = table(
    "parameter_results",
    column("batch_id", String),
    column("site", String),
    column("recipe_code", String),
    column("recipe_version", String),
    column("number", String),
    column("parameter", String),
    column("label", String),
    column("unit", String),
    column("criticality", String),
    column("value", Float),
    column("recorded_at", String),
    column("demo", Boolean),
)

COMPLETE = "complete"


def _complete(r: Any) -> Any:
    """The row's batch is complete.

    In-progress values may still change and an aborted batch's are incomplete, so neither enters
    a series or a baseline (a rejected batch's values are the process's: they stay).
    """
    return exists().where(Batch.id == r.batch_id, Batch.status == COMPLETE)


Series = tuple[str, str]  # (parameter, unit): unit '' for a number without one


class ResultRow(NamedTuple):
    """One batch's critical value, as a point of its parameter's series (unit '' for none)."""

    parameter: str
    unit: str
    label: str
    criticality: str | None
    recipe_version: int
    site: str
    number: str
    batch_id: str
    value: float
    at: str  # UTC text
    demo: bool = False  # the batch is demo data (``mes demo``)


def _day_after(day: date) -> str:
    """Text just after every UTC time of ``day`` (``YYYY-MM-DDT…`` < ``YYYY-MM-DDU``).

    Not the next day's date: 9999-12-31 has none (it was a 500 for ``?to=9999-12-31``).
    """
    return f"{day.isoformat()}U"


def results(
    session: Session,
    recipe_code: str,
    date_from: date | None,
    date_to: date | None,
    *,
    series: Series | None = None,
) -> list[ResultRow]:
    """The critical values of a recipe code recorded in the period, oldest first.

    ``date_from`` to ``date_to`` inclusive (UTC days; None: open); of one series only when given.
    """
    r = parameter_results.c
    query = select(
        r.parameter,
        func.coalesce(r.unit, ""),
        r.label,
        r.criticality,
        r.recipe_version,
        r.site,
        r.number,
        r.batch_id,
        r.value,
        r.recorded_at,
        r.demo,
    ).where(r.recipe_code == recipe_code, r.value.is_not(None), _complete(r))
    if date_from is not None:
        query = query.where(r.recorded_at >= date_from.isoformat())
    if date_to is not None:
        query = query.where(r.recorded_at < _day_after(date_to))
    if series is not None:
        parameter, unit = series
        query = query.where(r.parameter == parameter)
        query = (
            query.where(r.unit == unit) if unit else query.where(func.coalesce(r.unit, "") == "")
        )
    query = query.order_by(r.recorded_at, r.number)
    return [ResultRow(*row[:10], bool(row[10])) for row in session.execute(query)]


def series_points(
    session: Session,
    recipe_code: str,
    date_from: date | None,
    date_to: date | None,
    series: Series,
) -> tuple[list[tuple[str, str, str, float, str, int]], str | None]:
    """One series' points in the period, oldest first, and its newest label.

    Each point (site, number, batch ID, value, recorded at, recipe version): the columns the
    series' index holds (an index-only scan at PostgreSQL, already in order).
    """
    r = parameter_results.c
    parameter, unit = series
    where = [
        r.recipe_code == recipe_code,
        r.parameter == parameter,
        r.unit == unit if unit else func.coalesce(r.unit, "") == "",
        r.value.is_not(None),
        _complete(r),
    ]
    if date_from is not None:
        where.append(r.recorded_at >= date_from.isoformat())
    if date_to is not None:
        where.append(r.recorded_at < _day_after(date_to))
    rows = plain_rows(
        session,
        select(r.site, r.number, r.batch_id, r.value, r.recorded_at, r.recipe_version, r.demo)
        .where(*where)
        .order_by(r.recorded_at, r.number),
    )
    if not rows:
        return [], None
    label = session.execute(
        select(r.label).where(*where).order_by(r.recorded_at.desc(), r.number.desc()).limit(1)
    ).scalar()
    return rows, label  # type: ignore[return-value]


def _series_rows(rows: Iterable[Any]) -> list[ResultRow]:
    return [
        ResultRow(p, u or "", lb, c, int(v), st, n, b, float(x), str(at))
        for p, u, lb, c, v, st, n, b, x, at in rows
    ]


def window(
    session: Session,
    recipe_code: str,
    series: Series,
    since: date,
    site: str | None,
    at: str,
    number: str,
    *,
    before: int,
    after: int,
) -> tuple[list[ResultRow], bool]:
    """The points of a series around one point, in batch order, and whether older ones exist.

    Up to ``before`` points up to and including the point recorded at ``at`` (batch ``number``)
    and ``after`` points after it, of one site (or every site: ``site`` None) since the day
    ``since``; one statement (the index on recipe code, parameter and time). The bool is True
    when ``before`` points were found (the series may go on before them).
    """
    r = parameter_results.c
    parameter, unit = series
    columns = (
        r.parameter, r.unit, r.label, r.criticality, r.recipe_version, r.site, r.number,
        r.batch_id, r.value, r.recorded_at,
    )  # fmt: skip
    where = [
        r.recipe_code == recipe_code,
        r.parameter == parameter,
        r.unit == unit if unit else func.coalesce(r.unit, "") == "",
        r.value.is_not(None),
        r.recorded_at >= since.isoformat(),
        _complete(r),
    ]
    if site is not None:
        where.append(r.site == site)
    upto = (
        select(*columns)
        .where(
            *where,
            r.recorded_at <= at,  # a range of the index, then the tie on the number
            (r.recorded_at < at) | (r.number <= number),
        )
        .order_by(r.recorded_at.desc(), r.number.desc())
        .limit(before)
        .subquery()
    )
    later = (
        select(*columns)
        .where(*where, r.recorded_at >= at, (r.recorded_at > at) | (r.number > number))
        .order_by(r.recorded_at, r.number)
        .limit(after)
        .subquery()
    )
    both = union_all(select(upto), select(later)).subquery()
    rows = _series_rows(session.execute(select(both).order_by(both.c.recorded_at, both.c.number)))
    older = sum(1 for row in rows if (row.at, row.number) <= (at, number)) >= before
    return rows, older


def batch_results(session: Session, batch_id: str) -> list[dict[str, Any]]:
    """Every critical value of one batch, as ingest's changed rows (to judge it once complete)."""
    r = parameter_results.c
    query = select(
        r.recipe_code, r.parameter, r.unit, r.label, r.site, r.number, r.value, r.recorded_at
    ).where(r.batch_id == batch_id)
    return [dict(row._mapping) for row in session.execute(query)]


def known_among(
    session: Session, recipe_code: str, parameter: str, first_batch_ids: Collection[str]
) -> set[tuple[str, str, str, str]]:
    """(parameter, scope, rule, first batch) of the trends kept whose run starts at these batches."""
    query = select(
        CpvTrend.parameter, CpvTrend.scope, CpvTrend.rule, CpvTrend.first_batch_id
    ).where(
        CpvTrend.recipe_code == recipe_code,
        CpvTrend.parameter == parameter,
        CpvTrend.first_batch_id.in_(list(first_batch_ids)),
    )
    return {tuple(row) for row in session.execute(query)}  # type: ignore[misc]


def series_of(session: Session, recipe_code: str) -> dict[Series, str]:
    """Each series of critical values received for the recipe code, with a label, in order."""
    r = parameter_results.c
    query = (
        select(r.parameter, r.unit, func.max(r.label))
        .where(r.recipe_code == recipe_code)
        .group_by(r.parameter, r.unit)
    )
    found = {(p, u or ""): label for p, u, label in session.execute(query)}
    return dict(sorted(found.items()))


def recipe_codes(session: Session) -> list[str]:
    """The recipe codes with critical values received, in order.

    A skip scan of the series index (its first column): one probe per code, not every row.
    """
    query = text(
        "WITH RECURSIVE codes(code) AS ("
        " SELECT min(recipe_code) FROM parameter_results"
        " UNION ALL"
        " SELECT (SELECT min(recipe_code) FROM parameter_results WHERE recipe_code > code)"
        " FROM codes WHERE code IS NOT NULL"
        ") SELECT code FROM codes WHERE code IS NOT NULL ORDER BY code"
    )
    return list(session.execute(query).scalars())


def compiled_versions(session: Session, recipe_code: str) -> list[tuple[int, str]]:
    """Each version of the recipe at the hub, newest first: its number and compiled JSON."""
    query = (
        select(RecipeVersion.version, RecipeVersion.compiled)
        .where(RecipeVersion.recipe_code == recipe_code)
        .order_by(RecipeVersion.version.desc())
    )
    return [(int(v), c) for v, c in session.execute(query)]


# --- baselines and margins ----------------------------------------------------------------------


def _newest(session: Session, model: type, when: object, recipe_code: str) -> dict[Series, object]:
    rows = session.execute(
        select(model).where(model.recipe_code == recipe_code).order_by(when)
    ).scalars()
    return {(row.parameter, row.unit): row for row in rows}  # the newest wins


def baselines(session: Session, recipe_code: str) -> dict[Series, CpvBaseline]:
    """The baseline in force for each series of the recipe code: the newest frozen."""
    return _newest(session, CpvBaseline, CpvBaseline.frozen_at, recipe_code)  # type: ignore[return-value]


def margins(session: Session, recipe_code: str) -> dict[Series, CpvMargin]:
    """The equivalence margin in force for each series of the recipe code: the newest set."""
    return _newest(session, CpvMargin, CpvMargin.set_at, recipe_code)  # type: ignore[return-value]


def people(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """User ID → 'Full Name (username)', for the records' signers."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(User.id, User.full_name, User.username).where(User.id.in_(wanted))
    )
    return {uid: f"{name} ({username})" for uid, name, username in rows}


# --- trends and dispositions --------------------------------------------------------------------


@dataclass(frozen=True)
class TrendRow:
    """A trend to assess with its disposition (None while open)."""

    trend: CpvTrend
    disposition: CpvDisposition | None


def trends(session: Session, recipe_code: str, parameter: str | None = None) -> list[TrendRow]:
    """Every trend of the recipe code (of one parameter) with its disposition, newest first."""
    query = (
        select(CpvTrend, CpvDisposition)
        .outerjoin(CpvDisposition, CpvDisposition.trend_id == CpvTrend.id)
        .where(CpvTrend.recipe_code == recipe_code)
        .order_by(CpvTrend.detected_at.desc(), CpvTrend.id)
    )
    if parameter is not None:
        query = query.where(CpvTrend.parameter == parameter)
    return [TrendRow(t, d) for t, d in session.execute(query)]


def open_trends(session: Session, limit: int) -> tuple[int, list[CpvTrend]]:
    """Trends not yet assessed, oldest first (up to ``limit``), and how many there are."""
    assessed = exists().where(CpvDisposition.trend_id == CpvTrend.id)
    count = session.execute(
        select(func.count()).select_from(CpvTrend).where(~assessed)
    ).scalar_one()
    rows = session.execute(
        select(CpvTrend).where(~assessed).order_by(CpvTrend.detected_at, CpvTrend.id).limit(limit)
    ).scalars()
    return int(count), list(rows)


def trend(session: Session, trend_id: str, *, lock: bool = False) -> TrendRow | None:
    """One trend and its disposition (the trend's row locked: one disposition at a time)."""
    query = select(CpvTrend).where(CpvTrend.id == trend_id)
    found = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        return None
    return TrendRow(found, session.get(CpvDisposition, trend_id))


class KeptTrend(NamedTuple):
    """A kept trend with when its run's first and last values were recorded (None: not found)."""

    row: TrendRow
    first_at: str | None
    last_at: str | None


def _run_times(recipe_code: str, parameter: str, unit: str) -> tuple[Any, Any, Any]:
    """Selectable of each trend of the series with the times of its run's first and last values."""
    first, last = parameter_results.alias("first_value"), parameter_results.alias("last_value")
    on_first, on_last = (
        (r.c.batch_id == batch)
        & (r.c.parameter == parameter)
        & (func.coalesce(r.c.unit, "") == unit)
        for r, batch in ((first, CpvTrend.first_batch_id), (last, CpvTrend.last_batch_id))
    )
    return (
        (
            select(CpvTrend, CpvDisposition, first.c.recorded_at, last.c.recorded_at)
            .outerjoin(CpvDisposition, CpvDisposition.trend_id == CpvTrend.id)
            .outerjoin(first, on_first)
            .outerjoin(last, on_last)
            .where(
                CpvTrend.recipe_code == recipe_code,
                CpvTrend.parameter == parameter,
                CpvTrend.unit == unit,
            )
        ),
        first,
        last,
    )


def series_trends(
    session: Session,
    recipe_code: str,
    series: Series,
    date_from: date | None,
    date_to: date | None,
    scope: str | None = None,
) -> list[KeptTrend]:
    """The trends kept on one series whose run began before the period ends, oldest run first.

    ``date_from`` is not a bound: a trend names its run as it stood when kept, and the run may
    go on into the period (the service tells which of these the period shows). A run whose
    first value is no longer in the read model is included.
    """
    del date_from  # see above
    query, first, _last = _run_times(recipe_code, *series)
    if date_to is not None:
        query = query.where(
            first.c.recorded_at.is_(None) | (first.c.recorded_at < _day_after(date_to))
        )
    if scope is not None:
        query = query.where(CpvTrend.scope == scope)
    query = query.order_by(first.c.recorded_at, CpvTrend.first_number, CpvTrend.id)
    return [KeptTrend(TrendRow(t, d), a, b) for t, d, a, b in session.execute(query)]


def overlapping_trend(
    session: Session,
    recipe_code: str,
    series: Series,
    scope: str,
    rule: str,
    first_at: str,
    last_at: str,
) -> bool:
    """Whether a trend of the same rule and scope is kept on a run that overlaps this one."""
    query, first, last = _run_times(recipe_code, *series)
    query = query.where(
        CpvTrend.scope == scope,
        CpvTrend.rule == rule,
        first.c.recorded_at <= last_at,
        last.c.recorded_at >= first_at,
    )
    return session.execute(query.limit(1)).first() is not None


def known_signals(session: Session, recipe_code: str) -> set[tuple[str, str, str, str]]:
    """(parameter, scope, rule, first batch) of every trend already kept for the recipe code."""
    query = select(
        CpvTrend.parameter, CpvTrend.scope, CpvTrend.rule, CpvTrend.first_batch_id
    ).where(CpvTrend.recipe_code == recipe_code)
    return {tuple(row) for row in session.execute(query)}  # type: ignore[misc]


def add_trend(session: Session, row: CpvTrend) -> bool:
    """Keep a newly detected trend; False when another request kept the same signal first."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def keyed(rows: Iterable[TrendRow]) -> dict[tuple[str, str, str, str], TrendRow]:
    """Trends by their signal's key (parameter, scope, rule, first batch)."""
    return {
        (r.trend.parameter, r.trend.scope, r.trend.rule, r.trend.first_batch_id): r for r in rows
    }


# --- the audit trail's names of these records -----------------------------------------------------


def _series_name(code: str, parameter: str, unit: str) -> str:
    return f"{code} {parameter}" + (f" ({unit})" if unit else "")


def baseline_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A baseline by its recipe code, parameter and period: 'CART-CD19 harvest.viability (%) …'."""
    rows = session.execute(select(CpvBaseline).where(CpvBaseline.id.in_(ids))).scalars()
    return {
        b.id: RecordName(
            f"Baseline of {_series_name(b.recipe_code, b.parameter, b.unit)}, "
            f"{b.first_number} to {b.last_number}"
        )
        for b in rows
    }


def margin_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A margin by its recipe code and parameter."""
    rows = session.execute(select(CpvMargin).where(CpvMargin.id.in_(ids))).scalars()
    return {
        m.id: RecordName(f"Margin of {_series_name(m.recipe_code, m.parameter, m.unit)}")
        for m in rows
    }


def trend_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A trend by its recipe code, where and its first batch, linked to that batch."""
    rows = session.execute(select(CpvTrend).where(CpvTrend.id.in_(ids))).scalars()
    return {
        t.id: RecordName(
            f"Trend {t.scope} {_series_name(t.recipe_code, t.parameter, t.unit)} from "
            f"{t.first_number}",
            t.first_batch_id,
        )
        for t in rows
    }


__all__ = [
    "CpvBaseline",
    "CpvDisposition",
    "CpvMargin",
    "CpvTrend",
    "KeptTrend",
    "ResultRow",
    "Series",
    "TrendRow",
    "add_trend",
    "baseline_names",
    "baselines",
    "batch_results",
    "compiled_versions",
    "keyed",
    "known_among",
    "known_signals",
    "margin_names",
    "margins",
    "open_trends",
    "overlapping_trend",
    "people",
    "recipe_codes",
    "results",
    "series_of",
    "series_points",
    "series_trends",
    "trend",
    "trend_names",
    "trends",
    "window",
]
