"""Network benchmark: a hub on PostgreSQL holding S spokes × B completed batches, read over HTTP.

Run: ``python -m benchmarks network [--spokes 50] [--batches 1000] [--recipe mrna-vaccine-fill]
[--workers 2] [--requests 20]``. The issue's size is 50 × 1,000 (about 8 M entries with the
default recipe's 163-entry batch; ``car-t-fresh`` has 321); ``--spokes 5 --batches 100`` proves
the run in a few minutes.

The network is built as ``mes demo`` builds its own (:func:`mes.cli.demo.build_demo`, the hub's
database on PostgreSQL): the hub approves the example recipes and publishes them to every spoke;
spoke SPK1 is a real instance, the others are known only to the hub, enrolled with their own
generated keys. One batch of the recipe is run through the services at a scratch copy of SPK1
by the simulated crew (:mod:`mes.services.driver`: every e-signature with its signer's
password), and the hub's history is made from it (:mod:`mes.services.history`): B batches per
spoke over the past years, each re-chained and sealed with its own spoke's key, values of the
recipe's critical inputs drawn per site — SPK2 SHIFTED 3 SD low on the first critical quality
attribute, SPK3 DRIFTING 3 SD up over its batches on another parameter — and stored through the
hub's ingest path (``_store_chunk``: replay, projection, read models, ``COPY`` of the ledger
rows), 25 batches a transaction, the spokes shared among ``--workers`` processes.

Then, with the hub served by ``mes serve --workers 2`` (gunicorn), as QA over HTTP: the QA
queue, the live board (``/network/batches`` and its JSON), the turnaround page, the
comparability page of the recipe and one CPV chart (one parameter, every site) — median and
p95 of ``--requests`` reads each (a route that answers 404 is reported as missing, not timed);
``mes report comparability`` (the signed PDF and its CSV); ``mes network rebuild`` (the read
models from the ledgers) and ``mes batch verify``'s check over every batch, in entries per
second per core (CPU of this process or the command, plus the hub database's PostgreSQL
backends); the database's size per 1,000 batches.

Finally CPV is asked to find what was planted (:mod:`mes.core.cpv`): for every critical input
and site, the site against the rest of the network by TOST with a margin of 1.5 network SD (the
FDA's Tier 1 precedent, NETWORK.md §A2), and its individuals chart (limits from its first 30
batches) under the default rules. Expected: SPK2 outside the margin on the shifted parameter,
SPK3 with a run or trend signal on the drifting one, and elsewhere only the rules' false alarms
(reported against the rate expected of a process in control, estimated here by simulating the
same rules on normal series of the same lengths).

Results go to stdout (progress while it builds, then a table) and JSON; the full size writes
``benchmarks/results/network.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, text

from benchmarks.sync import _create_pg, _drop_pg, _loadavg, _pct, postgres_cpu_seconds, serve, stop
from mes.cli.common import command_context
from mes.cli.demo import HUB_USERS, SPOKE_USERS, build_demo
from mes.core.cpv import equivalence, imr_limits, signals
from mes.core.history import DRIFT, SHIFT, Knob, Template, default_knobs
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry
from mes.core.recipe import load_recipe
from mes.services import batches, history, spokes
from mes.services.runtime import Runtime, open_runtime
from mes.settings import load_settings
from mes.store import batches as store
from mes.store.models import Batch as BatchRow
from mes.store.models import BatchEntry

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
DEFAULT_RECIPE = "mrna-vaccine-fill"
SHIFTED, DRIFTING = "SPK2", "SPK3"
BASELINE = 30  # a site's chart limits come from its first batches
RUNNING = 2  # the last batches of each hub-only spoke are still in progress (the live board)
MARGIN_SD = 1.5  # equivalence margin, in network SDs (FDA Tier 1 precedent)
TARGETS_MS = {"qa_queue": 100, "board": 200, "board_json": 200, "chart": 500, "turnaround": 500}


def _runtime(instance: Path) -> Runtime:
    return open_runtime(load_settings(instance, env={}))


def _codes(spokes_count: int) -> list[str]:
    return [f"SPK{n}" for n in range(1, spokes_count + 1)]


# --- building the network ------------------------------------------------------------------


def drive_template(spoke: Path, folder: Path, recipe_code: str, now: datetime) -> dict[str, Any]:
    """One batch through the services at a scratch copy of the spoke; its ledger and recipe."""
    scratch = folder / "template-scratch"
    shutil.copytree(spoke, scratch)
    runtime = _runtime(scratch)
    try:
        batch_id = history.drive_template(
            runtime.uow, recipe_code, at=now, passwords={u[0]: u[3] for u in SPOKE_USERS},
            identifiers={"patient_id": "P-TEMPLATE"},
        )  # fmt: skip
        with runtime.uow(read_only=True) as uow:
            template = history.load_template(uow, batch_id)
            entries = [
                {"body": dict(e.body), "hash": e.hash, "signature": e.signature}
                for e in store.ledger(uow.session, batch_id)
            ]
        return {"entries": entries, "compiled": template.compiled}
    finally:
        runtime.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _template(data: dict[str, Any]) -> Template:
    entries = [
        SealedEntry(body=e["body"], hash=e["hash"], signature=e["signature"])
        for e in data["entries"]
    ]
    return Template(entries, data["compiled"])


def generate(
    hub: str,
    data: dict[str, Any],
    sites: list[tuple[int, str, bytes]],
    per_site: int,
    knobs: list[dict[str, Any]],
    now: str,
    days: float,
) -> dict[str, float]:
    """A worker: make and store the history of some spokes at the hub (its own process)."""
    template = _template(data)
    planted = [Knob(**k) for k in knobs]
    at = datetime.fromisoformat(now)
    runtime = _runtime(Path(hub))
    cpu, wall, stored = time.process_time(), time.perf_counter(), 0
    try:
        for index, code, pem in sites:
            planned = history.plan_history(
                template, [code], per_site, end=at - timedelta(hours=1), days=days, seed=index,
                knobs=planted, in_progress={code: RUNNING if index else 0},
            )  # fmt: skip
            started = time.perf_counter()

            def progress(done: int, code: str = code, started: float = started) -> None:
                if done % 100 == 0 or done == per_site:
                    rate = done * template.entries / max(1e-9, time.perf_counter() - started)
                    print(f"  {code}: {done}/{per_site} batches ({rate:.0f} entries/s)", flush=True)

            stored += sum(s.entries for s in history.store_history(
                runtime.uow, template, planned, {code: SiteKey.from_pem(pem)}, at=at, demo=False,
                serial_from=index * per_site + 1, knobs=planted, per_site=per_site,
                progress=progress,
            ))  # fmt: skip
    finally:
        runtime.close()
    return {
        "entries": stored,
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
    }


def build(folder: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The hub, its spokes and their history; setup figures."""
    figures: dict[str, Any] = {}
    codes = _codes(args.spokes)
    started = time.perf_counter()
    sites = build_demo(folder, hub_database_url=url, hub_only=tuple(codes[1:]))
    figures["build_demo_s"] = round(time.perf_counter() - started, 1)
    print(f"hub and {len(codes)} spokes built in {figures['build_demo_s']} s", flush=True)
    now = datetime.now(UTC)
    name = f"{args.recipe}.yaml"
    code = load_recipe((RECIPES / name).read_text(encoding="utf-8"), name).recipe_code
    started = time.perf_counter()
    data = drive_template(sites.spoke, folder, code, now)
    figures["drive_template_s"] = round(time.perf_counter() - started, 1)
    template = _template(data)
    print(
        f"template: {template.number}, {template.entries} entries, driven in "
        f"{figures['drive_template_s']} s; critical inputs: "
        + (", ".join(c.parameter for c in template.critical) or "none"),
        flush=True,
    )
    spoke = _runtime(sites.spoke)
    try:
        pems = {"SPK1": spoke.site.key.private_pem()}
        public = spoke.site.key.public.pem().decode("ascii")
    finally:
        spoke.close()
    pems.update({c: k.private_pem() for c, k in sites.keys.items()})
    hub = _runtime(sites.hub)
    try:
        with hub.uow() as uow:
            spokes.enroll(uow, now, "SPK1", sites.enrollment_code, public)
    finally:
        hub.close()
    knobs = default_knobs(template.critical, SHIFTED, DRIFTING) if args.spokes >= 3 else ()
    days = max(180.0, args.batches * 1.1)  # about one batch a day at each site
    shares: list[list[tuple[int, str, bytes]]] = [[] for _ in range(args.workers)]
    for index, c in enumerate(codes):
        shares[index % args.workers].append((index, c, pems[c]))
    print(
        f"generating {args.spokes} × {args.batches} batches ({args.workers} processes)…",
        flush=True,
    )
    started = time.perf_counter()
    watch = BackendCpu(url.rsplit("/", 1)[1])
    watch.start()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(
                generate,
                str(sites.hub),
                data,
                share,
                args.batches,
                [k.__dict__ for k in knobs],
                now.isoformat(),
                days,
            )
            for share in shares
            if share
        ]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - started
    pg_cpu = watch.stop()
    entries = sum(r["entries"] for r in results)
    cpu = sum(r["cpu_s"] for r in results)
    figures.update(
        {
            "generate_s": round(wall, 1),
            "generate_entries": entries,
            "generate_entries_per_s": round(entries / wall),
            "generate_entries_per_core_s": round(entries / max(1e-9, cpu + pg_cpu)),
            "generate_worker_cpu_s": round(cpu, 1),
            "generate_postgres_cpu_s": round(pg_cpu, 1),
        }
    )
    print(
        f"history stored: {entries} entries in {wall:.1f} s ({entries / wall:.0f} entries/s; "
        f"{figures['generate_entries_per_core_s']} per core-second)",
        flush=True,
    )
    figures["knobs"] = [k.__dict__ for k in knobs]
    figures["recipe_code"] = code
    figures["entries_per_batch"] = template.entries
    figures["critical"] = [c.parameter for c in template.critical]
    figures["units"] = {c.parameter: c.unit for c in template.critical}
    figures["_hub"] = str(sites.hub)
    return figures


