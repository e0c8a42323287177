"""Batch-execution benchmark: operators signing phases over HTTP with 200 batches in progress.

A spoke instance is built with the services (16 operators, each attested at a registered
terminal and trained on the bench recipe; the recipe installed from a bundle signed by a
separate hub key; 200 batches started and enough phases pre-started for the run), then served
by the real server (``mes serve``: waitress, 8 threads) in a subprocess. 16 client threads, each
with its own keep-alive connection, session (logged in through /login), terminal cookie and
batches, then tap "Sign performed" (``POST /batches/<id>/phases/<phase>/sign/perform``: the value
is recorded and the phase signed in one request, password check included):

- latency: each client signs a phase every 2 s on a fixed schedule (open loop, 8 signatures/s
  in all, starts staggered); median, p95 and max time to sign, next to the argon2id verification
  time measured alone in this process. Target: p95 ≤ 1.5 × argon2 + 30 ms.
- capacity: the same clients signing back to back; signatures per second, next to the bound set
  by password hashing (cores ÷ argon2 time). Target: ≥ 70 % of that bound.
- authenticated reads: the same clients opening ``/about`` (a page with no query of its own:
  what every authenticated request pays for the terminal, the server-side session and the user)
  one at a time, then back to back; ``--reads-only`` measures only these (to compare code
  versions run after run).

Every answer must be a 303 redirect; anything else is counted as a failure and its message
printed. Run on SQLite and on PostgreSQL: ``python -m benchmarks`` (``--quick``: fewer batches
and seconds), or ``python -m benchmarks.batches``. Results go to stdout as a table and to
``benchmarks/results/batches.json``.

``python -m benchmarks.batches --profile`` serves the instance in a wrapper that profiles each
request with cProfile (per worker thread) and prints where the server spends its time per
signature request (a profiling run; the figures of that run are slower than a normal one);
``--py-spy gil|wall`` samples the real server with py-spy instead (Python time holding the GIL,
or wall time with the waits). Profiling runs do not write the JSON.
"""

from __future__ import annotations

import argparse
import getpass
import html
import http.client
import json
import math
import multiprocessing
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import psycopg
from itsdangerous import URLSafeSerializer

from benchmarks.profiling import print_parts
from mes.core.batch import Batch, Procedure, training_procedure
from mes.core.batch import Operator as BatchOperator
from mes.core.bundle import make_bundle
from mes.core.keys import SiteKey
from mes.core.passwords import hash_password, password_matches
from mes.core.recipe import CompiledRecipe, load_recipe
from mes.services import batches, recipes
from mes.services.context import Context, actor_of
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.instance import InstanceRequest, init_instance
from mes.services.runtime import Runtime
from mes.services.terminals import register_terminal
from mes.services.training import record_training
from mes.services.users import add_user, find_user
from mes.store import batches as store
from mes.store.models import InstalledRecipe, User

PG_ADMIN = os.environ.get("MES_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SITE = "SPK1"
RECIPE_CODE = "BENCH-BATCH"
PHASES = 60
CLIENTS = 16
PERIOD_SECONDS = 2.0  # each client signs every 2 s in the latency run: 8 signatures/s in all
ADMIN = ("ada", "Ada Admin", "keys-to-the-bench-suite")
PASSWORD = "signing-at-the-bench-{:02d}"  # one per operator; meets the password policy
SERVER_THREADS = 8  # what ``mes serve`` runs (waitress)
SERIAL_EACH = 2  # signatures per client one at a time, before the runs: the service time
_ALERT = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.S)
_TOKEN = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    batches: int
    latency_seconds: float
    capacity_seconds: float

    read_seconds: float = 5


FULL = Size(batches=200, latency_seconds=30, capacity_seconds=20, read_seconds=10)
QUICK = Size(batches=24, latency_seconds=6, capacity_seconds=4, read_seconds=4)
READ_PAGE = "/about"  # authenticated, no query of its own: the per-request cost of a session
READ_SERIAL_EACH = 10  # reads per client one at a time


# --- the bench recipe ------------------------------------------------------------------------


