"""Network pages at scale, fast: a hub whose read models hold S spokes × B batches, written by SQL.

Run: ``python -m benchmarks network-pages [--spokes 50] [--batches 1000] [--requests 20]
[--keep]``. The end-to-end benchmark (every batch signed, sealed and stored through ingest) is
:mod:`benchmarks.network`; it takes hours at the issue's size. This one measures the pages
that read the read models (QA queue, live board and its JSON, turnaround, comparability page
and one CPV chart) at that size in minutes, and is what a change to those pages is timed with.

The hub is built as ``mes demo`` builds it (:func:`mes.cli.demo.build_demo`, its database on
PostgreSQL, the S spokes enrolled), one batch of the recipe is run at a scratch spoke and two
are stored at the hub through ingest (:mod:`benchmarks.network`'s ``generate``); then its rows
in ``batches``, ``batch_summaries``, ``parameter_results`` and ``batch_milestones`` are copied
by ``INSERT … SELECT`` to S × B batches over the past year: each site's values drawn around the
template's with a site offset (normal noise, Box–Muller in SQL), each batch's timeline
stretched by a factor of its own, 2 % of the batches still in progress and a few awaiting QA.
The ledgers are not copied (no page reads them).

Then, with the hub under gunicorn (``mes serve --workers 2``), logged in as QA over HTTP:
median and p95 of ``--requests`` reads of each page; and in process (Flask's test client) the
SQL statements each page issues. Results to stdout and ``benchmarks/results/network_pages.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.network import (
    TARGETS_MS,
    Browser,
    _codes,
    _runtime,
    _template,
    drive_template,
    generate,
)
from benchmarks.sync import _create_pg, _drop_pg, _pct, serve, stop
from mes.cli.demo import HUB_USERS, build_demo
from mes.core.recipe import load_recipe
from mes.services import spokes

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
DEFAULT_RECIPE = "car-t-fresh"
TEXT_TIME = """to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _t(expr: str) -> str:
    return TEXT_TIME.format(expr=expr)