class BackendCpu(threading.Thread):
    """CPU time of a database's PostgreSQL backends while they come and go (sampled each second:
    the workers' connections end with them, taking their counters along)."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.ticks: dict[int, int] = {}
        self.before = {pid: t for pid, t in self._sample().items()}
        self.done = threading.Event()

    def _sample(self) -> dict[int, int]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "(postgres)" in raw and f" {self.database} " in command:
                fields = raw.rsplit(")", 1)[1].split()
                found[int(entry.name)] = int(fields[11]) + int(fields[12])
        return found

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.ticks.update(self._sample())

    def stop(self) -> float:
        """Seconds of CPU the backends used since the start."""
        self.done.set()
        self.join()
        self.ticks.update(self._sample())
        used = sum(t - self.before.get(pid, 0) for pid, t in self.ticks.items())
        return used / os.sysconf("SC_CLK_TCK")


# --- reading over HTTP ---------------------------------------------------------------------


_TOKEN = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


class Browser:
    """One logged-in user's keep-alive connection and cookies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """Send; the status and the body (cookies kept)."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        page = answer.read().decode("utf-8", "replace")
        for header in answer.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value
        return answer.status, page

    def login(self, username: str, password: str) -> None:
        """As a person at the login form."""
        import html

        status, page = self.request("GET", "/login")
        token = _TOKEN.search(page)
        assert status == 200 and token, (status, page[:300])
        form = {
            "csrf_token": html.unescape(token.group(1)),
            "username": username,
            "password": password,
            "next": "",
        }
        status, page = self.request("POST", "/login", form)
        assert status in (302, 303), (status, page[:300])