def bench_recipe_text(phases: int = PHASES) -> str:
    """One unit procedure, one operation whose ``phases`` run in parallel, one number each."""
    lines = [
        "format: gmp-mes/recipe/1",
        f"recipe_code: {RECIPE_CODE}",
        "version: 1",
        "title: Batch-execution benchmark recipe",
        "description: A generated recipe for the batch-execution benchmark.",
        "product:",
        "  code: BENCH-PRODUCT",
        "  name: Benchmark product",
        "  modality: autologous_cell",
        "expected_duration: 1 d",
        "change_reason: Generated for the benchmark.",
        "chain_of_identity:",
        "  bench_ref:",
        "    label: Benchmark reference",
        "    kind: identifier",
        "unit_procedures:",
        "  - id: fill",
        "    name: Fill the bags",
        "    operations:",
        "      - id: measure",
        "        name: Measure every bag",
        "        ordering: parallel",
        "        phases:",
    ]
    for p in range(phases):
        lines += [
            f"          - id: p{p:02d}",
            f"            name: Measure bag {p + 1}",
            "            instructions: |",
            f"              1. Take bag {p + 1} from the rack.",
            "              2. Read its volume on the scale and record it.",
            "            inputs:",
            "              volume:",
            "                label: Bag volume",
            "                type: number",
            "                unit: mL",
            "                decimals: 1",
            "                target: 100",
            "                alert_low: 90",
            "                alert_high: 110",
            "                action_low: 80",
            "                action_high: 120",
        ]
    return "\n".join(lines) + "\n"


# --- building the spoke ----------------------------------------------------------------------


@dataclass
class Operator:
    """One operator of the run: an account, a registered terminal, their own batches."""

    username: str
    password: str
    user_id: str
    terminal_id: str
    batches: list[str] = field(default_factory=list)
    work: list[tuple[str, str]] = field(default_factory=list)  # (batch, phase) started, unsigned


def _ctx(user_id: str | None = None, terminal_id: str | None = None) -> Context:
    if user_id is None:
        return Context.command_line(datetime.now(UTC), getpass.getuser(), socket.gethostname())
    return Context(
        at=datetime.now(UTC), user_id=user_id, terminal="bench set-up", terminal_id=terminal_id
    )


def build_spoke(
    folder: Path, database_url: str | None, size: Size, phases_per_batch: int
) -> tuple[list[Operator], dict[str, float]]:
    """Create the spoke and its batches; the operators, and how long each step took."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    compiled: CompiledRecipe = load_recipe(bench_recipe_text(), "bench-batch.yaml")
    assert sum(1 for _ in compiled.phases()) == PHASES
    hub_key = SiteKey.generate()  # the hub's key: the spoke pins its public half
    today = date.today()
    token = make_bundle(
        compiled.data,
        effective_from=today - timedelta(days=1),
        sites=[SITE],
        issuer="HUB",
        issued_at=datetime.now(UTC),
        key=hub_key,
    )
    runtime: Runtime = init_instance(
        InstanceRequest(
            path=folder,
            role="spoke",
            site_code=SITE,
            site_name="Benchmark spoke",
            time_zone="UTC",
            database_url=database_url,
            admin_username=ADMIN[0],
            admin_name=ADMIN[1],
            admin_password=ADMIN[2],
            hub_key_pem=hub_key.public.pem(),
        ),
        datetime.now(UTC),
        getpass.getuser(),
        socket.gethostname(),
    )
    try:
        system = _ctx()
        with runtime.uow() as uow:
            recipes.install_bundle(uow, system, token, "bench-batch.jws")
        procedure = training_procedure(compiled.recipe_code, compiled.version)
        operators = []
        for n in range(1, CLIENTS + 1):
            username, password = f"op{n:02d}", PASSWORD.format(n)
            with runtime.uow() as uow:
                add_user(
                    uow, system, username=username, full_name=f"Operator {n:02d}",
                    roles=["operator"], password=password,
                )  # fmt: skip
            with runtime.uow() as uow:
                user_id = find_user(uow, username).id
            with runtime.uow() as uow:
                terminal_id = register_terminal(uow, system, f"Bench terminal {n:02d}", "bench")
            with runtime.uow() as uow:
                acknowledge_accountability(
                    uow, _ctx(user_id, terminal_id), Credentials(password, username), True
                )
            with runtime.uow() as uow:
                record_training(
                    uow, system, username=username, procedure=procedure,
                    qualified_on=today - timedelta(days=30), expires_on=today + timedelta(days=335),
                )  # fmt: skip
            operators.append(Operator(username, password, user_id, terminal_id))
        timings["instance_users_s"] = time.perf_counter() - start

        # Batches: each operator starts and owns its own (round robin, 12–13 each of 200).
        start = time.perf_counter()
        for b in range(size.batches):
            who = operators[b % CLIENTS]
            with runtime.uow() as uow:
                batch = batches.start_batch(
                    uow,
                    _ctx(who.user_id, who.terminal_id),
                    RECIPE_CODE,
                    {"bench_ref": f"BENCH-{b + 1:05d}"},
                    Credentials(who.password, who.username),
                    first_signing_in_session=True,
                )
            who.batches.append(batch.state.id)
        timings["start_batches_s"] = time.perf_counter() - start

        # Phases started ahead, so that the measured request is the "Sign performed" tap. All
        # of a batch's in one transaction (services.batches.start_phase replays the whole
        # ledger for each phase: ~40 ms, too slow for the thousands needed here); the same
        # entries and projections, written by the core and the store as the service does.
        start = time.perf_counter()
        phase_ids = [f"p{p:02d}" for p in range(phases_per_batch)]
        for who in operators:
            for batch_id in who.batches:
                _start_phases(runtime, who, batch_id, phase_ids)
        for phase_id in phase_ids:  # each operator goes round its batches
            for who in operators:
                who.work += [(batch_id, phase_id) for batch_id in who.batches]
        timings["start_phases_s"] = time.perf_counter() - start
        timings["phases_started"] = sum(len(o.work) for o in operators)
    finally:
        runtime.close()
    return operators, timings


def _start_phases(runtime: Runtime, who: Operator, batch_id: str, phase_ids: list[str]) -> None:
    """Start ``phase_ids`` of a batch as ``who``, in one transaction."""
    with runtime.uow() as uow:
        row = store.lock_batch(uow.session, batch_id)
        installed = uow.session.get(InstalledRecipe, row.installed_recipe_id)
        procedure = Procedure(json.loads(installed.compiled))
        batch = Batch.replay(
            procedure,
            store.ledger(uow.session, batch_id),
            key=uow.site.key,
            time_zone=uow.site.time_zone,
        )
        stored = store.saved_state(batch)
        user = uow.session.get(User, who.user_id)
        person = BatchOperator(actor=actor_of(user), roles=user.role_names, qualified=True)
        at = datetime.now(UTC)
        for phase_id in phase_ids:
            batch.start_phase(phase_id, person, at, "bench set-up")
        store.save(uow.session, batch, stored, key=uow.site.key)
        uow.commit()


# --- serving ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(
    instance: Path, log: Path, profile_to: Path | None = None
) -> tuple[subprocess.Popen, int]:
    """``mes serve`` the instance (or the profiling wrapper); wait for /health."""
    port = _free_port()
    if profile_to is None:
        command = [sys.executable, "-m", "mes.cli", "--instance", str(instance), "serve"]
        command += ["--port", str(port)]
    else:
        command = [sys.executable, "-m", "benchmarks.batches", "--serve-profiled", str(instance)]
        command += [str(port), str(profile_to)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MES_INSTANCE": ""},
            cwd=Path(__file__).resolve().parents[1],
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server did not start:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the server did not answer /health:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """Stop the server we started (SIGTERM, then kill)."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# --- clients ---------------------------------------------------------------------------------