def build(folder: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The hub with S spokes, a template batch received through ingest; figures of the setup."""
    figures: dict[str, Any] = {}
    codes = _codes(args.spokes)
    started = time.perf_counter()
    sites = build_demo(folder, hub_database_url=url, hub_only=tuple(codes[1:]))
    now = datetime.now(UTC)
    name = f"{args.recipe}.yaml"
    code = load_recipe((RECIPES / name).read_text(encoding="utf-8"), name).recipe_code
    data = drive_template(sites.spoke, folder, code, now)
    template = _template(data)
    spoke = _runtime(sites.spoke)
    try:
        pem = spoke.site.key.private_pem()
        public = spoke.site.key.public.pem().decode("ascii")
    finally:
        spoke.close()
    hub = _runtime(sites.hub)
    try:
        with hub.uow() as uow:
            spokes.enroll(uow, now, "SPK1", sites.enrollment_code, public)
    finally:
        hub.close()
    generate(str(sites.hub), data, [(0, "SPK1", pem)], 2, [], now.isoformat(), 30.0)
    figures["_data"] = data
    figures["_pems"] = {c: k.private_pem() for c, k in sites.keys.items()}
    figures["_now"] = now.isoformat()
    figures["setup_s"] = round(time.perf_counter() - started, 1)
    figures["recipe_code"] = code
    figures["critical"] = [f"{c.parameter}|{c.unit or ''}" for c in template.critical]
    figures["_hub"] = str(sites.hub)
    print(f"hub, {len(codes)} spokes and the template in {figures['setup_s']} s", flush=True)
    return figures


def fill(url: str, spokes_count: int, per_site: int, seed: float = 0.16) -> dict[str, Any]:
    """Copy the template's read-model rows to S × B batches (one transaction, INSERT … SELECT)."""
    import psycopg

    started = time.perf_counter()
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        conn.execute("SELECT setseed(%s)", (seed,))
        template = conn.execute(
            "SELECT batch_id, created_at FROM batch_summaries ORDER BY created_at LIMIT 1"
        ).fetchone()
        assert template, "no template batch at the hub"
        tid = template[0]
        conn.execute(
            """
            CREATE TEMP TABLE perf_map ON COMMIT DROP AS
            SELECT gen_random_uuid()::text AS id, s AS site_index, 'SPK' || s AS site,
                   n, 'SPK' || s || '-P-' || lpad(n::text, 5, '0') AS number,
                   now() - interval '365 days' + (n::float / %s) * interval '360 days'
                     + random() * interval '20 hours' AS created,
                   0.8 + random() * 0.7 AS stretch,
                   CASE WHEN n > %s - %s THEN 'in_progress' ELSE 'complete' END AS status,
                   sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z
            FROM generate_series(1, %s) s, generate_series(1, %s) n
            """,
            (per_site, per_site, max(1, per_site // 50), spokes_count, per_site),
        )
        created = "m.created"
        scaled = f"{created} + (t.{{col}}::timestamptz - tc.created_at::timestamptz) * m.stretch"
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'batches'"
            )
        ]
        replace = {
            "id": "m.id",
            "number": "m.number",
            "site": "m.site",
            "created_at": _t(created),
            "started_at": _t(scaled.format(col="started_at")),
            "completed_at": (
                f"CASE WHEN m.status = 'complete' THEN {_t(scaled.format(col='completed_at'))} END"
            ),
            "status": "m.status",
        }
        select_cols = ", ".join(replace.get(c, f"t.{c}") for c in cols)
        conn.execute(
            f"INSERT INTO batches ({', '.join(cols)}) SELECT {select_cols} "
            "FROM perf_map m, batches t, batches tc WHERE t.id = %s AND tc.id = %s",
            (tid, tid),
        )
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'batch_summaries'"
            )
        ]
        times = ("newest_entry_at", "received_at", "started_at", "completed_at", "decided_at")
        replace = {
            "batch_id": "m.id",
            "number": "m.number",
            "site": "m.site",
            "status": "m.status",
            "created_at": _t(created),
            "qa_state": (
                "CASE WHEN m.status = 'in_progress' THEN 'at_spoke' "
                "WHEN m.n > %(per)s - %(per)s / 25 THEN t.qa_state ELSE 'released' END"
            ),
            "current_phase": "CASE WHEN m.status = 'in_progress' THEN 'Expansion' END",
            "blocking": "false",
            **{
                c: f"CASE WHEN t.{c} IS NULL THEN NULL ELSE {_t(scaled.format(col=c))} END"
                for c in times
            },
        }
        replace["completed_at"] = (
            f"CASE WHEN m.status = 'complete' THEN {_t(scaled.format(col='completed_at'))} END"
        )
        replace["decided_at"] = (
            "CASE WHEN m.n <= %(per)s - %(per)s / 25 THEN "
            + _t(scaled.format(col="completed_at") + " + interval '20 hours'")
            + " END"
        )
        select_cols = ", ".join(replace.get(c, f"t.{c}") for c in cols)
        conn.execute(
            f"INSERT INTO batch_summaries ({', '.join(cols)}) SELECT {select_cols} "
            "FROM perf_map m, batch_summaries t, batch_summaries tc "
            "WHERE t.batch_id = %(tid)s AND tc.batch_id = %(tid)s",
            {"tid": tid, "per": per_site},
        )
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'parameter_results'"
            )
        ]
        # values: the template's, moved by a site offset (−3…+3 × 1 %) and 3 % normal noise
        replace = {
            "batch_id": "m.id",
            "number": "m.number",
            "site": "m.site",
            "value": (
                "t.value + greatest(abs(t.value), 1) * (0.03 * sqrt(-2 * ln(1 - random())) "
                "* cos(2 * pi() * random()) + 0.01 * ((m.site_index %% 7) - 3))"
            ),
            "recorded_at": _t(
                "m.created + (t.recorded_at::timestamptz - tc.created_at::timestamptz) * m.stretch"
            ),
        }
        select_cols = ", ".join(replace.get(c, f"t.{c}") for c in cols)
        conn.execute(
            f"INSERT INTO parameter_results ({', '.join(cols)}) SELECT {select_cols} "
            "FROM perf_map m, parameter_results t, batch_summaries tc "
            "WHERE t.batch_id = %s AND tc.batch_id = %s "
            "AND (m.status = 'complete' OR t.recorded_at < tc.completed_at)",
            (tid, tid),
        )
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'batch_milestones'"
            )
        ]
        replace = {
            "batch_id": "m.id",
            "site": "m.site",
            "at": _t("m.created + (t.at::timestamptz - tc.created_at::timestamptz) * m.stretch"),
        }
        select_cols = ", ".join(replace.get(c, f"t.{c}") for c in cols)
        conn.execute(
            f"INSERT INTO batch_milestones ({', '.join(cols)}) SELECT {select_cols} "
            "FROM perf_map m, batch_milestones t, batch_summaries tc "
            "WHERE t.batch_id = %s AND tc.batch_id = %s AND m.status = 'complete'",
            (tid, tid),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("batches", "batch_summaries", "parameter_results", "batch_milestones")
        }
    counts["fill_s"] = round(time.perf_counter() - started, 1)
    print(f"filled: {counts}", flush=True)
    return counts


