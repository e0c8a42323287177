"""Recipe benchmark: validate and compile a 500-phase master recipe, then hash it.

A realistic large recipe is generated (10 unit procedures × 5 operations × 10 phases; every
phase with instructions, limits on number inputs, a choice, a calculation that reads an earlier
phase, a timer, materials and equipment; one operation runs its phases in parallel) and
:func:`mes.core.recipe.load_recipe` reads, validates (schema and every semantic rule) and
compiles it N times. Figures (not pass/fail; target: under 1 s): median and p95 of one
validate + compile, and, separately, of the content hash (RFC 8785 canonical JSON + SHA-256)
of the compiled form. Run: ``python -m benchmarks`` (``--quick`` for fewer runs). Results go to
stdout as a table and to ``benchmarks/results/recipes.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

from mes.core.canonical import content_hash
from mes.core.recipe import load_recipe

UNITS, OPERATIONS, PHASES = 10, 5, 10
PARALLEL = (4, 2)  # (unit procedure, operation) whose phases run in parallel
TARGET_SECONDS = 1.0


def _phase(
    u: int, o: int, p: int, previous: str | None, parallel: bool, readable: str | None
) -> list[str]:
    """The YAML lines of one phase (indented for a phase list item).

    Sized like the phases of the example recipes in ``recipes/`` (about 35 lines, two or three
    inputs, a calculation, materials and equipment), a little richer in references.
    """
    phase_id = f"u{u}_o{o}_p{p}"
    lines = [
        f"          - id: {phase_id}",
        f"            name: Step {p + 1} of operation {o + 1} in unit procedure {u + 1}",
        "            instructions: |",
        "              1. Check the **bag label** against the batch record.",
        f"              2. Record the {'parallel ' if parallel else ''}measurements below.",
    ]
    if p % 3 == 0:
        lines.append("            verify: supervisor")
    if previous is not None and p % 4 == 1:
        lines += [
            "            when:",
            f"              input: {previous}.bag_state",
            "              in: [intact, sealed]",
        ]
    if previous is not None and p % 2 == 0:
        lines += [
            "            timers:",
            f"              - after: {previous}",
            "                max: 4 h",
        ]
    lines += [
        "            inputs:",
        "              viability:",
        "                label: Viability",
        "                type: number",
        '                unit: "%"',
        "                decimals: 1",
        "                target: 92",
        "                alert_low: 80",
        "                action_low: 70",
        "              volume:",
        "                label: Bag volume",
        "                type: number",
        "                unit: mL",
        "                alert_low: 90",
        "                alert_high: 110",
        "                action_low: 80",
        "                action_high: 120",
        "              bag_state:",
        "                label: Bag state",
        "                type: choice",
        '                options: ["intact", "sealed", "damaged"]',
        "            calculations:",
    ]
    if readable is None:
        lines += [
            "              viable_volume:",
            "                label: Viable volume",
            "                expression: round(viability * volume / 100, 1)",
            "                unit: mL",
        ]
    else:
        lines += [
            "              volume_change:",
            "                label: Change since the previous step",
            f"                expression: round((volume - {readable}.volume) / "
            f"max({readable}.volume, 1) * 100, 1)",
            '                unit: "%"',
            "                action_low: -20",
            "                action_high: 20",
        ]
    lines += [
        "            materials:",
        f"              - code: MAT-{u}{o}{p:02d}",
        "                name: Transfer bag 500 mL",
        "                quantity: 1",
        "                unit: bag",
        "            equipment:",
        "              - class: biosafety_cabinet",
    ]
    if p == 0:
        lines += [
            "            identity_checks:",
            "              - id: din_on_bag",
            "                label: DIN on the bag",
            "                matches: apheresis_din",
        ]
    return lines


def large_recipe(units: int = UNITS, operations: int = OPERATIONS, phases: int = PHASES) -> str:
    """A valid recipe of ``units × operations × phases`` phases, in block YAML."""
    lines = [
        "format: gmp-mes/recipe/1",
        "recipe_code: BENCH-LARGE",
        "version: 1",
        "title: Benchmark recipe",
        "description: A generated recipe for the validation benchmark.",
        "product:",
        "  code: BENCH-PRODUCT",
        "  name: Benchmark product",
        "  modality: autologous_cell",
        "expected_duration: 14 d",
        "change_reason: Generated for the benchmark.",
        "chain_of_identity:",
        "  apheresis_din:",
        "    label: Apheresis DIN",
        "    kind: isbt128_din",
        "  patient_id:",
        "    label: Patient ID",
        "    kind: identifier",
        '    pattern: "^P[0-9]{6}$"',
        "unit_procedures:",
    ]
    previous: str | None = None
    readable: str | None = None  # the last phase that always runs (a calculation may read it)
    for u in range(units):
        lines += [f"  - id: u{u}", f"    name: Unit procedure {u + 1}", "    operations:"]
        for o in range(operations):
            parallel = (u, o) == PARALLEL
            lines += [f"      - id: u{u}_o{o}", f"        name: Operation {o + 1}"]
            if parallel:
                lines.append("        ordering: parallel")
            lines.append("        phases:")
            # In the parallel operation every phase refers to the phase before the operation.
            before_operation, readable_before = previous, readable
            for p in range(phases):
                earlier = before_operation if parallel else previous
                reads = readable_before if parallel else readable
                lines += _phase(u, o, p, earlier, parallel, reads)
                previous = f"u{u}_o{o}_p{p}"
                if not (
                    earlier is not None and p % 4 == 1
                ):  # phases with p % 4 == 1 are conditional
                    readable = previous
    return "\n".join(lines) + "\n"


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(len(values) * 0.95) - 1)]


def bench_recipe(runs: int) -> dict[str, float]:
    """Validate + compile the large recipe ``runs`` times, then time its content hash alone."""
    text = large_recipe()
    recipe = load_recipe(text, "bench.yaml")  # warm-up (schema, caches); also checks validity
    phases = sum(1 for _ in recipe.phases())
    assert phases == UNITS * OPERATIONS * PHASES, phases
    compile_seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        recipe = load_recipe(text, "bench.yaml")
        compile_seconds.append(time.perf_counter() - start)
    hash_seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        digest = content_hash(recipe.data)  # what load_recipe already did once, timed alone
        hash_seconds.append(time.perf_counter() - start)
    return {
        "phases": phases,
        "yaml_lines": text.count("\n"),
        "yaml_kb": len(text.encode("utf-8")) / 1000,
        "canonical_kb": len(recipe.canonical) / 1000,
        "runs": runs,
        "validate_compile_median_ms": statistics.median(compile_seconds) * 1000,
        "validate_compile_p95_ms": _p95(compile_seconds) * 1000,
        "content_hash_median_ms": statistics.median(hash_seconds) * 1000,
        "content_hash_p95_ms": _p95(hash_seconds) * 1000,
        "target_ms": TARGET_SECONDS * 1000,
        "content_hash": digest,
    }


def main() -> None:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs (CI smoke)")
    args = parser.parse_args()
    figures = bench_recipe(5 if args.quick else 30)
    results = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "recipe_500_phases": figures,
    }
    print(
        f"\nrecipe of {figures['phases']} phases ({figures['yaml_lines']} YAML lines, "
        f"{figures['yaml_kb']:.0f} kB; canonical JSON {figures['canonical_kb']:.0f} kB), "
        f"{figures['runs']} runs"
    )
    print(f"{'figure':<34}{'median ms':>14}{'p95 ms':>14}")
    for key, label in (
        ("validate_compile", "validate + compile"),
        ("content_hash", "content hash (RFC 8785 + SHA-256)"),
    ):
        median, p95 = figures[f"{key}_median_ms"], figures[f"{key}_p95_ms"]
        print(f"{label:<34}{median:>14.1f}{p95:>14.1f}")
    within = figures["validate_compile_p95_ms"] <= figures["target_ms"]
    print(f"target: validate + compile under {TARGET_SECONDS:g} s: {'met' if within else 'MISSED'}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "recipes.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
