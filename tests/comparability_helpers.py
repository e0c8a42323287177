"""A ComparabilityView made without a database, for the report's document tests.

Built from the CPV service's own dataclasses and computations (mes.services.cpv: limits, the
run rules, capability and equivalence in their words), from values drawn per site — SPK2 shifted
down on viability — so the report prints what the page would show for such a network. Two
signals are given dispositions as QA would have signed them.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np

from mes.core.cpv import imr_limits
from mes.services import cpv
from mes.services.cpv import ComparabilityView, ParameterView, SeriesPoint

SITES = ("SPK1", "SPK2", "SPK3")
PARAMETERS = (
    # parameter, label, unit, criticality, low, high, centre, spread, margin
    ("count_cells.viability", "Viability at harvest", "%", "Critical quality attribute",
     70.0, None, 88.0, 2.0, 2.0),
    ("expand.fold", "Fold expansion", "", "Critical process parameter",
     10.0, 60.0, 30.0, 5.0, None),
)  # fmt: skip
DECIDED_AT = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def _parameter(
    spec: tuple, batches: int, sites: tuple[str, ...], rng: random.Random
) -> ParameterView:
    parameter, label, unit, criticality, low, high, centre, spread, margin = spec
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    points = []
    for i in range(batches):
        site = sites[i % len(sites)]
        shift = -3.0 if site == "SPK2" and parameter.endswith("viability") else 0.0
        at = start + timedelta(hours=20 * i)
        points.append(
            SeriesPoint(
                site,
                f"{site}-2026-{i // len(sites) + 1:04d}",
                f"batch-{i:05d}",
                round(rng.gauss(centre + shift, spread), 1),
                at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                1,
            )
        )
    values = [p.value for p in points]
    limits = imr_limits(values, provisional=True) if len(values) >= 2 else None
    signals = []
    if limits is not None:
        for scope in (cpv.NETWORK, *sites):
            scoped = [p for p in points if scope == cpv.NETWORK or p.site == scope]
            signals += [view for view, _run in cpv._signals_of(scope, scoped, limits, label)]
    used = sorted({p.site for p in points})
    site_values = np.array(values, dtype=float)
    site_of = np.array([p.site for p in points])
    return ParameterView(
        parameter=parameter,
        unit=unit,
        label=label,
        criticality=criticality,
        spec_low=low,
        spec_high=high,
        points=points,
        limits=limits,
        baseline=None,
        margin=margin,
        margin_set_by="Quinn QA (quinn)" if margin else None,
        signals=signals,
        capability=cpv._capabilities(site_values, site_of, used, low, high, label, unit),
        equivalence=cpv._equivalences(site_values, site_of, used, margin, label, unit),
        sites=used,
    )


def stand_in_view(batches: int = 60, sites: tuple[str, ...] = SITES) -> ComparabilityView:
    """A view of ``batches`` batches over ``sites``; the first two signals assessed by QA."""
    rng = random.Random(16)
    # as the service gives it: a period without batches has no parameter to show
    parameters = [_parameter(spec, batches, sites, rng) for spec in PARAMETERS if batches]
    first = parameters[0] if parameters else None
    if first is not None and first.signals:
        signals = list(first.signals)
        signals[0] = replace(
            signals[0],
            trend_id="trend-1",
            disposition="deviation",
            disposition_words="Deviation at the site — its number",
            reference="DEV-SPK2-0007",
            comment="Viability low at SPK2 since the new counter",
            decided_by="Quinn QA (quinn)",
            decided_at=DECIDED_AT.isoformat(),
        )
        if len(signals) > 1:
            signals[1] = replace(signals[1], trend_id="trend-2")
        parameters[0] = replace(first, signals=signals)
    used = sorted({p.site for par in parameters for p in par.points})
    return ComparabilityView(
        "CART-CD19-FRESH",
        date(2026, 1, 1),
        date(2026, 12, 31),
        parameters,
        used,
        batches,
    )