def paths(code: str, parameter: str) -> dict[str, str]:
    """The pages timed, by name."""
    return {
        "qa_queue": "/qa/",
        "board": "/network/batches",
        "board_json": "/network/batches.json",
        "turnaround": "/network/turnaround",
        "comparability_page": f"/network/comparability/{code}",
        "chart": f"/network/comparability/{code}/chart.svg?"
        + urllib.parse.urlencode({"parameter": parameter}),
        "chart_site": f"/network/comparability/{code}/chart.svg?"
        + urllib.parse.urlencode({"parameter": parameter, "site": "SPK2"}),
    }


def timed(browser: Browser, path: str, count: int) -> dict[str, Any]:
    """``count`` GETs after one warm-up: median and p95 (ms)."""
    status, page = browser.request("GET", path)
    if status != 200:
        return {"status": status, "error": page[:200]}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        status, _page = browser.request("GET", path)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(_pct(times, 0.95), 1),
        "bytes": len(page.encode()),
    }


def bench_http(hub: Path, folder: Path, pages: dict[str, str], count: int) -> dict[str, Any]:
    """Each page served by gunicorn (2 workers), read by QA over HTTP."""
    process, port = serve(hub, folder / "hub.log", 2)
    reads: dict[str, Any] = {}
    try:
        browser = Browser(port)
        quinn = next(u for u in HUB_USERS if u[0] == "quinn")
        browser.login(quinn[0], quinn[3])
        for key, path in pages.items():
            # the whole comparability page (every parameter) is read fewer times
            reads[key] = timed(browser, path, count if key != "comparability_page" else 5)
            target = TARGETS_MS.get(key)
            print(f"  {key}: {reads[key]}" + (f" (target {target} ms)" if target else ""))
    finally:
        stop(process)
    return reads


def serve_checkout(hub: Path, log: Path, checkout: Path) -> tuple[Any, int]:
    """``mes serve`` (gunicorn, 2 workers) of the hub with the code of another checkout."""
    import os
    import subprocess

    from benchmarks.sync import _free_port

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mes.cli", "--instance", str(hub), "serve", "--port", str(port),
         "--workers", "2"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=checkout, start_new_session=True,
        env={**os.environ, "MES_INSTANCE": "", "PYTHONPATH": str(checkout)},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            Browser(port).request("GET", "/health")
            time.sleep(0.5)
            return process, port
        except OSError:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError(f"the hub of {checkout} did not answer:\n{log.read_text()}")


