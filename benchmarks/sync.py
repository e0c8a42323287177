"""Sync benchmark: a spoke pushes completed batches to its hub over loopback; idle rounds.

For each hub database (SQLite and PostgreSQL) a demo network is built (``mes demo``'s
:func:`~mes.cli.demo.build_demo`: the hub publishes the example recipes to spoke SPK1, which
installs them). One real batch of an example recipe is driven to completion at the spoke by the
test suite's recipe driver (``tests/recipe_driver.py``: people record, scan and sign every phase
through the services), then cloned N times at the spoke: a new UUIDv7 batch ID and batch number
(SITE-YEAR-NNNN), otherwise the same entry bodies, re-chained (``prev``) and re-sealed with the
spoke's key, stored with the store's own functions (``Batch.replay`` → ``store.save``, the
projection rows included) and queued in the outbox (``touch_outbox``) as the services do.
Clones share the template's chain of identity: the donation check is a guard of starting a
batch, which the hub's replay does not run.

The hub is served by the real server — ``mes serve --workers 2`` (gunicorn, two worker
processes) on PostgreSQL and on SQLite — and the spoke pushes with the real client
(:func:`mes.sync.client.sync_round`, two batches at a time, as the background loop does; rounds repeat until the outbox is empty: a round takes at most 500
batches). Every chunk is verified by the hub (JWS, every entry's hash and Ed25519 signature),
stored and replayed into the hub's projections. Figures:

- verified ingest: entries per second end to end (wall time of the rounds: the spoke's reading
  and signing, HTTP, the hub's checks and writes), CPU time of the hub's server processes, of
  PostgreSQL and of the spoke (this process) per batch.
- plain insert: the same ``batch_entries`` rows inserted into a fresh database of the same kind
  with SQLAlchemy Core ``executemany``, one transaction per batch (like one chunk), no checks
  (the ``batches`` rows they refer to are written first, untimed). Target: verified ingest ≥ 25 %
  of the plain insert rate.
- idle round: a full ``sync_round`` with nothing new (the bundle list from the hub, the pending
  query) at a spoke with 10,000 and with 200,000 entries of history, all acknowledged; median and
  p95 over 50 rounds each (alternating). The time must not grow with history.

Run: ``python -m benchmarks.sync`` (the issue's sizes: 1,000 batches; about 10 minutes on two
cores), ``--quick`` (40 batches, small histories), ``--batches N``, ``--only sqlite|postgresql``,
``--recipe car-t-fresh`` (321 entries a batch; the default mrna-vaccine-fill has 163, the
example closest to 200). ``--profile`` serves the hub in a wrapper (waitress, as ``mes serve``)
that profiles each chunk request with cProfile and prints where the hub's time goes, next to an
in-process breakdown of the same work without the profiler; a profiling run does not write the
JSON. Results go to stdout as a table and JSON, and to ``benchmarks/results/sync.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, func, insert, select, update

from benchmarks.profiling import print_parts
from mes.cli.demo import SPOKE_USERS, build_demo
from mes.core.batch import Batch, EntryKind
from mes.core.ledger import GENESIS, seal
from mes.services.batches import procedure_for
from mes.services.ids import new_id
from mes.services.runtime import Runtime, open_runtime
from mes.settings import load_settings
from mes.store import batches as store
from mes.store.engine import make_engine
from mes.store.migrate import upgrade
from mes.store.models import Batch as BatchRow
from mes.store.models import (
    BatchEntry,
    Counter,
    HubLink,
    InstalledRecipe,
    SyncOutbox,
    Terminal,
    User,
)
from mes.store.sync import log_event, move_mark, touch_outbox
from mes.sync import client

PG_ADMIN = os.environ.get("MES_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
RECIPES = ROOT / "recipes"
DEFAULT_RECIPE = "mrna-vaccine-fill"
TARGET_RATIO = 0.25
HUB_WORKERS = 2  # gunicorn worker processes, on PostgreSQL and on SQLite (WAL)
CLONES_PER_TRANSACTION = 50
IDLE_WARM_UP = 3


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    batches: int
    idle_small: int  # entries of history at the small idle spoke
    idle_large: int
    idle_rounds: int


FULL = Size(batches=1000, idle_small=10_000, idle_large=200_000, idle_rounds=50)
QUICK = Size(batches=40, idle_small=2_000, idle_large=20_000, idle_rounds=20)


# --- machine figures ---------------------------------------------------------------------------


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _processes() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, command name, stat fields after the name) of every process we can read."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.find("(") + 1 : raw.rfind(")")]
        yield int(entry.name), name, raw.rsplit(")", 1)[1].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of a process and its live descendants (gunicorn's workers)."""
    children: dict[int, list[int]] = {}
    for pid, _name, fields in _processes():
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(database: str | None) -> float:
    """CPU time of the PostgreSQL backends serving ``database`` (the hub's pooled connections;
    other databases' backends, the WAL writer and the checkpointer are not counted)."""
    if database is None:
        return 0.0
    ticks = 0
    for pid, name, fields in _processes():
        if name != "postgres":
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f" {database} " in command:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_busy(since: tuple[int, int] | None = None) -> Any:
    """The machine's CPU counters (busy, total) now, or the busy share of all cores since."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    now = (sum(ticks) - idle, sum(ticks))
    if since is None:
        return now
    return (now[0] - since[0]) / max(1, now[1] - since[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- databases and servers ---------------------------------------------------------------------


def _create_pg(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


def _drop_pg(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(
    instance: Path, log: Path, workers: int, profile_to: Path | None = None
) -> tuple[subprocess.Popen, int]:
    """``mes serve`` the hub (or the profiling wrapper); wait until /health answers."""
    port = _free_port()
    if profile_to is None:
        command = [sys.executable, "-m", "mes.cli", "--instance", str(instance), "serve"]
        command += ["--port", str(port), "--workers", str(workers)]
    else:
        command = [sys.executable, "-m", "benchmarks.sync", "--serve-profiled", str(instance)]
        command += [str(port), str(profile_to)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MES_INSTANCE": ""},
            cwd=ROOT,
            start_new_session=True,  # gunicorn's workers stop with it (signal to the group)
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the hub did not start:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                time.sleep(0.5 if workers > 1 else 0)  # let every gunicorn worker boot
                return process, port
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"the hub did not answer /health:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """Stop the server we started (SIGTERM to its process group, then kill)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _runtime(instance: Path) -> Runtime:
    return open_runtime(load_settings(instance, env={}))


