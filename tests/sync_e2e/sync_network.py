"""A hub and its spokes as real server processes on 127.0.0.1, and the checks after each fault.

The hub runs on its own PostgreSQL database under gunicorn with two worker processes (so every
piece of sync state has to live in the database); the spokes run on SQLite with ``mes serve``.
SPK1 syncs only when a test says so (``mes sync``, or a round in the test process over real
HTTP); SPK2 syncs in the background every second, through a proxy that can misbehave; SPK3 is
enrolled but not served (it is the one that gets revoked).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import recipe_driver
from batch_helpers import Spoke as SpokeSite
from sqlalchemy import func, select
from support import drop_pg_database, pg_admin, pg_url, wait_until_up
from sync_proxy import Proxy

from mes.cli.demo import HUB_USERS, SPOKE_USERS, build_demo
from mes.cli.serve import free_port
from mes.core.lifecycle import Step
from mes.services import recipes
from mes.services.context import Context
from mes.services.esign import Credentials
from mes.services.ingest import verify_received
from mes.services.runtime import Runtime, open_runtime
from mes.settings import load_settings
from mes.store.models import Batch as BatchRow
from mes.store.models import (
    BatchEntry,
    InstalledRecipe,
    SyncEvent,
    SyncOutbox,
    Terminal,
    User,
)
from mes.sync import client

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SHORT_RECIPE = RECIPES / "mrna-vaccine-fill.yaml"  # 163 entries when run to completion
SPOKE_PASSWORDS = {u[0]: u[3] for u in SPOKE_USERS}
HUB_PASSWORDS = {u[0]: u[3] for u in HUB_USERS}
WAIT_SECONDS = 60
# The recipe driver records days of work (holds, a 14-day sterility test) in seconds of real
# time, so its entries are dated ahead of the hub's clock: the hub's review tolerates that here
# (60 days) instead of flagging every batch as dated in the future (tests/integration/
# test_record_times.py checks the rule itself at the default tolerance).
SIMULATED_DAYS_SECONDS = 60 * 86400
SIMULATED_DAYS_CONFIG = f"\n[review]\nclock_tolerance_seconds = {SIMULATED_DAYS_SECONDS}\n"


def mes_env(**extra: str) -> dict[str, str]:
    """The environment for a ``mes`` subprocess: no instance from the caller, no sync overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
    env.update(MES_INSTANCE="", PYTHONUNBUFFERED="1", **extra)
    return env


