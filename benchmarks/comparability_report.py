"""Comparability report benchmark: the signed PDF/A of one recipe, issued at the hub.

A fresh migrated database (SQLite, and PostgreSQL when reachable) holds what the hub's ingest
leaves for received batches — each batch's row and its ``parameter_results`` read-model rows —
for one recipe with three critical numbers at ``--sites`` sites, ``--batches`` batches in all
(one site shifted on viability, one drifting on fold expansion, so there are signals to print).
Then :func:`mes.pdf.comparability.issue_comparability_report` — the path of ``mes report
comparability`` and of the page's download — runs ``--repeat`` times; each run is also timed
step by step (the view from the database, the CSV and charts, the layout, the read-back, the
hub's PAdES signature).

Target (issue 16): the report of one recipe ≤ 10 s (at 50 spokes × 1,000 batches, measured by
``benchmarks/network.py``); here a few hundred batches. Figures only, never pass/fail.
Run: ``python -m benchmarks.comparability_report [--batches 300] [--sites 5]``; JSON to
``benchmarks/results/comparability_report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from mes.core.clock import utc_text
from mes.core.keys import SiteKey
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.pdf import comparability as report
from mes.pdf.issue import COVER_STAMP_BOX
from mes.pdf.sign import sign_pdf
from mes.services import cpv
from mes.services.charts import PRINT_RASTER_FROM, control_chart_svg
from mes.services.context import Context
from mes.services.document_certificate import ensure_document_certificate, load_document_key
from mes.services.read_models import checked_against_ledger
from mes.services.runtime import Runtime
from mes.settings import Settings
from mes.store.engine import make_engine, session_factory
from mes.store.migrate import upgrade
from mes.store.models import Batch, BatchEntry
from mes.store.models.read_models import ParameterResult

PG_ADMIN = os.environ.get("MES_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).resolve().parent / "results"
CODE = "CART-CD19-BENCH"
START = datetime(2026, 1, 2, 8, tzinfo=UTC)
FROM, TO = date(2026, 1, 1), date(2026, 12, 31)
PARAMETERS = (
    # phase, value, label, unit, criticality, centre, sd
    ("harvest", "viability", "Viability at harvest", "%", "cqa", 88.0, 2.0),
    ("expand", "fold", "Fold expansion", "", "cpp", 30.0, 5.0),
    ("harvest", "cd3", "CD3+ purity", "%", "cqa", 95.0, 1.5),
)


def fill(runtime: Runtime, batches: int, sites: int) -> None:
    """``batches`` received batches over ``sites`` sites, a few hours apart, three numbers each."""
    rng = random.Random(16)
    codes = [f"SPK{i + 1}" for i in range(sites)]
    with runtime.uow() as uow:
        for n in range(batches):
            site = codes[n % sites]
            number = f"{site}-2026-{n // sites + 1:04d}"
            batch_id = f"00000000-0000-7000-8000-{n + 1:012d}"
            at = utc_text(START + timedelta(hours=8 * n))
            uow.add(
                Batch(
                    id=batch_id, number=number, site=site, recipe_code=CODE, recipe_version=1,
                    content_hash="c" * 64, chain_of_identity={"patient_id": f"P-{n}"},
                    status="complete", created_at=at, created_by="sam", started_at=at,
                    completed_at=at, last_seq=1, last_hash="h" * 64,
                )
            )  # fmt: skip
            uow.flush()
            for seq, (phase, value, label, unit, criticality, centre, sd) in enumerate(
                PARAMETERS, start=1
            ):
                shift = -1.5 * sd if site == "SPK2" and value == "viability" else 0.0
                drift = 2 * sd * n / batches if site == "SPK3" and value == "fold" else 0.0
                recorded = round(rng.gauss(centre + shift + drift, sd), 2)
                entry_hash = f"{n + 1:060x}{seq:04x}"
                uow.add(  # the ledger entry the value stands on (the report checks it)
                    BatchEntry(
                        batch_id=batch_id, seq=seq, prev=f"{seq - 1:064x}", kind="value_recorded",
                        payload={"phase": phase, "value": value, "recorded": recorded, "unit": unit},
                        at=at, site=site, terminal=None, actor_id=None, actor_username="sam",
                        actor_name="Sam", hash=entry_hash, signature="s",
                    )
                )  # fmt: skip
                uow.add(
                    ParameterResult(
                        batch_id=batch_id, phase_id=phase, value_id=value, site=site,
                        recipe_code=CODE, recipe_version=1, number=number,
                        parameter=f"{phase}.{value}", label=label, unit=unit,
                        criticality=criticality, value=recorded, recorded_at=at,
                        corrected_at=None, entry_seq=seq, entry_hash=entry_hash, demo=False,
                    )
                )  # fmt: skip
        uow.commit()


def _centre(c: Any) -> tuple[float, float]:
    """A centre and a standard deviation for a critical input, from its limits (or a default)."""
    low, high = c.action_low, c.action_high
    if low is not None and high is not None:
        return (low + high) / 2, (high - low) / 10
    if low is not None:
        return low * 1.3 + 5, abs(low) * 0.05 + 0.5
    if high is not None:
        return high * 0.5, abs(high) * 0.08 + 0.01
    return 10.0, 0.5


def fill_sql(url: str, recipe: str, per_site: int, sites: int) -> tuple[str, int]:
    """``sites`` × ``per_site`` batches of ``recipe`` and their critical numbers, by SQL.

    PostgreSQL only (``generate_series``; one transaction): the ``batches`` rows and the
    ``parameter_results`` read-model rows as the hub's ingest leaves them, over one year, each
    value normal around a centre drawn from the input's limits, SPK2 shifted by 1.5 sd on every
    parameter, SPK3 drifting by 2 sd over the year. Returns the recipe code and the parameters.
    """
    from mes.core.critical import critical_inputs
    from mes.core.recipe import load_recipe

    name = f"{recipe}.yaml"
    root = Path(__file__).resolve().parents[1] / "recipes"
    compiled = load_recipe((root / name).read_text(encoding="utf-8"), name)
    inputs = critical_inputs(compiled.data)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        conn.execute("SELECT setseed(0.16)")
        conn.execute(
            """
            CREATE TEMP TABLE bench_map ON COMMIT DROP AS
            SELECT lpad(to_hex(s * 100000 + n), 8, '0') || '-0000-7000-8000-000000000000' AS id,
                   s, n, 'SPK' || s AS site, 'SPK' || s || '-2026-' || lpad(n::text, 5, '0') AS number,
                   to_char((timestamptz '2026-01-02 08:00Z' + (n::float / %(per)s)
                           * interval '360 days' + s * interval '7 minutes') AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
            FROM generate_series(1, %(sites)s) s, generate_series(1, %(per)s) n
            """,
            {"per": per_site, "sites": sites},
        )
        conn.execute(
            """
            INSERT INTO batches (id, number, site, recipe_code, recipe_version, content_hash,
                chain_of_identity, status, created_at, created_by, started_at, completed_at,
                last_seq, last_hash)
            SELECT id, number, site, %(code)s, 1, repeat('c', 64), json_build_object('patient_id',
                'P-' || number), 'complete', at, 'sam', at, at, 1, repeat('h', 64)
            FROM bench_map
            """,
            {"code": compiled.recipe_code},
        )
        for c in inputs:
            centre, sd = _centre(c)
            conn.execute(
                """
                INSERT INTO parameter_results (batch_id, phase_id, value_id, site, recipe_code,
                    recipe_version, number, parameter, label, unit, criticality, value,
                    recorded_at, demo)
                SELECT id, %(phase)s, %(value)s, site, %(code)s, 1, number, %(parameter)s,
                    %(label)s, %(unit)s, %(crit)s,
                    round((%(centre)s + %(sd)s * (
                        sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())
                        + CASE WHEN s = 2 THEN -1.5 ELSE 0 END
                        + CASE WHEN s = 3 THEN 2.0 * n / %(per)s ELSE 0 END))::numeric, 4),
                    at, false
                FROM bench_map
                """,
                {
                    "phase": c.phase_id, "value": c.value_id, "code": compiled.recipe_code,
                    "parameter": c.parameter, "label": c.label, "unit": c.unit,
                    "crit": c.criticality.value, "centre": centre, "sd": sd, "per": per_site,
                },
            )  # fmt: skip
        conn.commit()
        conn.execute("ANALYZE batches")
        conn.execute("ANALYZE parameter_results")
    return compiled.recipe_code, len(inputs)


def steps(runtime: Runtime, ctx: Context, code: str = CODE) -> dict[str, float]:
    """One report made step by step as ``issue_comparability_report`` makes it; seconds each."""
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = now - mark
        mark = now

    key = load_document_key(runtime.settings)
    with runtime.uow() as uow:
        check = checked_against_ledger(uow, code, recorded_from=FROM.isoformat())
    lap("ledger check")
    with runtime.uow() as uow:
        view = cpv.comparability(uow, ctx, code, FROM, TO)
    lap("view")
    csv = cpv.comparability_csv(view, ledger=check.ties).encode()
    lap("csv")
    made = report.comparability_report(
        view, csv=csv, chart=partial(control_chart_svg, raster_from=PRINT_RASTER_FROM), generated_at=ctx.at, generated_by="bench",
        hub="HUB", hub_name="Bench hub", time_zone="UTC",
    )  # fmt: skip
    lap("charts and words")
    pdf = report.render_comparability_pdf(made, csv)
    lap("layout (WeasyPrint)")
    missing = report.missing_in_print(made, pdf)
    assert not missing, missing
    lap("read-back")
    sign_pdf(
        pdf, key, at=ctx.at, reason="bench", location="HUB", name="Bench hub", stamp_page=0,
        stamp_box=COVER_STAMP_BOX,
    )  # fmt: skip
    lap("signature")
    timings["pages"] = float(len(made.parameters) + 1)
    timings["signals"] = float(sum(p.signal_count for p in made.parameters))
    return timings


def run(
    url: str,
    folder: Path,
    batches: int,
    sites: int,
    repeat: int,
    recipe: str | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(
        instance_path=folder, role="hub", site_code="HUB", site_name="Bench hub",
        time_zone="UTC", database_url=url, secret_key="bench", session_timeout_seconds=300,
        password_expiry_days=None, proxy_hops=0,
    )  # fmt: skip
    site = Site(
        code="HUB", name="Bench hub", role="hub", time_zone="UTC", key=SiteKey.generate(),
        password_policy=PasswordPolicy(expiry_days=None), hub_key=None,
    )  # fmt: skip
    runtime = Runtime(settings, engine, session_factory(engine), site)
    ctx = Context.command_line(datetime.now(UTC), "bench", "bench")
    (folder / "keys").mkdir(mode=0o700, exist_ok=True)
    ensure_document_certificate(runtime, ctx)
    if recipe is None:
        code, parameters = CODE, len(PARAMETERS)
        fill(runtime, batches, sites)
    else:
        started = time.perf_counter()
        code, parameters = fill_sql(url, recipe, batches // sites, sites)
        print(f"filled {batches:,} batches × {parameters} in {time.perf_counter() - started:.0f} s")
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        with profiler:
            report.issue_comparability_report(runtime, ctx, code, FROM, TO)
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"comparability_report_profile_{Path(url).name}.txt"
        out.write_text(profiler.output_text(unicode=True, show_all=False))
        print(f"profile: {out}")
    totals, parts = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        issued = report.issue_comparability_report(runtime, ctx, code, FROM, TO)
        totals.append(time.perf_counter() - started)
        parts.append(steps(runtime, ctx, code))
    engine.dispose()
    return {
        "batches": batches,
        "sites": sites,
        "parameters": parameters,
        "pdf_bytes": len(issued.pdf),
        "csv_bytes": len(issued.csv),
        "signals": int(parts[-1]["signals"]),
        "total_s": {"first": totals[0], "median": statistics.median(totals)},
        "steps_s": {
            k: statistics.median(p[k] for p in parts)
            for k in parts[0]
            if k not in ("pages", "signals")
        },
    }


def _pg_database() -> str | None:
    name = f"mes_bench_report_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error:
        return None
    return name


def _drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 batches, one run")
    parser.add_argument(
        "--recipe",
        help="the critical inputs of this recipe of recipes/ (e.g. mrna-vaccine-fill), rows "
        "written by SQL, PostgreSQL only (the issue's scale: --sites 50 --batches 50000)",
    )
    parser.add_argument("--profile", action="store_true", help="one run under pyinstrument first")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeat = 100, 1
    results: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.recipe is None:
            (folder / "sqlite").mkdir()
            url = f"sqlite:///{folder / 'sqlite' / 'mes.sqlite3'}"
            results["sqlite"] = run(url, folder / "sqlite", args.batches, args.sites, args.repeat)
        name = _pg_database()
        if name is not None:
            (folder / "pg").mkdir()
            base = PG_ADMIN.rsplit("/", 1)[0]
            try:
                results["postgresql"] = run(
                    f"{base}/{name}", folder / "pg", args.batches, args.sites, args.repeat,
                    args.recipe, args.profile,
                )  # fmt: skip
            finally:
                _drop(name)
    for db in ("sqlite", "postgresql"):
        if db in results:
            r = results[db]
            print(
                f"{db}: {r['batches']} batches × {r['parameters']} parameters at {r['sites']} "
                f"sites, {r['signals']} signals — report {r['total_s']['median']:.2f} s median "
                f"(first {r['total_s']['first']:.2f} s), {r['pdf_bytes']:,} bytes"
            )
            print("   " + ", ".join(f"{k} {v:.2f} s" for k, v in r["steps_s"].items()))
    RESULTS.mkdir(exist_ok=True)
    stem = "comparability_report" + (f"_{args.recipe}" if args.recipe else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