# --- the template batch and its clones ----------------------------------------------------------


def drive_template(spoke: Path, recipe: str) -> str:
    """Run one whole batch of ``recipe`` at the demo spoke, as people would; its batch ID."""
    sys.path.insert(0, str(TESTS))
    import batch_helpers  # type: ignore[import-not-found]  # the test suite's helpers
    import recipe_driver  # type: ignore[import-not-found]

    from mes.core.keys import SiteKey
    from mes.services.esign import Credentials

    runtime = _runtime(spoke)
    try:
        with runtime.uow(read_only=True) as uow:
            ids = {u.username: u.id for u in uow.session.execute(select(User)).scalars()}
            terminal = uow.session.execute(select(Terminal.id)).scalar()
        site = batch_helpers.Spoke(
            make_uow=lambda *_a, **_k: runtime.uow(),
            hub_key=SiteKey.generate(),  # unused: the recipes are installed already
            ids=ids,
            terminal_id=terminal,
        )
        site.today = datetime.now(UTC).date()
        plain_ctx = site.ctx
        site.ctx = lambda username, at=None, **kw: plain_ctx(
            username, at or datetime.now(UTC), **kw
        )
        passwords = {u[0]: u[3] for u in SPOKE_USERS}
        recipe_driver.BatchRun.credentials = lambda _self, username: Credentials(
            passwords[username], username
        )
        return recipe_driver.run_batch(site, RECIPES / f"{recipe}.yaml", at=datetime.now(UTC))
    finally:
        runtime.close()


@dataclass(frozen=True)
class Template:
    """The driven batch the clones copy."""

    batch_id: str
    number: str
    bodies: str  # JSON of the entry bodies
    content_hash: str
    compiled: str
    entries: int
    deviations: int


def load_template(runtime: Runtime, batch_id: str) -> Template:
    """The template batch's entries and recipe, as read from the spoke."""
    with runtime.uow(read_only=True) as uow:
        row = uow.session.get(BatchRow, batch_id)
        installed = uow.session.get(InstalledRecipe, row.installed_recipe_id)
        entries = store.ledger(uow.session, batch_id)
    return Template(
        batch_id=batch_id,
        number=row.number,
        bodies=json.dumps([dict(e.body) for e in entries]),
        content_hash=installed.content_hash,
        compiled=installed.compiled,
        entries=len(entries),
        deviations=sum(1 for e in entries if e.body["kind"] == EntryKind.DEVIATION_RAISED),
    )