def mes(instance: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``mes`` command against an instance; the outcome, whatever it is."""
    return subprocess.run(
        [sys.executable, "-m", "mes.cli", "--instance", str(instance), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=mes_env(**env),
        check=False,
    )


def start_mes(instance: Path, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """Start ``mes ARGS`` in its own process group (so it and its children can be killed)."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "mes.cli", "--instance", str(instance), *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=mes_env(**env),
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a started process and everything in its group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wait_for(what: str, check: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (the hub's gunicorn workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


# --- driving batches at a spoke -------------------------------------------------------------


@dataclass
class LiveSite(SpokeSite):
    """The test driver's spoke, bound to a demo spoke's runtime and the real clock."""

    def uow(self) -> Any:
        return self.make_uow()

    def ctx(self, username: str, at: datetime | None = None, **options: Any) -> Context:
        return super().ctx(username, at or datetime.now(UTC), **options)


class DemoRun(recipe_driver.BatchRun):
    """A batch run by the demo spoke's people (with their own passwords)."""

    def credentials(self, username: str) -> Credentials:
        return Credentials(SPOKE_PASSWORDS[username], username)


def live_site(runtime: Runtime) -> LiveSite:
    """The driver's view of a demo spoke: its people and its registered terminal."""
    with runtime.uow(read_only=True) as uow:
        ids = {u.username: u.id for u in uow.session.execute(select(User)).scalars()}
        terminal = uow.session.execute(select(Terminal.id)).scalar_one()
    site = LiveSite(make_uow=runtime.uow, hub_key=None, ids=ids, terminal_id=terminal)  # type: ignore[arg-type]
    site.today = datetime.now(UTC).date()
    return site


def start_batch(runtime: Runtime, phases: int = 0, recipe: Path = SHORT_RECIPE) -> DemoRun:
    """Start a batch at the spoke and execute its first ``phases`` phases."""
    site = live_site(runtime)
    data = recipe_driver.compiled_recipe(recipe)
    lots, instruments = recipe_driver.prepare_site(site, data)
    run = DemoRun(site, data, datetime.now(UTC), {}, lots, instruments)
    run.start()
    for _ in range(phases):
        phase = run.next_phase()
        assert phase is not None, "the recipe has fewer phases than asked for"
        run.execute(phase)
    return run


def run_phases(run: DemoRun, phases: int) -> None:
    """Execute the next ``phases`` phases of a started batch."""
    for _ in range(phases):
        phase = run.next_phase()
        assert phase is not None
        run.execute(phase)


# --- reading both sides ---------------------------------------------------------------------


Row = tuple[str, int, str]


def ledger_rows(runtime: Runtime, site: str | None = None, batch: str | None = None) -> list[Row]:
    """(batch, seq, hash) of every ledger entry (of ``site``'s entries, of one ``batch``)."""
    query = select(BatchEntry.batch_id, BatchEntry.seq, BatchEntry.hash)
    if site is not None:
        query = query.where(BatchEntry.site == site)
    if batch is not None:
        query = query.where(BatchEntry.batch_id == batch)
    with runtime.uow(read_only=True) as uow:
        return [tuple(r) for r in uow.session.execute(query).all()]  # type: ignore[misc]


def entry_count(runtime: Runtime, batch: str) -> int:
    """How many entries of ``batch`` the instance holds."""
    with runtime.uow(read_only=True) as uow:
        return uow.session.execute(
            select(func.count()).select_from(BatchEntry).where(BatchEntry.batch_id == batch)
        ).scalar_one()


def outbox_of(runtime: Runtime, batch: str) -> SyncOutbox:
    """A spoke's outbox row of ``batch`` (detached copy)."""
    with runtime.uow(read_only=True) as uow:
        row = uow.session.get(SyncOutbox, batch)
        assert row is not None, f"batch {batch} is not in the outbox"
        uow.session.expunge(row)
        return row


def events(runtime: Runtime, **where: Any) -> list[SyncEvent]:
    """Sync log lines matching ``where`` (column = value), oldest first."""
    query = select(SyncEvent).order_by(SyncEvent.id)
    for column, value in where.items():
        query = query.where(getattr(SyncEvent, column) == value)
    with runtime.uow(read_only=True) as uow:
        rows = list(uow.session.execute(query).scalars())
        uow.session.expunge_all()
        return rows


def installed_codes(runtime: Runtime) -> dict[str, str]:
    """Recipe code → bundle hash of every recipe version installed at a spoke."""
    with runtime.uow(read_only=True) as uow:
        return dict(
            uow.session.execute(
                select(InstalledRecipe.recipe_code, InstalledRecipe.bundle_hash)
            ).all()
        )


# --- the network ----------------------------------------------------------------------------


@dataclass
class Node:
    """One site: its instance folder, its runtime in the test process, its server if served."""

    code: str
    path: Path
    runtime: Runtime
    log: Path
    process: subprocess.Popen[bytes] | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Network:
    """The hub (PostgreSQL, gunicorn, 2 workers) and three SQLite spokes."""

    folder: Path
    database: str
    hub: Node
    spokes: dict[str, Node]
    proxy: Proxy
    codes: dict[str, str]

    def spoke(self, code: str) -> Node:
        return self.spokes[code]

    # -- processes ------------------------------------------------------------------------

    def serve_spoke(self, code: str, *, wait: bool = True) -> None:
        """(Re)start a spoke's ``mes serve`` on a free port (and wait until it answers)."""
        node = self.spokes[code]
        port = free_port("127.0.0.1", 0)
        node.url = f"http://127.0.0.1:{port}"
        node.process = start_mes(node.path, node.log, "serve", "--port", str(port), **node.env)
        if wait:
            self.wait_up(node)

    @staticmethod
    def wait_up(node: Node) -> None:
        """Wait until a node's server answers /health."""
        assert node.process is not None and node.url is not None
        wait_until_up(node.url, node.process, node.log, seconds=WAIT_SECONDS)

    def kill_spoke(self, code: str) -> None:
        """SIGKILL a spoke's server (no clean-up of any kind: like pulling the plug)."""
        node = self.spokes[code]
        assert node.process is not None and node.process.poll() is None
        os.kill(node.process.pid, signal.SIGKILL)
        assert node.process.wait(timeout=30) == -signal.SIGKILL
        stop(node.process)

    def hub_workers(self, count: int = 2) -> list[int]:
        """The hub's gunicorn worker processes, once ``count`` are up."""
        assert self.hub.process is not None

        def ready() -> list[int]:
            found = sorted(children(self.hub.process.pid))  # type: ignore[union-attr]
            return found if len(found) == count else []

        return wait_for(f"{count} hub workers", ready)

    # -- the checks after every fault -----------------------------------------------------

    def settled(self, code: str) -> Node:
        """The spoke, once all it made is at the hub exactly once (whatever a test before did)."""
        node = self.spokes[code]
        if code == "SPK2":  # it syncs in the background
            self.wait_synced(code)
        else:
            report = client.sync_round(node.runtime)
            assert report.refused == [], report.refused
        self.assert_exactly_once(code)
        return node

    def wait_synced(self, code: str) -> None:
        """Wait until nothing of the spoke is pending and the hub holds as many entries."""
        spoke = self.spokes[code].runtime

        def synced() -> bool:
            with spoke.uow(read_only=True) as uow:
                waiting = uow.session.execute(
                    select(func.count()).select_from(SyncOutbox).where(SyncOutbox.pending)
                ).scalar_one()
                made = uow.session.execute(
                    select(func.count()).select_from(BatchEntry)
                ).scalar_one()
            with self.hub.runtime.uow(read_only=True) as uow:
                held = uow.session.execute(
                    select(func.count()).select_from(BatchEntry).where(BatchEntry.site == code)
                ).scalar_one()
            return waiting == 0 and held == made

        wait_for(f"{code} to be synced", synced)

    def assert_exactly_once(self, code: str) -> int:
        """Every entry made at the spoke is at the hub exactly once, and the hub's chains verify.

        Also: the hub's projection of each batch is where the spoke's is, and the spoke's
        outbox shows every batch synced with the hub's acknowledgement of its own last entry.
        Returns how many entries were compared.
        """
        spoke = self.spokes[code].runtime
        made = ledger_rows(spoke)
        held = ledger_rows(self.hub.runtime, site=code)
        assert len(held) == len(set(held)), "the hub holds an entry twice"
        assert sorted(held) == sorted(made)
        with spoke.uow(read_only=True) as uow:
            spoke_batches = {
                b.id: (b.last_seq, b.last_hash, b.status)
                for b in uow.session.execute(select(BatchRow)).scalars()
            }
            marks = {
                o.batch_id: (o.state, o.pending, o.acked_seq, o.acked_hash, o.last_seq)
                for o in uow.session.execute(select(SyncOutbox)).scalars()
            }
        with self.hub.runtime.uow(read_only=True) as uow:
            hub_batches = {
                b.id: (b.last_seq, b.last_hash, b.status)
                for b in uow.session.execute(select(BatchRow).where(BatchRow.site == code))
                .scalars()
                .all()
            }
            verified = sum(verify_received(uow, batch) for batch in hub_batches)
        assert verified == len(made)
        assert hub_batches == spoke_batches
        assert marks == {
            b: ("synced", False, seq, digest, seq) for b, (seq, digest, _s) in spoke_batches.items()
        }
        return len(made)

    # -- the hub's side ---------------------------------------------------------------------

    def publish_new_recipe(self, sites: list[str], extra: str = "") -> tuple[str, str]:
        """Approve a new recipe at the hub and publish it for ``sites``: (code, bundle hash).

        ``extra``: top-level recipe keys added to the short recipe's text.
        """
        text = SHORT_RECIPE.read_text(encoding="utf-8").rstrip("\n") + "\n" + extra
        code = f"SYNC-{uuid.uuid4().hex[:8].upper()}"
        text = text.replace("recipe_code: MRNA-NEOAG-FILL", f"recipe_code: {code}", 1)
        assert code in text
        hub = self.hub.runtime
        with hub.uow(read_only=True) as uow:
            ids = {u.username: u.id for u in uow.session.execute(select(User)).scalars()}
        now = datetime.now(UTC)
        with hub.uow() as uow:
            version_id = recipes.import_recipe(
                uow, Context(at=now, user_id=ids["aaron"], terminal="sync tests"), text, "new.yaml"
            ).id
        signers = {Step.SUBMIT: "aaron", Step.REVIEW: "sam", Step.APPROVE: "quinn"}
        signers[Step.MAKE_EFFECTIVE] = "quinn"
        for step, who in signers.items():
            with hub.uow() as uow:
                ctx = Context(at=now, user_id=ids[who], terminal="sync tests")
                recipes.sign_step(
                    uow,
                    ctx,
                    version_id,
                    step,
                    Credentials(HUB_PASSWORDS[who], who),
                    first_signing_in_session=True,
                    effective_from=recipes.site_today(uow, ctx),
                )
        with hub.uow() as uow:
            _token, publication = recipes.publish(
                uow, Context(at=now, user_id=ids["quinn"], terminal="sync tests"), version_id, sites
            )
            return code, publication.bundle_hash


def build_network(folder: Path) -> Network:
    """Build the demo sites on a fresh PostgreSQL database, serve them, enroll the spokes."""
    database = f"mes_sync_{uuid.uuid4().hex[:12]}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        sites = build_demo(
            folder, hub_database_url=pg_url(database), spoke_codes=("SPK1", "SPK2", "SPK3")
        )
        with (sites.hub / "mes.toml").open("a", encoding="utf-8") as config:
            config.write(SIMULATED_DAYS_CONFIG)
        hub_port = free_port("127.0.0.1", 0)
        network = Network(
            folder,
            database,
            Node(
                "HUB", sites.hub, open_runtime(load_settings(sites.hub, env={})), folder / "hub.log"
            ),
            {},
            Proxy(hub_port),
            sites.enrollment_codes,
        )
    except BaseException:
        drop_pg_database(database)
        raise
    try:
        paths = {"SPK1": sites.spoke, "SPK2": folder / "spoke-SPK2", "SPK3": folder / "spoke-SPK3"}
        for code, path in paths.items():
            runtime = open_runtime(load_settings(path, env={}))
            network.spokes[code] = Node(code, path, runtime, folder / f"{code}.log")
        # SPK1 syncs when a test says so; SPK2 syncs every second, 5 entries a chunk.
        network.spokes["SPK1"].env = {"MES_SYNC_INTERVAL_SECONDS": "0"}
        network.spokes["SPK2"].env = {
            "MES_SYNC_INTERVAL_SECONDS": "1",
            "MES_SYNC_CHUNK_ENTRIES": "5",
        }
        hub = network.hub
        hub.url = f"http://127.0.0.1:{hub_port}"
        hub.process = start_mes(
            hub.path,
            hub.log,
            *("serve", "--port", str(hub_port), "--workers", "2"),
            MES_FAULT="ingest-committed",
        )
        for code in ("SPK1", "SPK2"):
            network.serve_spoke(code, wait=False)
        network.wait_up(hub)
        # SPK1 enrolls with the command; SPK2 (through the proxy) and SPK3 with the function the
        # command calls, in this process (the same request to the hub, one interpreter less).
        code_1 = sites.enrollment_codes["SPK1"]
        enrolling = subprocess.Popen(
            [
                *(sys.executable, "-m", "mes.cli", "--instance", str(paths["SPK1"])),
                *("spoke", "enroll", "--hub", hub.url, "--code", code_1),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=mes_env(),
        )
        for code, url in (("SPK2", network.proxy.url), ("SPK3", hub.url)):
            runtime = network.spokes[code].runtime
            assert client.enroll(runtime, url, sites.enrollment_codes[code]).hub_code == "HUB"
        output, _ = enrolling.communicate(timeout=120)
        assert enrolling.returncode == 0 and "Enrolled with hub HUB" in output, output
        for code in ("SPK1", "SPK2"):
            network.wait_up(network.spokes[code])
        return network
    except BaseException:
        teardown(network)
        raise


def teardown(network: Network) -> None:
    """Kill every process, close every runtime, drop the hub's database."""
    network.proxy.close()
    for node in [network.hub, *network.spokes.values()]:
        if node.process is not None:
            stop(node.process)
        node.runtime.close()
    drop_pg_database(network.database)