@dataclass
class Sample:
    """One signature request as a client saw it."""

    started: float  # perf_counter at send
    seconds: float  # send → answer read
    late: float  # how late it was sent after its scheduled time (open loop only)
    ok: bool


class Client:
    """A browser at its own terminal: one keep-alive connection, its own cookies."""

    def __init__(self, port: int, operator: Operator, secret_key: str) -> None:
        self.port = port
        self.operator = operator
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        terminal = URLSafeSerializer(secret_key, salt="mes-terminal").dumps(operator.terminal_id)
        self.cookies: dict[str, str] = {"mes_terminal": terminal}
        self.csrf = ""
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.signed = 0

    def _request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        except (http.client.HTTPException, OSError):  # the server closed the keep-alive
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        text = answer.read().decode("utf-8", "replace")
        for header in answer.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return answer.status, answer.headers.get("Location", ""), text

    def login(self) -> None:
        """GET /login for the form's token, POST it, then take a token bound to the new session."""
        status, _, page = self._request("GET", "/login")
        token = _TOKEN.search(page)
        assert status == 200 and token, (status, page[:500])
        form = {
            "csrf_token": html.unescape(token.group(1)),
            "username": self.operator.username,
            "password": self.operator.password,
            "next": "",
        }
        status, _, page = self._request("POST", "/login", form)
        assert status in (302, 303), (status, _alerts(page))
        status, _, page = self._request("GET", "/login")
        token = _TOKEN.search(page)
        assert status == 200 and token, (status, page[:500])
        self.csrf = html.unescape(token.group(1))

    def sign_next(self, late: float = 0.0) -> bool:
        """Tap "Sign performed" on the next phase of this operator's work; False when none left."""
        if not self.operator.work:
            return False
        batch_id, phase_id = self.operator.work.pop(0)
        form = {
            "csrf_token": self.csrf,
            "value:volume": f"{100 + (self.signed % 10) / 10:.1f}",
            "esign_username": self.operator.username,
            "esign_password": self.operator.password,
        }
        path = f"/batches/{batch_id}/phases/{phase_id}/sign/perform"
        started = time.perf_counter()
        status, where, page = self._request("POST", path, form)
        seconds = time.perf_counter() - started
        ok = status == 303
        if not ok:
            message = "; ".join(_alerts(page)) or (f"to {where}" if where else page[:200])
            self.errors.append(f"{self.operator.username} {phase_id}: HTTP {status}: {message}")
        self.signed += 1
        self.samples.append(Sample(started, seconds, late, ok))
        return True

    def read_page(self) -> None:
        """Open the authenticated ``READ_PAGE`` (must answer 200, not a redirect to log in)."""
        started = time.perf_counter()
        status, where, _page = self._request("GET", READ_PAGE)
        seconds = time.perf_counter() - started
        if status != 200:
            self.errors.append(f"{self.operator.username} GET {READ_PAGE}: HTTP {status} {where}")
        self.samples.append(Sample(started, seconds, 0.0, status == 200))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _alerts(page: str) -> list[str]:
    return [" ".join(html.unescape(_TAGS.sub(" ", m)).split()) for m in _ALERT.findall(page)]


