"""Look-back at network scale: every batch that used a lot, instrument, operator or recipe version.

Run: ``python -m benchmarks lookback [--spokes 50] [--batches 1000] [--rounds 20] [--keep]``
(``--quick``: 5 × 100). A hub database on PostgreSQL, migrated to the newest schema, holds
S spokes × B batches written by SQL in bulk (``INSERT … SELECT`` over ``generate_series``):
``batches`` (each with its chain of identity: patient and DIN), ``batch_summaries`` (status, QA
state, dates) and ``batch_usages`` — per batch its recipe version (one of two), 6 material
lots (a reagent lot shared by 20 batches at every spoke: 1,000 batches a lot), 3 of its site's
10 instruments (≈ 300 batches each) and 4 of its site's 12 signers (≈ 330 batches each). The
ledgers are not written: the look-back reads only the read models.

Timed: :func:`mes.services.lookback.look_back` (the service the page calls: the authority
check, the subject checked, the count, one indexed select joined to the summaries and the
chains of identity for the first page of 500 batches, rows built) in one read-only unit of work each, ``--rounds`` times per kind, on a
subject drawn at random each round; median, p95 and the rows returned. Target (issue 17):
under 1 s at 50 × 1,000. The machine's load average before and after is reported: the figures
mean little when other work shares the cores. Results to stdout and
``benchmarks/results/lookback.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.sync import _create_pg, _drop_pg, _pct
from mes.core.keys import SiteKey
from mes.core.site import Site
from mes.services.context import Context
from mes.services.lookback import PAGE_SIZE, look_back
from mes.store.engine import make_engine, session_factory
from mes.store.migrate import upgrade
from mes.store.uow import UnitOfWork

DATABASE = "mes_bench_lookback"
LOTS, INSTRUMENTS, SIGNERS = 6, 3, 4  # per batch
SHARED_BY = 20  # batches of one site that share a reagent lot
TEXT_TIME = """to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _t(expr: str) -> str:
    return TEXT_TIME.format(expr=expr)