def clone_batches(
    runtime: Runtime, template: Template, first: int, count: int, *, synced: bool = False
) -> list[str]:
    """Store ``count`` copies of the template numbered from ``first``; their batch IDs.

    Each copy: a new UUIDv7 and batch number (the template's deviation IDs follow the number),
    the bodies re-chained and re-sealed with the spoke's key, replayed by the core, stored with
    ``store.save`` and queued in the outbox. ``synced``: acknowledged at once (history for the
    idle round: the mark moved and a push logged, as an acknowledgement does).
    """
    procedure = procedure_for(template.content_hash, template.compiled)
    key, zone = runtime.site.key, runtime.site.time_zone
    prefix = template.number.rsplit("-", 1)[0]
    made: list[str] = []
    for start in range(first, first + count, CLONES_PER_TRANSACTION):
        with runtime.uow() as uow:
            for n in range(start, min(start + CLONES_PER_TRANSACTION, first + count)):
                batch_id, number = new_id(), f"{prefix}-{n:04d}"
                bodies = json.loads(
                    template.bodies.replace(template.batch_id, batch_id).replace(
                        template.number, number
                    )
                )
                entries, prev = [], GENESIS
                for body in bodies:
                    body["prev"] = prev
                    entry = seal(body, key)
                    entries.append(entry)
                    prev = entry.hash
                batch = Batch.replay(procedure, entries, key=key, time_zone=zone)
                batch.new_entries = list(entries)
                store.save(uow.session, batch, None, key=key)
                touch_outbox(
                    uow.session, batch_id, batch.state.last_seq, priority=template.deviations > 0
                )
                if synced:
                    at = datetime.now(UTC)
                    move_mark(uow.session, batch_id, batch.state.last_seq, prev, at)
                    log_event(
                        uow.session, at=at, action="push", outcome="accepted", peer="HUB",
                        batch_id=batch_id, last_seq=batch.state.last_seq, stored=len(entries),
                    )  # fmt: skip
                made.append(batch_id)
            last = min(start + CLONES_PER_TRANSACTION, first + count) - 1
            uow.session.execute(
                update(Counter).where(Counter.name.like("batch:%")).values(value=last)
            )
            uow.commit()
    return made


def hold_back(runtime: Runtime, batch_ids: list[str], pending: bool) -> None:
    """Take batches out of the outbox's pending set, or put them back (the warm-up round)."""
    with runtime.uow() as uow:
        uow.session.execute(
            update(SyncOutbox).where(SyncOutbox.batch_id.in_(batch_ids)).values(pending=pending)
        )
        uow.commit()


# --- one hub database --------------------------------------------------------------------------


@dataclass
class Network:
    """A demo hub and its spoke, the spoke's clones ready to push."""

    kind: str
    folder: Path
    hub: Path
    spoke: Path
    base: Path  # the spoke before cloning (the template batch only)
    database: str | None  # the hub's PostgreSQL database
    code: str
    template: Template
    clones: list[str]
    setup: dict[str, float]


def prepare(kind: str, folder: Path, hub_url: str | None, recipe: str, batches: int) -> Network:
    """Build the network, drive the template batch, clone it (run in its own process)."""
    setup: dict[str, float] = {}
    start = time.perf_counter()
    sites = build_demo(folder, hub_database_url=hub_url)
    setup["build_demo_s"] = time.perf_counter() - start
    start = time.perf_counter()
    batch_id = drive_template(sites.spoke, recipe)
    setup["drive_template_s"] = time.perf_counter() - start
    base = folder / "spoke-base"
    shutil.copytree(sites.spoke, base)
    runtime = _runtime(sites.spoke)
    try:
        template = load_template(runtime, batch_id)
        start = time.perf_counter()
        clones = clone_batches(runtime, template, 2, batches)
        setup["clone_s"] = time.perf_counter() - start
        hold_back(runtime, clones, False)  # the warm-up round pushes the template alone
    finally:
        runtime.close()
    return Network(
        kind,
        folder,
        sites.hub,
        sites.spoke,
        base,
        hub_url and hub_url.rsplit("/", 1)[1],
        sites.enrollment_code,
        template,
        clones,
        setup,
    )


def hub_count(hub: Path) -> tuple[int, int]:
    """(batches, entries) the hub holds."""
    runtime = _runtime(hub)
    try:
        with runtime.uow(read_only=True) as uow:
            return (
                uow.session.execute(select(func.count()).select_from(BatchRow)).scalar_one(),
                uow.session.execute(select(func.count()).select_from(BatchEntry)).scalar_one(),
            )
    finally:
        runtime.close()


