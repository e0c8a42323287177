"""Foundation benchmarks: the audit chain and e-signatures on SQLite and PostgreSQL.

Figures (not pass/fail): audit entries appended per second with one transaction per entry (as
services do), entries verified per second (hash, link and Ed25519 signature of each), the
argon2id cost of one password check, and the latency of a complete e-signature.
Run: ``python -m benchmarks`` (``--quick`` for a smaller run). Results go to stdout as a table
and to ``benchmarks/results/foundation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from mes.core.audit import SYSTEM, AuditEvent, EntryKind
from mes.core.esign import Meaning
from mes.core.keys import SiteKey
from mes.core.passwords import hash_password, password_matches
from mes.core.site import Site
from mes.services.audit import verify_audit_trail
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability, sign_record
from mes.services.users import add_user
from mes.store.audit import append_audit
from mes.store.engine import make_engine, session_factory
from mes.store.migrate import upgrade
from mes.store.uow import UnitOfWork

PG_ADMIN = os.environ.get("MES_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "bench-mark-password-1"


def _databases(tmp: Path) -> list[tuple[str, str, callable]]:
    sqlite = ("sqlite", f"sqlite:///{tmp / 'bench.sqlite3'}", lambda: None)
    name = f"mes_bench_{os.getpid()}"
    base = PG_ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return [sqlite, ("postgresql", f"{base}/{name}", drop)]


def bench_database(kind: str, url: str, appends: int, history: int) -> dict[str, float]:
    """Append, verify and sign on one database; return the figures."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    site = Site(code="BENCH", name="Bench", role="hub", time_zone="UTC", key=SiteKey.generate())
    at = datetime(2026, 11, 21, tzinfo=UTC)

    def uow() -> UnitOfWork:
        return UnitOfWork(sessions, site)

    # 1. one transaction per entry, as every service call does
    start = time.perf_counter()

    def append(work: UnitOfWork, i: int) -> None:
        event = AuditEvent(
            at=at + timedelta(microseconds=i),
            actor=SYSTEM,
            terminal="bench",
            kind=EntryKind.CHANGE,
            action="configuration changed",
            record_type="configuration",
            record_id="BENCH",
            old={"value": i},
            new={"value": i + 1},
            reason="benchmark",
        )
        append_audit(work.session, site, event)

    for i in range(appends):
        with uow() as work:
            append(work, i)
            work.commit()
    append_seconds = time.perf_counter() - start

    # 2. grow the history in larger transactions, then verify the whole chain
    for first in range(appends, history, 1000):
        with uow() as work:
            for i in range(first, min(first + 1000, history)):
                append(work, i)
            work.commit()
    start = time.perf_counter()
    with uow() as work:
        count = verify_audit_trail(work)
    verify_seconds = time.perf_counter() - start

    # 3. a complete e-signature: re-authentication (argon2id), checks, sealed entry, commit
    ctx = Context.command_line(at, "bench", "bench")
    with uow() as work:
        user_id = add_user(
            work, ctx, username="signer", full_name="Bench Signer", roles=["qa"], password=PASSWORD
        )
    user_ctx = Context(at=at, user_id=user_id, terminal="bench")
    with uow() as work:
        acknowledge_accountability(work, user_ctx, Credentials(PASSWORD, "signer"), True)
    latencies = []
    for i in range(20):
        start = time.perf_counter()
        with uow() as work:
            sign_record(
                work,
                user_ctx,
                record_type="benchmark",
                record_id=str(i),
                record={"n": i},
                meaning=Meaning.REVIEWED,
                credentials=Credentials(PASSWORD),
                first_signing_in_session=False,
            )
            work.commit()
        latencies.append(time.perf_counter() - start)
    engine.dispose()
    return {
        "audit_append_per_s": appends / append_seconds,
        "audit_verify_entries": count,
        "audit_verify_per_s": count / verify_seconds,
        "audit_verify_s": verify_seconds,
        "esign_median_ms": statistics.median(latencies) * 1000,
        "esign_p95_ms": sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000,
    }


def bench_argon2(rounds: int = 10) -> dict[str, float]:
    """The cost of hashing and of checking one password (OWASP argon2id parameters)."""
    start = time.perf_counter()
    stored = [hash_password(PASSWORD) for _ in range(rounds)][-1]
    hash_ms = (time.perf_counter() - start) / rounds * 1000
    start = time.perf_counter()
    for _ in range(rounds):
        password_matches(stored, PASSWORD)
    return {
        "argon2_hash_ms": hash_ms,
        "argon2_verify_ms": (time.perf_counter() - start) / rounds * 1000,
    }


def main() -> None:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run (CI smoke)")
    args = parser.parse_args()
    appends, history = (200, 2000) if args.quick else (2000, 20000)
    results: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "argon2": bench_argon2(),
        "databases": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for kind, url, cleanup in _databases(Path(tmp)):
            try:
                results["databases"][kind] = bench_database(kind, url, appends, history)  # type: ignore[index]
            finally:
                cleanup()
    print(f"{'figure':<34}{'sqlite':>14}{'postgresql':>14}")
    dbs = results["databases"]
    for key, label in (
        ("audit_append_per_s", "audit append (1 txn/entry) /s"),
        ("audit_verify_entries", "audit entries verified"),
        ("audit_verify_per_s", "audit verify entries /s"),
        ("esign_median_ms", "e-signature median ms"),
        ("esign_p95_ms", "e-signature p95 ms"),
    ):
        print(f"{label:<34}{dbs['sqlite'][key]:>14.1f}{dbs['postgresql'][key]:>14.1f}")  # type: ignore[index]
    for key, value in results["argon2"].items():  # type: ignore[union-attr]
        print(f"{key:<34}{value:>14.1f}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "foundation.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
