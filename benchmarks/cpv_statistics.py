"""CPV statistics benchmark: one chart of 50 sites × 1,000 batches, computed in the process.

The statistics alone (no database, no HTTP): for one parameter, the network-wide I-MR limits and
every Nelson rule over 50,000 points, then per site (50 × 1,000) its limits, the default rules,
Ppk and the TOST against the rest of the network. Values are normal, one site shifted by 1σ and
one drifting. Figures (not pass/fail; target well under 100 ms): median and p95 of the whole.
Run: ``python -m benchmarks.cpv_statistics [--quick]``; JSON to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from mes.core.cpv import ALL_RULES, capability, equivalence, imr_limits, signals

SITES, BATCHES = 50, 1000
TARGET_MS = 100.0


def network_values(seed: int = 16) -> np.ndarray:
    """SITES × BATCHES viability values (%): site 7 shifted −1σ, site 13 drifting 2σ over the run."""
    values = np.random.default_rng(seed).normal(85.0, 2.0, size=(SITES, BATCHES))
    values[7] -= 2.0
    values[13] += np.linspace(0.0, 4.0, BATCHES)
    return values


def one_chart(values: np.ndarray) -> int:
    """Everything one chart of one parameter shows; returns the number of signals found."""
    series = values.reshape(-1)
    found = len(signals(series, imr_limits(series), rules=ALL_RULES))
    for site in range(SITES):
        own = values[site]
        rest = np.delete(values, site, axis=0).reshape(-1)
        found += len(signals(own, imr_limits(own)))
        capability(own, 75.0, None)
        equivalence(own, rest, 1.5, site=f"SPK{site}")
    return found


def main() -> None:
    """Run, print the figures, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    values = network_values()
    one_chart(values)  # warm up (imports, caches)
    times = []
    for _ in range(5 if args.quick else 30):
        start = time.perf_counter()
        one_chart(values)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    figures = {
        "sites": SITES,
        "batches_per_site": BATCHES,
        "runs": len(times),
        "median_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        "target_ms": TARGET_MS,
    }
    results = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "cpv_one_chart": figures,
    }
    print(
        f"one CPV chart, {SITES} sites × {BATCHES} batches: median {figures['median_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms (target under {TARGET_MS:g} ms: "
        f"{'met' if figures['p95_ms'] < TARGET_MS else 'MISSED'})"
    )
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "cpv_statistics.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