def fill(url: str, spokes: int, per_site: int) -> float:
    """Write the batches, their summaries and usage rows by SQL (one transaction); seconds."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("SELECT setseed(0.17)")
        conn.execute(
            """
            CREATE TEMP TABLE m ON COMMIT DROP AS
            SELECT gen_random_uuid()::text AS id, s, n, 'SPK' || s AS site,
                   'SPK' || s || '-P-' || lpad(n::text, 5, '0') AS number,
                   now() - interval '365 days' + (n::float / %(per)s) * interval '360 days'
                     + random() * interval '20 hours' AS created,
                   1 + (n %% 2) AS version,
                   CASE WHEN n > %(per)s - greatest(1, %(per)s / 50) THEN 'in_progress'
                        ELSE 'complete' END AS status
            FROM generate_series(1, %(spokes)s) s, generate_series(1, %(per)s) n
            """,
            {"per": per_site, "spokes": spokes},
        )
        conn.execute(
            f"""
            INSERT INTO batches (id, number, site, recipe_code, recipe_version, content_hash,
              installed_recipe_id, chain_of_identity, status, status_reason, created_at,
              created_by, started_at, completed_at, last_seq, last_hash, head_at, head_signature)
            SELECT id, number, site, 'CART-CD19-FRESH', version, repeat('c', 64), NULL,
              json_build_object('patient_id', 'PT-' || site || '-' || lpad(n::text, 6, '0'),
                                'din', 'A9999' || lpad((s * 100000 + n)::text, 8, '0')),
              status, NULL, {_t("created")}, 'olivia', {_t("created")},
              CASE WHEN status = 'complete' THEN {_t("created + interval '9 days'")} END,
              321, repeat('e', 64), NULL, NULL
            FROM m
            """
        )
        conn.execute(
            f"""
            INSERT INTO batch_summaries (batch_id, site, number, recipe_code, recipe_version,
              status, qa_state, current_phase, next_timer_at, open_deviations, exceptions,
              blocking, newest_entry_at, received_at, created_at, started_at, completed_at,
              decided_at, demo, review_digest)
            SELECT id, site, number, 'CART-CD19-FRESH', version, status,
              CASE WHEN status = 'in_progress' THEN 'at_spoke' ELSE 'released' END,
              NULL, NULL, 0, 0, false, {_t("created + interval '9 days'")},
              {_t("created + interval '9 days'")}, {_t("created")}, {_t("created")},
              CASE WHEN status = 'complete' THEN {_t("created + interval '9 days'")} END,
              CASE WHEN status = 'complete' THEN {_t("created + interval '10 days'")} END,
              false, '0123456789abcdef'
            FROM m
            """
        )
        conn.execute(
            """
            INSERT INTO batch_usages (batch_id, kind, identifier, detail, site)
            SELECT id, 'recipe_version', 'CART-CD19-FRESH v' || version, NULL, site FROM m
            UNION ALL
            SELECT id, 'lot', 'LOT-' || lpad(k::text, 2, '0') || '-' || lpad((n / %(shared)s)::text, 4, '0'),
                   'MAT-' || lpad(k::text, 2, '0'), site
            FROM m, generate_series(1, %(lots)s) k
            UNION ALL
            SELECT id, 'instrument', site || '-INS-' || lpad(((n + k * 3) %% 10)::text, 2, '0'),
                   NULL, site
            FROM m, generate_series(1, %(instruments)s) k
            UNION ALL
            SELECT id, 'operator', lower(site) || '-op' || lpad(((n + k * 3) %% 12)::text, 2, '0'),
                   'Operator ' || k, site
            FROM m, generate_series(1, %(signers)s) k
            """,
            {"shared": SHARED_BY, "lots": LOTS, "instruments": INSTRUMENTS, "signers": SIGNERS},
        )
        conn.execute("ANALYZE batches")
        conn.execute("ANALYZE batch_summaries")
        conn.execute("ANALYZE batch_usages")
    return time.perf_counter() - started


def subjects(spokes: int, per_site: int, kind: str, rng: random.Random) -> str:
    """A subject of ``kind`` some batches used, drawn at random."""
    s = rng.randint(1, spokes)
    if kind == "lot":
        lot = rng.randint(1, per_site // SHARED_BY)
        return f"LOT-{rng.randint(1, LOTS):02d}-{lot:04d}"
    if kind == "instrument":
        return f"SPK{s}-INS-{rng.randint(0, 9):02d}"
    if kind == "operator":
        return f"spk{s}-op{rng.randint(0, 11):02d}"
    return f"CART-CD19-FRESH v{rng.randint(1, 2)}"


def measure(url: str, spokes: int, per_site: int, rounds: int) -> dict[str, Any]:
    """Median, p95 (ms) and rows of the look-back service per kind."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    site = Site(code="HUB", name="Hub", role="hub", time_zone="UTC", key=SiteKey.generate())
    rng = random.Random(17)
    figures: dict[str, Any] = {}
    try:
        for kind in ("lot", "instrument", "operator", "recipe_version"):
            times, rows = [], []
            for _ in range(rounds + 1):
                subject = subjects(spokes, per_site, kind, rng)
                ctx = Context.command_line(datetime.now(UTC), "bench", "localhost")
                started = time.perf_counter()
                with UnitOfWork(sessions, site, read_only=True) as uow:
                    found = look_back(uow, ctx, kind, subject)
                times.append((time.perf_counter() - started) * 1000)
                rows.append(found.total)
            times, rows = times[1:], rows[1:]  # the first warms the caches
            figures[kind] = {
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(_pct(times, 0.95), 1),
                "max_ms": round(max(times), 1),
                "batches_median": int(statistics.median(rows)),
                "batches_max": max(rows),
                "listed": min(max(rows), PAGE_SIZE),
            }
            print(
                f"  {kind:<15} median {figures[kind]['median_ms']:>7.1f} ms  p95 "
                f"{figures[kind]['p95_ms']:>7.1f} ms  ({figures[kind]['batches_median']:,} batches, "
                f"first {figures[kind]['listed']} listed)",
                flush=True,
            )
    finally:
        engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> None:
    """Build the hub's read models at S × B, time the look-back, print and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spokes", type=int, default=50)
    parser.add_argument("--batches", type=int, default=1000, help="per spoke")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 spokes × 100 batches")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    if args.quick:
        args.spokes, args.batches, args.rounds = 5, 100, 5
    load_before = os.getloadavg()
    url = _create_pg(DATABASE).replace("postgresql://", "postgresql+psycopg://")
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        built = fill(url, args.spokes, args.batches)
        total = args.spokes * args.batches
        print(f"look-back: {total:,} batches at {args.spokes} spokes written in {built:.1f} s")
        figures = measure(url, args.spokes, args.batches, args.rounds)
    finally:
        if not args.keep:
            _drop_pg(DATABASE)
    results = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "spokes": args.spokes,
        "batches_per_spoke": args.batches,
        "usage_rows_per_batch": 1 + LOTS + INSTRUMENTS + SIGNERS,
        "build_s": round(built, 1),
        "look_back": figures,
        "target_ms": 1000,
    }
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "lookback.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