def push(runtime: Runtime, hub_client: client.HubClient, expected: int) -> dict[str, Any]:
    """Sync rounds until the outbox is empty; what they did and how long it took."""
    stored, batches, rounds, refused = 0, 0, 0, []
    start = time.perf_counter()
    while stored < expected:
        report = client.sync_round(runtime, hub_client)
        rounds += 1
        stored += report.stored
        batches += report.batches
        refused += report.refused
        if report.refused or not report.batches:
            break
    return {
        "seconds": time.perf_counter() - start,
        "stored": stored,
        "batches": batches,
        "rounds": rounds,
        "refused": refused[:5],
    }


def bench_push(network: Network, profile_to: Path | None = None) -> dict[str, Any]:
    """Serve the hub, enroll the spoke, warm up, push every clone; the figures."""
    workers = HUB_WORKERS
    process, port = serve(network.hub, network.folder / "hub.log", workers, profile_to)
    runtime = _runtime(network.spoke)
    figures: dict[str, Any] = {"hub_server": "gunicorn" if workers > 1 else "waitress"}
    figures["hub_workers"] = workers
    try:
        hub_url = f"http://127.0.0.1:{port}"
        client.enroll(runtime, hub_url, network.code)
        hub_client = client.HubClient(runtime, hub_url)
        try:
            warm = client.sync_round(runtime, hub_client)  # the template: hub warm, bundles known
            assert warm.stored == network.template.entries and not warm.refused, warm.summary()
            hold_back(runtime, network.clones, True)
            expected = len(network.clones) * network.template.entries
            load_before = _loadavg()
            busy = _machine_busy()
            hub_cpu, pg_cpu = tree_cpu_seconds(process.pid), postgres_cpu_seconds(network.database)
            own_cpu = time.process_time()
            result = push(runtime, hub_client, expected)
            own_cpu = time.process_time() - own_cpu
            hub_cpu = tree_cpu_seconds(process.pid) - hub_cpu
            pg_cpu = postgres_cpu_seconds(network.database) - pg_cpu
            busy = _machine_busy(busy)
        finally:
            hub_client.close()
    finally:
        runtime.close()
        if profile_to is None:
            stop(process)
        else:
            process.send_signal(signal.SIGTERM)  # the wrapper writes its profile and exits
            process.wait(timeout=120)
    held_batches, held_entries = hub_count(network.hub)
    pushed = len(network.clones)
    seconds = result["seconds"]
    figures.update(
        {
            "batches": pushed,
            "entries_per_batch": network.template.entries,
            "entries": result["stored"],
            "expected_entries": expected,
            "rounds": result["rounds"],
            "refused": result["refused"],
            "hub_holds_batches": held_batches,
            "hub_holds_entries": held_entries,
            "complete": held_entries == expected + network.template.entries,
            "push_s": seconds,
            "ingest_entries_per_s": result["stored"] / seconds,
            "ingest_batches_per_s": pushed / seconds,
            "ms_per_batch": seconds * 1000 / pushed,
            "hub_cpu_ms_per_batch": hub_cpu * 1000 / pushed,
            "postgres_cpu_ms_per_batch": pg_cpu * 1000 / pushed,
            "spoke_cpu_ms_per_batch": own_cpu * 1000 / pushed,
            "hub_cpu_bound_entries_per_s": network.template.entries
            * pushed
            / max(1e-9, hub_cpu + pg_cpu),
            "machine_cpu_busy": busy,
            "loadavg_before_push": load_before,
            "loadavg_after_push": _loadavg(),
            **{k: round(v, 1) for k, v in network.setup.items()},
        }
    )
    return figures


# --- plain insert ------------------------------------------------------------------------------


def bench_plain(network: Network, url: str) -> dict[str, Any]:
    """The same ledger rows into a fresh database of the kind: executemany, a txn per batch."""
    engine = make_engine(url)
    upgrade(engine)
    spoke = _runtime(network.spoke)
    try:
        with spoke.uow(read_only=True) as uow:
            rows = [
                {c.key: getattr(r, c.key) for c in BatchRow.__table__.columns}
                for r in uow.session.execute(
                    select(BatchRow).where(BatchRow.id.in_(network.clones))
                ).scalars()
            ]
        for row in rows:
            row["installed_recipe_id"] = None  # as the hub stores a received batch
        with engine.begin() as conn:  # the batches the entries belong to: untimed
            conn.execute(insert(BatchRow), rows)
        seconds, count = 0.0, 0
        for batch_id in network.clones:
            with spoke.uow(read_only=True) as uow:
                values = [
                    store._entry_values(e)  # the very rows store.save inserts
                    for e in store.ledger(uow.session, batch_id)
                ]
            start = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(insert(BatchEntry), values)
            seconds += time.perf_counter() - start
            count += len(values)
    finally:
        spoke.close()
        engine.dispose()
    return {"plain_rows": count, "plain_s": seconds, "plain_rows_per_s": count / seconds}