def timed_reads(browser: Browser, path: str, count: int) -> dict[str, Any]:
    """``count`` GETs of ``path`` after one warm-up: median and p95 (or why not)."""
    status, page = browser.request("GET", path)
    if status == 404:
        return {"path": path, "missing": True}
    if status != 200:
        return {"path": path, "status": status, "error": page[:200]}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        status, _page = browser.request("GET", path)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            return {"path": path, "status": status}
    return {
        "path": path,
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(_pct(times, 0.95), 1),
        "bytes": len(page.encode()),
    }


def bench_http(hub: Path, folder: Path, figures: dict[str, Any], count: int) -> dict[str, Any]:
    """The pages QA and the network watch read, served by gunicorn."""
    process, port = serve(hub, folder / "hub.log", 2)
    reads: dict[str, Any] = {}
    try:
        browser = Browser(port)
        quinn = next(u for u in HUB_USERS if u[0] == "quinn")
        browser.login(quinn[0], quinn[3])
        code = figures["recipe_code"]
        shifted = next((k["parameter"] for k in figures["knobs"] if k["kind"] == SHIFT), None)
        parameter = shifted or (figures["critical"][0] if figures["critical"] else "")
        key = f"{parameter}|{figures['units'].get(parameter) or ''}"  # the page's series key
        paths = {
            "qa_queue": "/qa/",
            "board": "/network/batches",
            "board_json": "/network/batches.json",
            "turnaround": "/network/turnaround",
            "comparability_page": f"/network/comparability/{code}",
            "chart": f"/network/comparability/{code}/chart.svg?"
            + urllib.parse.urlencode({"parameter": key}),
        }
        for key, path in paths.items():
            reads[key] = timed_reads(browser, path, count)
            print(f"  {key}: {reads[key]}", flush=True)
    finally:
        stop(process)
    return reads