def _run_clients(clients: list[Client], body: Callable[[int, Client], None]) -> None:
    threads = [
        threading.Thread(target=body, args=(i, c), name=f"client-{i}")
        for i, c in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def serial_run(clients: list[Client], each: int) -> list[Sample]:
    """One request at a time (each client in turn): the service time without any queue."""
    samples = []
    for client in clients:
        client.samples = []
        for _ in range(each):
            client.sign_next()
        samples += client.samples
    return samples


def latency_run(clients: list[Client], seconds: float) -> list[Sample]:
    """Open loop: client i signs at t0 + i·period/N + k·period, late if its previous was slow."""
    t0 = time.perf_counter() + 0.5
    count = max(1, int(seconds / PERIOD_SECONDS))
    for client in clients:
        client.samples = []

    def body(i: int, client: Client) -> None:
        offset = i * PERIOD_SECONDS / len(clients)
        for k in range(count):
            due = t0 + offset + k * PERIOD_SECONDS
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if not client.sign_next(late=max(0.0, time.perf_counter() - due)):
                return

    _run_clients(clients, body)
    return [s for c in clients for s in c.samples]


def capacity_run(clients: list[Client], seconds: float) -> tuple[list[Sample], float]:
    """Closed loop: every client signs back to back until the deadline; (samples, start)."""
    for client in clients:
        client.samples = []
    start = time.perf_counter()
    deadline = start + seconds

    def body(_i: int, client: Client) -> None:
        while time.perf_counter() < deadline:
            if not client.sign_next():
                return

    _run_clients(clients, body)
    return [s for c in clients for s in c.samples], start


def read_runs(clients: list[Client], seconds: float) -> dict[str, float]:
    """Authenticated page reads: one at a time (service time), then back to back (reads/s)."""
    for client in clients:
        client.samples = []
        for _ in range(READ_SERIAL_EACH):
            client.read_page()
    serial = [s.seconds * 1000 for c in clients for s in c.samples if s.ok]
    for client in clients:
        client.samples = []
    deadline = time.perf_counter() + seconds

    def body(_i: int, client: Client) -> None:
        while time.perf_counter() < deadline:
            client.read_page()

    _run_clients(clients, body)
    loaded = [s for c in clients for s in c.samples if s.ok]
    return {
        "read_serial_median_ms": statistics.median(serial) if serial else float("nan"),
        "read_serial_p95_ms": _p95(serial),
        "read_capacity_per_s": len(loaded) / seconds,
        "read_capacity_median_ms": statistics.median(s.seconds * 1000 for s in loaded)
        if loaded
        else float("nan"),
    }


# --- figures ---------------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(len(values) * 0.95) - 1)] if values else float("nan")


def argon2_verify_ms(rounds: int = 20) -> float:
    """Median time of one argon2id password check on a real hash, in this process."""
    stored = hash_password(PASSWORD.format(0))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        assert password_matches(stored, PASSWORD.format(0))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far; NaN where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy(since: tuple[int, int] | None = None) -> tuple[int, int] | float:
    """The machine's CPU counters (busy, total) now, or the busy share of all cores since."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return float("nan") if since else (0, 0)
    idle = ticks[3] + ticks[4]  # idle + iowait
    now = (sum(ticks) - idle, sum(ticks))
    if since is None:
        return now
    return (now[0] - since[0]) / max(1, now[1] - since[1])


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _databases(tmp: Path) -> list[tuple[str, str | None, Callable[[], None]]]:
    name = f"mes_bench_batches_{os.getpid()}"
    base = PG_ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return [("sqlite", None, lambda: None), ("postgresql", f"{base}/{name}", drop)]


def phases_per_batch(size: Size, argon2_ms: float) -> int:
    """Phases to start ahead in each batch: the latency run's, and the capacity run's up to
    80 % of the bound (if the clients run out before the end, the target is met anyway)."""
    bound = (os.cpu_count() or 1) / (argon2_ms / 1000)
    latency_count = CLIENTS * max(1, int(size.latency_seconds / PERIOD_SECONDS))
    needed = latency_count + math.ceil(0.8 * bound * size.capacity_seconds)
    needed += (SERIAL_EACH + 2) * CLIENTS  # warm-up, one at a time, spare
    return min(PHASES, math.ceil(needed / size.batches))


def prepare(
    kind: str, url: str | None, folder: Path, size: Size, per_batch: int
) -> tuple[str, list[Operator], dict[str, float]]:
    """Build one database's spoke (run in its own process, both databases at once)."""
    operators, setup = build_spoke(folder / f"instance-{kind}", url, size, per_batch)
    return kind, operators, setup


def bench_database(
    kind: str,
    folder: Path,
    size: Size,
    operators: list[Operator],
    setup: dict[str, float],
    profile_to: Path | None = None,
    spy_to: Path | None = None,
    spy_mode: str | None = None,
    reads_only: bool = False,
) -> dict[str, object]:
    """Serve the prepared spoke and measure it; return its figures."""
    argon2_ms = argon2_verify_ms()
    bound = (os.cpu_count() or 1) / (argon2_ms / 1000)
    instance = folder / f"instance-{kind}"
    secret = (instance / "secret_key").read_text(encoding="ascii").strip()
    process, port = serve(instance, folder / f"serve-{kind}.log", profile_to)
    clients = [Client(port, o, secret) for o in operators]
    try:
        for client in clients:
            client.login()
        for client in clients:
            client.read_page()  # warm-up (first request of each session, caches), not counted
        reads = read_runs(clients, size.read_seconds)
        if reads_only:
            return {
                **reads,
                "failures": sum(len(c.errors) for c in clients),
                "first_errors": [e for c in clients for e in c.errors][:5],
                "loadavg_after": _loadavg(),
            }
        serial_run(clients, 1)  # warm-up (first request of each session, caches), not counted
        spy = _start_py_spy(process.pid, spy_to, spy_mode) if spy_to is not None else None
        load_before = _loadavg()
        cpu_before = _cpu_seconds(process.pid)
        serial = serial_run(clients, SERIAL_EACH)
        latency = latency_run(clients, size.latency_seconds)
        busy_before = _machine_busy()
        capacity, capacity_start = capacity_run(clients, size.capacity_seconds)
        busy = _machine_busy(busy_before)
        load_after = _loadavg()
        cpu_used = _cpu_seconds(process.pid) - cpu_before
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
    finally:
        for client in clients:
            client.close()
        stop(process)
    errors = [e for c in clients for e in c.errors]
    ok_serial = [s.seconds * 1000 for s in serial if s.ok]
    ran_out = sum(1 for o in operators if not o.work)
    ok_latency = [s.seconds * 1000 for s in latency if s.ok]
    ok_capacity = [s for s in capacity if s.ok]
    late = [s.late * 1000 for s in latency if s.late > 0.005]
    # Signatures completed in the window (closed loop: the requests still in flight at its end
    # make up for the ramp-up at its start); all of them if the clients ran out of work first.
    deadline = capacity_start + size.capacity_seconds
    finished = [s for s in ok_capacity if s.started + s.seconds <= deadline]
    if ran_out:
        window = max(s.started + s.seconds for s in ok_capacity) - capacity_start
        finished = ok_capacity
    else:
        window = size.capacity_seconds
    per_s = len(finished) / window
    p95 = _p95(ok_latency)
    latency_target = 1.5 * argon2_ms + 30
    return {
        "batches": size.batches,
        "phases_started_ahead": setup.pop("phases_started"),
        "setup_s": {k: round(v, 1) for k, v in setup.items()},
        "argon2_verify_ms": argon2_ms,
        "serial_requests": len(serial),
        "serial_median_ms": statistics.median(ok_serial) if ok_serial else float("nan"),
        "serial_p95_ms": _p95(ok_serial),
        "latency_requests": len(latency),
        "latency_median_ms": statistics.median(ok_latency) if ok_latency else float("nan"),
        "latency_p95_ms": p95,
        "latency_max_ms": max(ok_latency, default=float("nan")),
        "latency_from_schedule_p95_ms": _p95([(s.late + s.seconds) * 1000 for s in latency]),
        "latency_late_starts": len(late),
        "latency_max_late_ms": max(late, default=0.0),
        "latency_target_ms": latency_target,
        "latency_target_met": p95 <= latency_target,
        "capacity_seconds": window,
        "capacity_requests": len(capacity),
        "capacity_per_s": per_s,
        "capacity_median_ms": statistics.median(s.seconds * 1000 for s in ok_capacity)
        if ok_capacity
        else float("nan"),
        "capacity_p95_ms": _p95([s.seconds * 1000 for s in ok_capacity]),
        "bound_per_s": bound,
        "capacity_ratio": per_s / bound,
        "capacity_target_met": per_s / bound >= 0.7,
        "clients_out_of_work": ran_out,
        "failures": len(errors),
        "first_errors": errors[:5],
        "sign_requests": len(serial) + len(latency) + len(capacity),
        "capacity_machine_cpu_busy": busy,
        "server_cpu_ms_per_signature": cpu_used
        * 1000
        / max(1, len(serial) + len(latency) + len(capacity)),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        **reads,
    }


ROWS = (
    ("argon2_verify_ms", "argon2 verify alone ms", "{:.1f}"),
    ("serial_median_ms", "one at a time: median ms", "{:.1f}"),
    ("latency_requests", "latency: signatures", "{:d}"),
    ("latency_median_ms", "latency: median ms", "{:.1f}"),
    ("latency_p95_ms", "latency: p95 ms", "{:.1f}"),
    ("latency_max_ms", "latency: max ms", "{:.1f}"),
    ("latency_target_ms", "latency: target p95 ≤ ms", "{:.1f}"),
    ("latency_late_starts", "latency: sent late (prev slow)", "{:d}"),
    ("latency_from_schedule_p95_ms", "latency: p95 from slot ms", "{:.1f}"),
    ("capacity_requests", "capacity: signatures", "{:d}"),
    ("capacity_per_s", "capacity: signatures/s", "{:.1f}"),
    ("capacity_median_ms", "capacity: median ms", "{:.1f}"),
    ("server_cpu_ms_per_signature", "server process CPU ms/signature", "{:.1f}"),
    ("capacity_machine_cpu_busy", "capacity: all cores busy", "{:.0%}"),
    ("bound_per_s", "bound: cores / argon2 /s", "{:.1f}"),
    ("capacity_ratio", "capacity / bound", "{:.0%}"),
    ("failures", "failures (not 303)", "{:d}"),
)
READ_ROWS = (
    ("read_serial_median_ms", f"GET {READ_PAGE} one at a time: median ms", "{:.2f}"),
    ("read_serial_p95_ms", f"GET {READ_PAGE} one at a time: p95 ms", "{:.2f}"),
    ("read_capacity_per_s", f"GET {READ_PAGE} back to back: /s", "{:.0f}"),
    ("read_capacity_median_ms", f"GET {READ_PAGE} back to back: median ms", "{:.1f}"),
)


def print_table(dbs: dict[str, dict[str, object]], reads_only: bool = False) -> None:
    """The figures, one column per database, then the targets."""
    kinds = list(dbs)
    print(f"\n{'figure':<40}" + "".join(f"{k:>14}" for k in kinds))
    for key, label, form in READ_ROWS + (() if reads_only else ROWS):
        print(f"{label:<40}" + "".join(f"{form.format(dbs[k][key]):>14}" for k in kinds))
    if reads_only:
        for kind, figures in dbs.items():
            print(f"{kind}: load average after {figures['loadavg_after']}")
            for error in figures["first_errors"]:  # type: ignore[union-attr]
                print(f"  refused: {error}")
        return
    for kind, figures in dbs.items():
        verdict = {True: "met", False: "MISSED"}
        print(
            f"{kind}: latency target (p95 {figures['latency_p95_ms']:.0f} ms ≤ "
            f"{figures['latency_target_ms']:.0f} ms) {verdict[figures['latency_target_met']]}; "
            f"capacity target ({figures['capacity_ratio']:.0%} of the bound ≥ 70 %) "
            f"{verdict[figures['capacity_target_met']]}; load average before/after "
            f"{figures['loadavg_before']} / {figures['loadavg_after']}"
        )
        for error in figures["first_errors"]:  # type: ignore[union-attr]
            print(f"  refused: {error}")
        if figures["clients_out_of_work"]:
            print(f"  {figures['clients_out_of_work']} clients ran out of pre-started phases")


def main(argv: list[str] | None = None) -> None:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and seconds")
    parser.add_argument(
        "--profile", action="store_true", help="profile the server per request (cProfile)"
    )
    parser.add_argument(
        "--py-spy",
        choices=("wall", "gil"),
        help="sample the server with py-spy (if installed): wall time or GIL-holding time",
    )
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one database only")
    parser.add_argument(
        "--reads-only", action="store_true", help="only the authenticated page reads"
    )
    parser.add_argument("--serve-profiled", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_profiled:
        serve_profiled(*args.serve_profiled)
        return
    size = QUICK if args.quick else FULL
    results: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "clients": CLIENTS,
        "server_threads": SERVER_THREADS,
        "latency_seconds": size.latency_seconds,
        "capacity_seconds": size.capacity_seconds,
        "loadavg_start": _loadavg(),
        "databases": {},
    }
    dbs: dict[str, dict[str, object]] = results["databases"]  # type: ignore[assignment]
    argon2_ms = argon2_verify_ms()
    per_batch = phases_per_batch(size, argon2_ms)
    with tempfile.TemporaryDirectory(prefix="mes-bench-batches-") as tmp:
        folder = Path(tmp)
        created = _databases(folder)
        databases = [d for d in created if args.only in (None, d[0])]
        try:
            start = time.perf_counter()
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=len(databases), mp_context=spawn) as pool:
                futures = [
                    pool.submit(prepare, kind, url, folder, size, per_batch)
                    for kind, url, _cleanup in databases
                ]
                prepared = [future.result() for future in futures]
            results["setup_wall_s"] = round(time.perf_counter() - start, 1)
            print(
                f"set up {', '.join(k for k, _u, _c in databases)} in parallel: "
                f"{size.batches} batches each, {per_batch} phases started in each, "
                f"{results['setup_wall_s']} s",
                flush=True,
            )
            for kind, operators, setup in prepared:
                profile = folder / f"profile-{kind}.pstats" if args.profile else None
                spy = folder / f"py-spy-{kind}.txt" if args.py_spy else None
                dbs[kind] = bench_database(
                    kind, folder, size, operators, setup, profile, spy, args.py_spy, args.reads_only
                )
                if profile is not None:
                    print_profile(kind, profile, dbs[kind])
                if spy is not None:
                    print_py_spy(kind, spy, dbs[kind], args.py_spy)
        finally:
            for _kind, _url, cleanup in created:
                cleanup()
    results["loadavg_end"] = _loadavg()
    print_table(dbs, args.reads_only)
    if not (args.profile or args.py_spy or args.reads_only) and args.only is None:
        out = Path(__file__).resolve().parent / "results"
        out.mkdir(exist_ok=True)
        (out / "batches.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


# --- profiling (investigation) -----------------------------------------------------------------


def serve_profiled(instance: str, port: str, out: str) -> None:
    """Serve like ``mes serve`` (waitress, 8 threads), each request profiled in its thread."""
    import cProfile
    import pstats
    import signal

    import waitress

    from mes.app import create_app
    from mes.settings import load_settings

    app = create_app(load_settings(Path(instance), env={}))
    inner = app.wsgi_app
    lock = threading.Lock()
    profiles: list[cProfile.Profile] = []
    signs = [0]

    def profiled(environ, start_response):  # type: ignore[no-untyped-def]
        if "/sign/perform" not in environ.get("PATH_INFO", ""):
            return inner(environ, start_response)
        profile = cProfile.Profile()
        profile.enable()
        try:
            return list(inner(environ, start_response))
        finally:
            profile.disable()
            with lock:
                profiles.append(profile)
                signs[0] += 1

    app.wsgi_app = profiled  # type: ignore[method-assign]

    def dump(*_args: object) -> None:
        with lock:
            stats = pstats.Stats(profiles[0]) if profiles else None
            for profile in profiles[1:]:
                stats.add(profile)  # type: ignore[union-attr]
            if stats is not None:
                stats.dump_stats(out)
            Path(out + ".count").write_text(str(signs[0]))
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    waitress.serve(app, host="127.0.0.1", port=int(port), threads=SERVER_THREADS, ident="mes")


# (label, file name, function): inclusive time of each, per signature request
PROFILE_PARTS = (
    ("whole request (Flask wsgi_app)", "app.py", "wsgi_app"),
    ("  gate: terminal cookie -> terminal row", "terminal_binding.py", "resolve"),
    ("  gate: Flask-Login user load", "session_user.py", "load"),
    ("  services.record_phase (the value)", "batches.py", "record_phase"),
    ("  services.sign_phase (the signature)", "batches.py", "sign_phase"),
    ("    load: lock + ledger + replay (_load)", "batches.py", "_load"),
    ("      ledger rows (store.ledger)", "batches.py", "ledger"),
    ("      Batch.replay", "aggregate.py", "replay"),
    ("        Batch._refresh (phase readiness)", "ordering.py", "_refresh"),
    ("        _fire (transitions machine)", "machines.py", "_fire"),
    ("    authenticate_signer", "esign.py", "authenticate_signer"),
    ("      argon2 verify (password_matches)", "passwords.py", "password_matches"),
    ("    save: projection + rows (_save)", "batches.py", "_save"),
    ("      Batch.projection", "projection.py", "projection"),
    ("    commit (flush + COMMIT)", "uow.py", "commit"),
    ("  SQLAlchemy Session.execute (all)", "session.py", "execute"),
    ("  Jinja render_template", "templating.py", "render_template"),
    ("  Flask session cookie save", "sessions.py", "save_session"),
)


def print_profile(kind: str, path: Path, figures: dict[str, object]) -> None:
    """Where the server spent its time per signature request (inclusive, per request)."""
    import pstats

    count = int(Path(str(path) + ".count").read_text() or 0)
    if not count:
        print(f"{kind}: no profile")
        return
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    print(f"\n{kind}: cProfile of {count} signature requests (ms per request, inclusive)")
    print_parts(stats, count, PROFILE_PARTS, figures, width=44, top=15)


SPY_RATE = 100


def _start_py_spy(pid: int, out: Path, mode: str | None) -> subprocess.Popen:
    """Sample the server until SIGINT (raw collapsed stacks): every thread, idle ones too
    (``wall``), or only the thread holding the GIL (``gil``: the Python work, serialised)."""
    command = ["py-spy", "record", "--pid", str(pid), "--rate", str(SPY_RATE)]
    command.append("--gil" if mode == "gil" else "--idle")
    command += ["--nolineno", "--format", "raw", "--output", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    time.sleep(1)  # let it attach
    return process


# (label, frame as py-spy names it): wall time a request thread spent in it (idle included)
SPY_PARTS = (
    ("view sign_phase (the whole request's work)", "sign_phase (mes/web/operator/views.py)"),
    ("  _record -> services.record_phase", "record_phase (mes/services/batches.py)"),
    ("  services.sign_phase", "sign_phase (mes/services/batches.py)"),
    ("    _load (lock row, read ledger, replay)", "_load (mes/services/batches.py)"),
    ("      lock_batch (SELECT ... FOR UPDATE)", "lock_batch (mes/store/batches.py)"),
    ("      store.ledger (read entries)", "ledger (mes/store/batches.py)"),
    ("      Batch.replay", "replay (mes/core/batch/aggregate.py)"),
    ("        Batch._refresh", "_refresh (mes/core/batch/ordering.py)"),
    ("        _fire (transitions LockedMachine)", "_fire (mes/core/batch/machines.py)"),
    ("    _operator (authority, training)", "_operator (mes/services/batches.py)"),
    ("    authenticate_signer", "authenticate_signer (mes/services/esign.py)"),
    ("      argon2 (password_matches)", "password_matches (mes/core/passwords.py)"),
    ("    _save (projection, rows)", "_save (mes/services/batches.py)"),
    ("    commit", "commit (mes/store/uow.py)"),
    ("  SQLAlchemy Session.execute", "execute (sqlalchemy/orm/session.py)"),
    ("  Jinja render_template", "render_template (flask/templating.py)"),
)
GATE_PARTS = (
    ("gate: terminal cookie -> terminal row", "resolve (mes/web/terminal_binding.py)"),
    ("gate: Flask-Login user load", "load (mes/web/session_user.py)"),
    ("Flask full_dispatch_request", "full_dispatch_request (flask/app.py)"),
)


def _has(frames: list[str], target: str) -> bool:
    """Whether a stack holds the function ``target`` ("name (file)"; methods: "Class.name")."""
    return any(f == target or f.endswith("." + target) for f in frames)


def print_py_spy(kind: str, path: Path, figures: dict[str, object], mode: str | None) -> None:
    """Wall time per signature request by part, from py-spy's samples of the server threads."""
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    requests = int(figures["sign_requests"])  # type: ignore[arg-type]
    per_request = 1000 / SPY_RATE / max(1, requests)
    signing = [(f, n) for f, n in stacks if _has(f, SPY_PARTS[0][1])]
    what = "GIL-holding ms" if mode == "gil" else "wall ms (waits included)"
    print(f"\n{kind}: py-spy, {requests} signature requests, {what} per request")
    parts = {}
    for label, frame in SPY_PARTS + GATE_PARTS:
        pool = signing if (label, frame) in SPY_PARTS else stacks
        ms = sum(n for f, n in pool if _has(f, frame)) * per_request
        parts[label.strip()] = round(ms, 1)
        print(f"{label:<48}{ms:>9.1f} ms")
    leaves: dict[str, int] = {}
    for f, n in signing:
        leaves[f[-1]] = leaves.get(f[-1], 0) + n
    print("where the signing threads were (innermost frame):")
    for leaf, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:12]:
        print(f"{n * per_request:9.1f} ms  {leaf}")
    figures[f"py_spy_{mode}_ms_per_request"] = parts


if __name__ == "__main__":
    main()