def bench_compare(
    hub: Path, folder: Path, pages: dict[str, str], count: int, before: Path
) -> dict[str, Any]:
    """Each page read alternately from this checkout's hub and ``before``'s (same database, same
    moment, so a loaded machine weighs on both alike): median and p95 of each."""
    servers = {"after": serve_checkout(hub, folder / "hub-after.log", ROOT)}
    reads: dict[str, Any] = {}
    try:
        servers["before"] = serve_checkout(hub, folder / "hub-before.log", before)
        browsers = {}
        quinn = next(u for u in HUB_USERS if u[0] == "quinn")
        for name, (_process, port) in servers.items():
            browsers[name] = Browser(port)
            browsers[name].login(quinn[0], quinn[3])
        for key, path in pages.items():
            times: dict[str, list[float]] = {name: [] for name in browsers}
            rounds = count if key != "comparability_page" else 5
            for browser in browsers.values():
                browser.request("GET", path)  # warm
            for _ in range(rounds):
                for name, browser in browsers.items():
                    started = time.perf_counter()
                    status, _page = browser.request("GET", path)
                    times[name].append((time.perf_counter() - started) * 1000)
                    assert status == 200, (name, path, status)
            reads[key] = {
                name: {
                    "median_ms": round(statistics.median(t), 1),
                    "p95_ms": round(_pct(t, 0.95), 1),
                }
                for name, t in times.items()
            }
            print(f"  {key}: {reads[key]}", flush=True)
    finally:
        for process, _port in servers.values():
            stop(process)
    return reads


def count_sql(hub: Path, pages: dict[str, str]) -> dict[str, int]:
    """The SQL statements each page issues (in process, Flask's test client, QA logged in)."""
    sys.path.insert(0, str(ROOT / "tests" / "web"))
    sys.path.insert(0, str(ROOT / "tests"))
    import web_helpers  # type: ignore[import-not-found]

    from mes.app import create_app

    runtime = _runtime(hub)
    statements = [0]

    def count(*_args: Any, **_kwargs: Any) -> None:
        statements[0] += 1

    try:
        app = create_app(runtime.settings, runtime)
        client = web_helpers.client_of(app)
        quinn = next(u for u in HUB_USERS if u[0] == "quinn")
        web_helpers.login(client, quinn[0], quinn[3])
        event.listen(runtime.engine, "before_cursor_execute", count)
        found = {}
        for key, path in pages.items():
            client.get(path)
            statements[0] = 0
            client.get(path)
            found[key] = statements[0]
        return found
    finally:
        runtime.close()