# --- idle rounds -------------------------------------------------------------------------------


def history_spoke(network: Network, name: str, entries: int) -> Path:
    """A copy of the spoke with about ``entries`` entries of history, every batch acknowledged.

    Ledgers are append-only (the database refuses deletes), so a history smaller than the push
    starts from the spoke as it was before cloning (the template batch only, acknowledged at the
    hub by the warm-up round: its mark is moved and the hub link copied); a larger one starts
    from the spoke after the push. Either is topped up with clones acknowledged at once.
    """
    per_batch = network.template.entries
    wanted = max(1, round(entries / per_batch))
    after_push = len(network.clones) + 1 <= wanted
    folder = network.folder / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(network.spoke if after_push else network.base, folder)
    runtime = _runtime(folder)
    try:
        if not after_push:
            pushed = _runtime(network.spoke)
            try:
                with pushed.uow(read_only=True) as uow:
                    link = uow.session.get(HubLink, 1)
                    values = {c.key: getattr(link, c.key) for c in HubLink.__table__.columns}
                    acked = uow.session.get(SyncOutbox, network.template.batch_id)
                    mark = (acked.acked_seq, acked.acked_hash, acked.acked_at)
            finally:
                pushed.close()
            with runtime.uow() as uow:
                uow.session.add(HubLink(**values))
                move_mark(uow.session, network.template.batch_id, *mark)
                uow.commit()
        with runtime.uow(read_only=True) as uow:
            held = uow.session.execute(select(func.count()).select_from(BatchRow)).scalar_one()
        if held < wanted:
            clone_batches(runtime, network.template, held + 1, wanted - held, synced=True)
        with runtime.uow(read_only=True) as uow:
            held = uow.session.execute(select(func.count()).select_from(BatchEntry)).scalar_one()
            waiting = uow.session.execute(
                select(func.count()).select_from(SyncOutbox).where(SyncOutbox.pending.is_(True))
            ).scalar_one()
        assert waiting == 0, f"{waiting} batches still pending at {name}"
        (folder / "history.json").write_text(json.dumps({"entries": held}))
    finally:
        runtime.close()
    return folder


def bench_idle(network: Network, size: Size) -> dict[str, Any]:
    """Idle rounds at a spoke with a small and with a large history (alternating)."""
    spokes = {
        "small": history_spoke(network, "idle-small", size.idle_small),
        "large": history_spoke(network, "idle-large", size.idle_large),
    }
    workers = HUB_WORKERS
    process, port = serve(network.hub, network.folder / "hub-idle.log", workers)
    runtimes = {k: _runtime(p) for k, p in spokes.items()}
    clients = {k: client.HubClient(rt, f"http://127.0.0.1:{port}") for k, rt in runtimes.items()}
    times: dict[str, list[float]] = {k: [] for k in spokes}
    try:
        for n in range(IDLE_WARM_UP + size.idle_rounds):
            order = ("small", "large") if n % 2 == 0 else ("large", "small")
            for which in order:
                start = time.perf_counter()
                report = client.sync_round(runtimes[which], clients[which])
                seconds = time.perf_counter() - start
                assert report.batches == 0 and not report.refused, report.summary()
                if n >= IDLE_WARM_UP:
                    times[which].append(seconds * 1000)
    finally:
        for c in clients.values():
            c.close()
        for rt in runtimes.values():
            rt.close()
        stop(process)
    figures: dict[str, Any] = {"idle_rounds": size.idle_rounds}
    for which, folder in spokes.items():
        figures[f"idle_{which}_history_entries"] = json.loads(
            (folder / "history.json").read_text()
        )["entries"]
        figures[f"idle_{which}_median_ms"] = statistics.median(times[which])
        figures[f"idle_{which}_p95_ms"] = _pct(times[which], 0.95)
        figures[f"idle_{which}_max_ms"] = max(times[which])
    figures["idle_large_over_small"] = figures["idle_large_median_ms"] / max(
        1e-9, figures["idle_small_median_ms"]
    )
    return figures


# --- the run -----------------------------------------------------------------------------------