# --- commands, verification, size -------------------------------------------------------------


def _command(hub: Path, *args: str) -> tuple[int, str, float, float]:
    """``mes --instance hub ARGS``: exit code, output, wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mes.cli", "--instance", str(hub), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MES_INSTANCE": ""},
        cwd=ROOT,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.returncode, (done.stdout + done.stderr).strip(), wall, cpu


def bench_commands(
    hub: Path, folder: Path, figures: dict[str, Any], database: str
) -> dict[str, Any]:
    """The comparability report, the rebuild of the read models, every batch verified."""
    out: dict[str, Any] = {}
    runtime = _runtime(hub)
    try:
        with runtime.uow(read_only=True) as uow:
            first, last, count = uow.session.execute(
                select(func.min(BatchRow.created_at), func.max(BatchRow.created_at), func.count())
            ).one()
            entries = uow.session.execute(select(func.count()).select_from(BatchEntry)).scalar_one()
            size = uow.session.execute(
                text("SELECT pg_database_size(current_database())")
            ).scalar_one()
            ledger = uow.session.execute(
                text("SELECT pg_total_relation_size('batch_entries')")
            ).scalar_one()
            ids = list(uow.session.execute(select(BatchRow.id)).scalars())
    finally:
        runtime.close()
    out.update(
        {
            "batches": count,
            "entries": entries,
            "db_mib": round(size / 2**20, 1),
            "db_mib_per_1000_batches": round(size / 2**20 / max(1, count) * 1000, 1),
            "batch_entries_share": round(ledger / size, 3),
        }
    )
    date_from = str(first)[:10]
    date_to = str(last)[:10]
    pdf = folder / "comparability.pdf"
    code, said, wall, _cpu = _command(
        hub, "report", "comparability", figures["recipe_code"], "--from", date_from, "--to",
        date_to, "--out", str(pdf),
    )  # fmt: skip
    out["report"] = (
        {"seconds": round(wall, 1), "pdf_kib": round(pdf.stat().st_size / 1024)}
        if code == 0 and pdf.exists()
        else {"skipped": said[-300:]}
    )
    print(f"  report: {out['report']}", flush=True)
    pg = postgres_cpu_seconds(database)
    code, said, wall, cpu = _command(hub, "network", "rebuild")
    pg = postgres_cpu_seconds(database) - pg
    out["rebuild"] = (
        {
            "seconds": round(wall, 1),
            "entries_per_s": round(entries / wall),
            "entries_per_core_s": round(entries / max(1e-9, cpu + pg)),
            "said": said[-200:],
        }
        if code == 0
        else {"skipped": said[-300:]}
    )
    print(f"  rebuild: {out['rebuild']}", flush=True)
    runtime = _runtime(hub)
    pg = postgres_cpu_seconds(database)
    cpu, started, verified = time.process_time(), time.perf_counter(), 0
    try:
        ctx = command_context()
        for batch_id in ids:
            with runtime.uow(read_only=True) as uow:
                verified += batches.verify_batch_anchored(uow, ctx, batch_id).count
    finally:
        runtime.close()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    pg = postgres_cpu_seconds(database) - pg
    out["verify"] = {
        "seconds": round(wall, 1),
        "entries": verified,
        "entries_per_s": round(verified / wall),
        "entries_per_core_s": round(verified / max(1e-9, cpu + pg)),
    }
    print(f"  verify: {out['verify']}", flush=True)
    return out


# --- what CPV finds ----------------------------------------------------------------------------


def _series(hub: Path) -> dict[str, dict[str, list[float]]]:
    """parameter → site → values in the order of recording (from the read model)."""
    from mes.store.models import ParameterResult

    runtime = _runtime(hub)
    found: dict[str, dict[str, list[float]]] = {}
    try:
        with runtime.uow(read_only=True) as uow:
            rows = uow.session.execute(
                select(ParameterResult.parameter, ParameterResult.site, ParameterResult.value)
                .where(ParameterResult.value.is_not(None))
                .order_by(
                    ParameterResult.parameter, ParameterResult.site, ParameterResult.recorded_at
                )
            )
            for parameter, site, value in rows:
                found.setdefault(parameter, {}).setdefault(site, []).append(float(value))
    finally:
        runtime.close()
    return found


def _expected_false_alarms(lengths: list[int], trials: int = 200) -> float:
    """Signals the default rules raise on series in control of these lengths (simulated)."""
    rng = np.random.default_rng(16)
    total = 0
    for _ in range(trials):
        for n in lengths:
            x = rng.normal(0.0, 1.0, n)
            total += len(signals(x, imr_limits(x[:BASELINE])))
    return total / trials


def check_cpv(hub: Path, figures: dict[str, Any]) -> dict[str, Any]:
    """Equivalence per site and chart signals; the planted effects found, and the rest counted."""
    knobs = {k["kind"]: k for k in figures["knobs"]}
    series = _series(hub)
    found_outside, found_signals, other_signals, lengths = [], [], 0, []
    other_outside = []
    for parameter, by_site in sorted(series.items()):
        everything = np.concatenate([np.asarray(v) for v in by_site.values()])
        margin = MARGIN_SD * float(everything.std(ddof=1)) or 1e-9
        for site, values in sorted(by_site.items()):
            rest = np.concatenate([np.asarray(v) for s, v in by_site.items() if s != site])
            eq = equivalence(values, rest, margin, site=site) if rest.size > 1 else None
            planted = None
            for kind, knob in knobs.items():
                if knob["site"] == site and knob["parameter"] == parameter:
                    planted = kind
            if eq is not None and not eq.equivalent:
                (found_outside if planted else other_outside).append(
                    f"{site} {parameter} ({planted or 'not planted'}): difference "
                    f"{eq.difference:+.3g} (90 % CI {eq.ci_low:+.3g} to {eq.ci_high:+.3g}), margin ±{margin:.3g}"
                )
            if len(values) <= BASELINE:
                continue
            hits = signals(values, imr_limits(values[:BASELINE]))
            if planted == DRIFT:
                found_signals.append(
                    f"{site} {parameter}: {len(hits)} signals ("
                    + ", ".join(sorted({h.rule.value for h in hits}))
                    + ")"
                )
            else:
                other_signals += len(hits)
                lengths.append(len(values))
    shift, drift = knobs.get(SHIFT), knobs.get(DRIFT)
    shift_found = bool(shift) and any(
        line.startswith(f"{shift['site']} {shift['parameter']} ") for line in found_outside
    )
    drift_found = bool(drift) and any(
        line.startswith(f"{drift['site']} {drift['parameter']}:")
        and not line.endswith(": 0 signals ()")
        for line in found_signals
    )
    expected = _expected_false_alarms(lengths) if lengths else 0.0
    result = {
        "shift_found": shift_found,
        "drift_found": drift_found,
        "planted_outside_margin": found_outside,
        "drift_signals": found_signals,
        "other_outside_margin": other_outside,
        "other_signals": other_signals,
        "other_signals_expected_in_control": round(expected, 1),
        "series_checked": len(lengths),
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


# --- the run -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Build, measure, check; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spokes", type=int, default=50, help="spokes (default 50)")
    parser.add_argument("--batches", type=int, default=1000, help="batches per spoke (1000)")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, help="example recipe of the batches")
    parser.add_argument("--workers", type=int, default=2, help="processes generating history")
    parser.add_argument("--requests", type=int, default=20, help="timed reads per page")
    args = parser.parse_args(argv)
    if args.spokes < 1 or args.batches < 1 or args.workers < 1:
        parser.error("--spokes, --batches and --workers are at least 1")
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "loadavg_start": _loadavg(),
        "spokes": args.spokes,
        "batches_per_spoke": args.batches,
        "recipe": args.recipe,
    }
    database = f"mes_bench_network_{os.getpid()}"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mes-bench-network-") as tmp:
        folder = Path(tmp)
        try:
            url = _create_pg(database)
            figures = build(folder, url, args)
            hub = Path(figures.pop("_hub"))
            results["setup"] = figures
            print("reading over HTTP (gunicorn, 2 workers)…", flush=True)
            results["http"] = bench_http(hub, folder, figures, args.requests)
            print("commands and verification…", flush=True)
            results["commands"] = bench_commands(hub, folder, figures, database)
            print("what CPV finds…", flush=True)
            results["cpv"] = check_cpv(hub, figures)
        finally:
            _drop_pg(database)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["loadavg_end"] = _loadavg()
    print_table(results)
    if args.spokes == 50 and args.batches == 1000:
        out = Path(__file__).resolve().parent / "results"
        out.mkdir(exist_ok=True)
        (out / "network.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


def print_table(results: dict[str, Any]) -> None:
    """The figures against the issue's targets."""
    setup, reads, commands, cpv = (
        results["setup"], results["http"], results["commands"], results["cpv"],
    )  # fmt: skip
    print(
        f"\n{results['spokes']} spokes × {results['batches_per_spoke']} batches of "
        f"{setup['recipe_code']} ({setup['entries_per_batch']} entries each)"
    )
    print(
        f"{'history stored':<40}{setup['generate_s']:>10} s  {setup['generate_entries_per_s']} entries/s"
    )
    for key, figure in reads.items():
        if figure.get("missing"):
            shown = "route missing (404)"
        elif "p95_ms" in figure:
            target = TARGETS_MS.get(key)
            verdict = (
                "" if target is None else (" met" if figure["p95_ms"] <= target else " MISSED")
            )
            shown = f"median {figure['median_ms']} ms, p95 {figure['p95_ms']} ms" + (
                f" (target ≤ {target} ms{verdict})" if target else ""
            )
        else:
            shown = f"status {figure.get('status')}"
        print(f"{key:<40}{shown}")
    report = commands["report"]
    print(f"{'comparability report PDF':<40}{report.get('seconds', 'skipped')} s (target ≤ 10 s)")
    for key in ("rebuild", "verify"):
        figure = commands[key]
        shown = (
            f"{figure['seconds']} s, {figure['entries_per_core_s']} entries/s per core"
            if "seconds" in figure
            else "skipped"
        )
        print(f"{key:<40}{shown}")
    print(f"{'database size per 1,000 batches':<40}{commands['db_mib_per_1000_batches']} MiB")
    print(
        f"{'CPV: shift found / drift found':<40}{cpv['shift_found']} / {cpv['drift_found']}; "
        f"other signals {cpv['other_signals']} (in control: ~{cpv['other_signals_expected_in_control']}), "
        f"other sites outside the margin: {len(cpv['other_outside_margin'])}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