def bench_ingest(batches: int) -> dict[str, Any]:
    """Entries stored per second through ingest, without and with frozen baselines.

    A hub with three spokes; SPK2's ``batches`` are stored with no baseline frozen, then every
    critical number of the recipe gets a frozen baseline (rows written as QA's would be) and
    SPK3's ``batches`` are stored: each of its values is then judged at ingest. Run the same
    with ``PYTHONPATH=<older checkout>`` for the cost before trends were kept at ingest.
    """
    import argparse as _argparse

    import psycopg

    folder = Path(tempfile.mkdtemp(prefix="mes-bench-ingest-"))
    database = f"perf16_ingest_{int(time.time())}"
    url = _create_pg(database)
    figures: dict[str, Any] = {}
    try:
        built = build(
            folder, url, _argparse.Namespace(spokes=3, recipe=DEFAULT_RECIPE, batches=batches)
        )
        pems, now = built["_pems"], built["_now"]

        def store(index: int, code: str) -> dict[str, float]:
            started = time.perf_counter()
            done = generate(
                built["_hub"], built["_data"], [(index, code, pems[code])], batches, [], now, 60.0
            )
            done["wall_s"] = time.perf_counter() - started
            return done

        plain = url.replace("postgresql+psycopg://", "postgresql://")
        first = store(1, "SPK2")
        figures["no_baseline_entries_per_s"] = round(first["entries"] / first["wall_s"])
        with psycopg.connect(plain) as conn:
            quinn = conn.execute("SELECT id FROM users WHERE username = 'quinn'").fetchone()[0]
            conn.execute(
                "INSERT INTO cpv_baselines (id, recipe_code, parameter, unit, period_from, "
                "period_to, batches, first_number, last_number, centre, sigma, lcl, ucl, "
                "mr_centre, mr_ucl, frozen_at, frozen_by, signature_seq, reason) "
                "SELECT gen_random_uuid()::text, recipe_code, parameter, coalesce(unit, ''), "
                "date '2000-01-01', date '2100-01-01', count(*), min(number), max(number), "
                "avg(value), greatest(stddev_samp(value), 0.001), "
                "avg(value) - 3 * greatest(stddev_samp(value), 0.001), "
                "avg(value) + 3 * greatest(stddev_samp(value), 0.001), 1, 3.267, now(), %s, 0, "
                "'benchmark' FROM parameter_results GROUP BY recipe_code, parameter, unit",
                (quinn,),
            )
            figures["baselines"] = conn.execute("SELECT count(*) FROM cpv_baselines").fetchone()[0]
        second = store(2, "SPK3")
        figures["with_baselines_entries_per_s"] = round(second["entries"] / second["wall_s"])
        with psycopg.connect(plain) as conn:
            figures["trends_kept"] = conn.execute("SELECT count(*) FROM cpv_trends").fetchone()[0]
        figures["batches_each"] = batches
    finally:
        _drop_pg(database)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(figures), flush=True)
    return figures


def main(argv: list[str] | None = None) -> None:
    """Build, fill, measure, drop."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spokes", type=int, default=50)
    parser.add_argument("--batches", type=int, default=1000, help="batches per spoke")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--database", help="reuse this filled database's hub folder (--keep)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the folder")
    parser.add_argument(
        "--before", type=Path, help="another checkout: its hub read alternately with this one's"
    )
    parser.add_argument(
        "--ingest", type=int, help="only: ingest's entries/s for this many batches per spoke"
    )
    args = parser.parse_args(argv)
    if args.ingest:
        bench_ingest(args.ingest)
        return
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "spokes": args.spokes,
        "batches_per_spoke": args.batches,
    }
    if args.database:  # "<database>:<folder>" printed by an earlier --keep run
        database, folder_text = args.database.split(":", 1)
        folder = Path(folder_text)
        info = json.loads((folder / "perf.json").read_text())
        results.update(info)
        measure(results, folder, args)
        return
    folder = Path(tempfile.mkdtemp(prefix="mes-bench-pages-"))
    database = f"perf16_{int(time.time())}"
    url = _create_pg(database)
    try:
        results.update(build(folder, url, args))
        for private in ("_data", "_pems", "_now"):
            results.pop(private)
        results["fill"] = fill(url, args.spokes, args.batches)
        (folder / "perf.json").write_text(json.dumps(results))
        measure(results, folder, args)
    finally:
        if args.keep:
            print(f"kept: --database {database}:{folder}")
        else:
            _drop_pg(database)
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def measure(results: dict[str, Any], folder: Path, args: argparse.Namespace) -> None:
    """Time the pages and count their statements; print and write the JSON."""
    hub = Path(results["_hub"])
    pages = paths(results["recipe_code"], results["critical"][0])
    results["sql"] = count_sql(hub, pages)
    print(f"SQL statements per page: {results['sql']}", flush=True)
    if args.before:
        results["http_compared"] = bench_compare(hub, folder, pages, args.requests, args.before)
    else:
        results["http"] = bench_http(hub, folder, pages, args.requests)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "network_pages.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if not k.startswith("_")}))


if __name__ == "__main__":
    main()