ROWS = (
    ("batches", "batches pushed", "{:d}"),
    ("entries_per_batch", "entries per batch", "{:d}"),
    ("entries", "entries stored at the hub", "{:d}"),
    ("rounds", "sync rounds", "{:d}"),
    ("push_s", "push wall s", "{:.1f}"),
    ("ingest_entries_per_s", "verified ingest entries/s", "{:.0f}"),
    ("ingest_batches_per_s", "verified ingest batches/s", "{:.2f}"),
    ("ms_per_batch", "wall ms/batch", "{:.1f}"),
    ("hub_cpu_ms_per_batch", "hub server CPU ms/batch", "{:.1f}"),
    ("postgres_cpu_ms_per_batch", "PostgreSQL backends CPU ms/batch", "{:.1f}"),
    ("spoke_cpu_ms_per_batch", "spoke (client) CPU ms/batch", "{:.1f}"),
    ("hub_cpu_bound_entries_per_s", "hub + PG CPU: entries/s per core", "{:.0f}"),
    ("machine_cpu_busy", "all cores busy during push", "{:.0%}"),
    ("plain_rows_per_s", "plain insert rows/s", "{:.0f}"),
    ("ratio", "verified / plain (target 25%)", "{:.1%}"),
    ("idle_small_history_entries", "idle: small history entries", "{:d}"),
    ("idle_small_median_ms", "idle: small median ms", "{:.1f}"),
    ("idle_small_p95_ms", "idle: small p95 ms", "{:.1f}"),
    ("idle_large_history_entries", "idle: large history entries", "{:d}"),
    ("idle_large_median_ms", "idle: large median ms", "{:.1f}"),
    ("idle_large_p95_ms", "idle: large p95 ms", "{:.1f}"),
    ("idle_large_over_small", "idle: large / small median", "{:.2f}"),
)


def print_table(dbs: dict[str, dict[str, Any]]) -> None:
    """The figures, one column per hub database, then the verdicts."""
    kinds = list(dbs)
    print(f"\n{'figure':<36}" + "".join(f"{k:>14}" for k in kinds))
    for key, label, form in ROWS:
        cells = []
        for k in kinds:
            value = dbs[k].get(key)
            cells.append(f"{'—' if value is None else form.format(value):>14}")
        print(f"{label:<36}" + "".join(cells))
    for kind, f in dbs.items():
        verdict = "met" if f.get("target_met") else "MISSED"
        print(
            f"{kind}: verified ingest {f['ingest_entries_per_s']:.0f} entries/s = "
            f"{f['ratio']:.1%} of the plain insert ({f['plain_rows_per_s']:.0f} rows/s): "
            f"target ≥ 25 % {verdict}; idle round {f['idle_small_median_ms']:.1f} ms at "
            f"{f['idle_small_history_entries']} entries vs {f['idle_large_median_ms']:.1f} ms "
            f"at {f['idle_large_history_entries']}"
        )
        if not f["complete"]:
            print(f"  INCOMPLETE: the hub holds {f['hub_holds_entries']} entries")
        for refusal in f["refused"]:
            print(f"  refused: {refusal}")


def run_kind(
    kind: str, network: Network, size: Size, folder: Path, profile: bool
) -> dict[str, Any]:
    """Push, plain insert and idle rounds for one hub database."""
    profile_to = folder / f"profile-{kind}.pstats" if profile else None
    figures = bench_push(network, profile_to)
    print(
        f"{kind}: pushed {figures['batches']} batches ({figures['entries']} entries) in "
        f"{figures['push_s']:.1f} s: {figures['ingest_entries_per_s']:.0f} entries/s",
        flush=True,
    )
    if profile_to is not None:
        print_profile(kind, profile_to, figures)
        breakdown(network, figures)
        return figures
    plain_name = f"mes_bench_sync_plain_{os.getpid()}"
    if kind == "postgresql":
        url = _create_pg(plain_name)
    else:
        url = f"sqlite:///{folder / 'plain.sqlite3'}"
    try:
        figures.update(bench_plain(network, url))
    finally:
        if kind == "postgresql":
            _drop_pg(plain_name)
    figures["ratio"] = figures["ingest_entries_per_s"] / figures["plain_rows_per_s"]
    figures["target_met"] = figures["ratio"] >= TARGET_RATIO
    print(f"{kind}: plain insert {figures['plain_rows_per_s']:.0f} rows/s", flush=True)
    figures.update(bench_idle(network, size))
    return figures


