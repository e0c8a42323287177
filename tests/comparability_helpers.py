"""A stand-in ComparabilityView for the report's tests (the contract's names, plain data).

Until the CPV service (mes.services.cpv) and the statistics (mes.core.cpv) are merged, the
report is built against these: the attributes the report reads, nothing else.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Point:
    site: str
    number: str
    batch_id: str
    value: float
    at: datetime


@dataclass(frozen=True)
class Limits:
    centre: float
    sigma: float
    lcl: float
    ucl: float
    mr_centre: float
    mr_ucl: float
    n: int
    provisional: bool


@dataclass(frozen=True)
class Capability:
    n: int
    mean: float
    sd: float
    ppk: float
    ci_low: float
    ci_high: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Equivalence:
    site: str
    n: int
    mean: float
    sd: float
    difference: float
    ci_low: float
    ci_high: float
    margin: float
    equivalent: bool
    p_value: float


@dataclass(frozen=True)
class EquivalenceRow:
    equivalence: Equivalence
    words: str


@dataclass(frozen=True)
class Disposition:
    kind: str
    reference: str | None
    by: str
    at: datetime


@dataclass(frozen=True)
class SignalView:
    words: str
    disposition: Disposition | None


@dataclass(frozen=True)
class ParameterView:
    parameter: str
    label: str
    unit: str | None
    criticality: str
    low: float | None
    high: float | None
    points: list[Point]
    limits: Limits | None
    baseline: str | None
    signals: list[SignalView]
    capability: dict[str, Capability | None]
    equivalence: list[EquivalenceRow]


@dataclass(frozen=True)
class ComparabilityView:
    recipe_code: str
    recipe_title: str
    date_from: date
    date_to: date
    generated_by: str
    parameters: list[ParameterView] = field(default_factory=list)


def _stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
    return mean, sd


def stand_in_view(batches: int = 60, sites: tuple[str, ...] = ("SPK1", "SPK2", "SPK3")) -> Any:
    """A view of ``batches`` batches over ``sites``: viability (CQA) and a CPP, two signals."""
    rng = random.Random(16)
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    parameters = []
    for pid, label, unit, low, high, centre, spread in (
        ("count_cells.viability", "Viability at harvest", "%", 70.0, None, 88.0, 2.0),
        ("expand.fold", "Fold expansion", None, 10.0, 60.0, 30.0, 5.0),
    ):
        points = []
        for i in range(batches):
            site = sites[i % len(sites)]
            shift = -3.0 if site == "SPK2" and pid.endswith("viability") else 0.0
            points.append(
                Point(
                    site,
                    f"{site}-2026-{i // len(sites) + 1:04d}",
                    f"batch-{pid}-{i}",
                    round(rng.gauss(centre + shift, spread), 1),
                    start + timedelta(days=i),
                )
            )
        values = [p.value for p in points]
        if not values:
            parameters.append(
                ParameterView(pid, label, unit, "cqa", low, high, [], None, None, [], {}, [])
            )
            continue
        mean, sd = _stats(values)
        capability: dict[str, Capability | None] = {}
        equivalence = []
        for site in sites:
            own = [p.value for p in points if p.site == site]
            m, s = _stats(own)
            capability[site] = Capability(len(own), m, s, 1.2, 0.9, 1.5, low, high)
            diff = m - mean
            eq = Equivalence(
                site, len(own), m, s, diff, diff - 0.9, diff + 0.9, 2.0, abs(diff) + 0.9 < 2.0, 0.01
            )
            words = (
                f"{site} {label} is {abs(diff):.1f} {'lower' if diff < 0 else 'higher'} than the "
                f"network (90 % CI {diff - 0.9:.1f} to {diff + 0.9:.1f}), "
                f"{'within' if eq.equivalent else 'outside'} the ±2 margin"
            )
            equivalence.append(EquivalenceRow(eq, words))
        capability["Network"] = Capability(len(values), mean, sd, 1.1, 0.95, 1.3, low, high)
        signals = [
            SignalView(
                f"SPK2: 9 batches in a row below the centre line of {label} "
                "(SPK2-2026-0003 to SPK2-2026-0011)",
                Disposition(
                    "deviation",
                    "DEV-SPK2-0007",
                    "Quinn QA (quinn)",
                    datetime(2026, 3, 2, 10, 15, tzinfo=UTC),
                ),
            ),
            SignalView(
                f"Network: 1 batch beyond 3 sigma above the centre line of {label} (SPK1-2026-0019)",
                None,
            ),
        ]
        parameters.append(
            ParameterView(
                pid,
                label,
                unit,
                "Critical quality attribute",
                low,
                high,
                points,
                Limits(
                    mean,
                    sd,
                    mean - 3 * sd,
                    mean + 3 * sd,
                    sd * 1.128,
                    sd * 3.686,
                    20,
                    provisional=pid.endswith("fold"),
                ),
                None
                if pid.endswith("fold")
                else "Quinn QA (quinn) on 2026-02-01 (first 20 batches)",
                signals,
                capability,
                equivalence,
            )
        )
    return ComparabilityView(
        "CART-CD19-FRESH",
        "CAR-T CD19, fresh",
        date(2026, 1, 1),
        date(2026, 12, 31),
        "Quinn QA (quinn)",
        parameters,
    )


def stand_in_csv(view: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["parameter", "site", "batch", "value", "recorded_at"])
    for p in view.parameters:
        for pt in p.points:
            writer.writerow([p.parameter, pt.site, pt.number, pt.value, pt.at.isoformat()])
    return out.getvalue()


def stand_in_chart(parameter: Any) -> str:
    """A small SVG (the real one is mes.services.charts.control_chart_svg)."""
    dots = "".join(
        f'<circle cx="{10 + i * 5}" cy="{100 - (p.value % 90)}" r="2" fill="#1f4e79"/>'
        for i, p in enumerate(parameter.points)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="120" viewBox="0 0 600 120">'
        f"{dots}</svg>"
    )