def main(argv: list[str] | None = None) -> None:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 batches, small histories")
    parser.add_argument("--batches", type=int, help="batches to push (default 1000; quick 40)")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, help="example recipe of the batch")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one hub database only")
    parser.add_argument(
        "--profile", action="store_true", help="profile the hub per chunk (cProfile)"
    )
    parser.add_argument("--serve-profiled", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_profiled:
        serve_profiled(*args.serve_profiled)
        return
    size = QUICK if args.quick else FULL
    if args.batches:
        size = Size(args.batches, size.idle_small, size.idle_large, size.idle_rounds)
    kinds = [k for k in ("sqlite", "postgresql") if args.only in (None, k)]
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "loadavg_start": _loadavg(),
        "recipe": args.recipe,
        "batches": size.batches,
        "target_ratio": TARGET_RATIO,
        "databases": {},
    }
    dbs: dict[str, dict[str, Any]] = results["databases"]
    hub_db = f"mes_bench_sync_hub_{os.getpid()}"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mes-bench-sync-") as tmp:
        folder = Path(tmp)
        try:
            urls = {"sqlite": None, "postgresql": _create_pg(hub_db)}
            networks = _prepare_all(kinds, folder, urls, args.recipe, size.batches)
            results["setup_wall_s"] = round(time.perf_counter() - started, 1)
            for kind in kinds:
                dbs[kind] = run_kind(kind, networks[kind], size, folder / kind, args.profile)
        finally:
            _drop_pg(hub_db)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["loadavg_end"] = _loadavg()
    if args.profile:
        return
    print_table(dbs)
    if args.only is None and args.batches in (None, FULL.batches) and not args.quick:
        out = Path(__file__).resolve().parent / "results"
        out.mkdir(exist_ok=True)
        (out / "sync.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


def _prepare_all(
    kinds: list[str], folder: Path, urls: dict[str, str | None], recipe: str, batches: int
) -> dict[str, Network]:
    """Build each hub database's network at once, one process each (two cores)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(kinds), mp_context=spawn) as pool:
        futures = {k: pool.submit(prepare, k, folder / k, urls[k], recipe, batches) for k in kinds}
        networks = {k: f.result() for k, f in futures.items()}
    for kind, network in networks.items():
        print(
            f"{kind}: demo built, {network.template.entries}-entry {recipe} batch driven and "
            f"cloned {len(network.clones)} times "
            + ", ".join(f"{k} {v:.1f}" for k, v in network.setup.items())
            + f" (all in parallel: {time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    return networks


# --- profiling (investigation) -----------------------------------------------------------------


def serve_profiled(instance: str, port: str, out: str) -> None:
    """Serve the hub like ``mes serve`` (waitress), each chunk request profiled in its thread."""
    import cProfile
    import pstats

    import waitress

    from mes.app import create_app

    app = create_app(load_settings(Path(instance), env={}))
    inner = app.wsgi_app
    lock = threading.Lock()
    profiles: list[cProfile.Profile] = []
    walls: list[float] = []

    def profiled(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO", "") != "/api/v1/sync/chunks":
            return inner(environ, start_response)
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        try:
            return list(inner(environ, start_response))
        finally:
            profile.disable()
            with lock:
                walls.append(time.perf_counter() - start)
                profiles.append(profile)

    app.wsgi_app = profiled  # type: ignore[method-assign]

    def dump(*_args: object) -> None:
        with lock:
            if profiles:
                stats = pstats.Stats(profiles[0])
                for profile in profiles[1:]:
                    stats.add(profile)
                stats.dump_stats(out)
            Path(out + ".count").write_text(json.dumps({"count": len(walls), "wall": walls}))
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    waitress.serve(app, host="127.0.0.1", port=int(port), threads=8, ident="mes")


# (label, file name, function): inclusive time of each, per chunk request
PROFILE_PARTS = (
    ("whole request (Flask wsgi_app)", "app.py", "wsgi_app"),
    ("  request signature (_check_signature)", "spokes.py", "_check_signature"),
    ("  receive_chunk (nonce, checks, store)", "spokes.py", "receive_chunk"),
    ("    open_chunk (all verification)", "sync.py", "open_chunk"),
    ("      JWS deserialize + verify", "jws.py", "deserialize_compact"),
    ("      entry hashes (content_hash)", "canonical.py", "content_hash"),
    ("      entry signatures (Ed25519 verifies)", "keys.py", "verifies"),
    ("    _store_chunk (under the batch lock)", "spokes.py", "_store_chunk"),
    ("      lock_batch", "batches.py", "lock_batch"),
    ("      _deployed_procedure", "spokes.py", "_deployed_procedure"),
    ("        procedure_for (compiled JSON)", "batches.py", "procedure_for"),
    ("      Batch.replay", "aggregate.py", "replay"),
    ("        Batch._refresh", "ordering.py", "_refresh"),
    ("        _fire (transitions machine)", "machines.py", "_fire"),
    ("      store.save (entries + projection)", "batches.py", "save"),
    ("        Batch.projection", "projection.py", "projection"),
    ("      log_event", "sync.py", "log_event"),
    ("    commit", "uow.py", "commit"),
    ("  SQLAlchemy Session.execute (all)", "session.py", "execute"),
    ("  jsonify", "__init__.py", "jsonify"),
)


def print_profile(kind: str, path: Path, figures: dict[str, Any]) -> None:
    """Where the hub spent its time per chunk request (inclusive, ms per request)."""
    import pstats

    meta = json.loads(Path(str(path) + ".count").read_text())
    count = meta["count"]
    if not count:
        print(f"{kind}: no profile")
        return
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    wall = statistics.mean(meta["wall"]) * 1000
    print(
        f"\n{kind}: cProfile of {count} chunk requests, {wall:.1f} ms each in the app under the "
        f"profiler; client saw {figures['ms_per_batch']:.1f} ms per batch "
        "(ms per request, inclusive)"
    )
    print_parts(stats, count, PROFILE_PARTS, figures, width=48, top=20)


def breakdown(network: Network, figures: dict[str, Any], chunks: int = 40) -> None:
    """A chunk's work timed piece by piece in this process, without a profiler.

    The spoke's reading and signing, the hub's verification (parts timed again on their own),
    replay, and ``store.save`` + commit into a fresh database of the hub's kind.
    """
    from joserfc import jws

    from mes.core.canonical import canonical_json
    from mes.core.sync import MAX_CHUNK_BYTES, _jws_key, _registry, make_chunk, open_chunk
    from mes.store.engine import session_factory

    runtime = _runtime(network.spoke)
    key = runtime.site.key
    timings: dict[str, list[float]] = {}

    def timed(label: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = work()
        timings.setdefault(label, []).append((time.perf_counter() - start) * 1000)
        return value

    name = f"mes_bench_sync_breakdown_{os.getpid()}"
    if network.kind == "postgresql":
        url = _create_pg(name)
    else:
        url = f"sqlite:///{network.folder / 'breakdown.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    procedure = procedure_for(network.template.content_hash, network.template.compiled)
    at = datetime.now(UTC)
    public = key.public
    statements: dict[str, list[float]] = {}  # "INSERT INTO table" → ms, within store.save
    started: list[float] = []

    def before(*_args: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        label = "  " + " ".join(statement.split()[:3]) + " (driver)"
        statements.setdefault(label, []).append((time.perf_counter() - started.pop()) * 1000)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for batch_id in network.clones[:chunks]:
            with runtime.uow(read_only=True) as uow:
                entries = timed(
                    "spoke: read the entries (entries_after)",
                    lambda u=uow, b=batch_id: store.entries_after(u.session, b, 0, 500),
                )
            token = timed(
                "spoke: make_chunk (canonical JSON + JWS sign)",
                lambda e=entries: make_chunk(e, site="SPK1", key=key, issued_at=at),
            )
            chunk = timed(
                "hub: open_chunk (all verification)",
                lambda t=token: open_chunk(t, public, "SPK1"),
            )
            timed(
                "  JWS signature + base64 (deserialize_compact)",
                lambda t=token: jws.deserialize_compact(
                    t, _jws_key(public), registry=_registry(MAX_CHUNK_BYTES)
                ),
            )
            timed(
                "  RFC 8785 canonical JSON of each entry",
                lambda c=chunk: [canonical_json(dict(e.body)) for e in c.entries],
            )
            timed(
                "  Ed25519 verify of each entry",
                lambda c=chunk: [public.verifies(e.hash.encode("ascii"), e.signature)
                                 for e in c.entries],
            )  # fmt: skip
            batch = timed(
                "hub: Batch.replay (core, no guards)",
                lambda c=chunk: Batch.replay(procedure, c.entries),
            )
            batch.new_entries = list(chunk.entries)
            timed("  Batch.projection", lambda b=batch: b.projection())
            with sessions() as session:
                session.connection()  # BEGIN (IMMEDIATE on SQLite) outside the timing
                statements.clear()
                timed(
                    "hub: store.save (entries + projection rows)",
                    lambda s=session, b=batch: store.save(s, b, None, key=key, received=True),
                )
                for label, values in statements.items():
                    calls = f"{label[:-1]}, {len(values)} call{'s' if len(values) > 1 else ''})"
                    timings.setdefault(calls, []).append(sum(values))
                timed("hub: commit", session.commit)
    finally:
        runtime.close()
        engine.dispose()
        if network.kind == "postgresql":
            _drop_pg(name)
    print(
        f"\n{network.kind}: in-process breakdown over {min(chunks, len(network.clones))} chunks "
        f"of {network.template.entries} entries (ms per chunk, median)"
    )
    parts = {}
    for label, values in timings.items():
        parts[label.strip()] = round(statistics.median(values), 2)
        print(f"{label:<52}{statistics.median(values):>9.2f} ms")
    figures["breakdown_ms_per_chunk"] = parts


if __name__ == "__main__":
    main()
