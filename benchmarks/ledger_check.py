"""Ledger check benchmark: the values of a report checked against their ledger entries.

Before the hub signs a comparability report (and before QA freezes a baseline) each critical
value of the period is joined to the ``batch_entries`` row it stands on and compared (one query,
:func:`mes.services.read_models.checked_against_ledger`). A fresh migrated database (SQLite, and
PostgreSQL when reachable) holds ``--batches`` received batches with three critical values each
and their ledger entries (as :mod:`benchmarks.comparability_report` fills it); the check of the
whole recipe runs ``--repeat`` times. Figures only, never pass/fail.
Run: ``python -m benchmarks.ledger_check [--batches 5000]``; JSON to
``benchmarks/results/ledger_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.comparability_report import (
    CODE,
    FROM,
    PARAMETERS,
    PG_ADMIN,
    RESULTS,
    _drop,
    _pg_database,
    fill,
)
from mes.core.keys import SiteKey
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.services.read_models import checked_against_ledger
from mes.services.runtime import Runtime
from mes.settings import Settings
from mes.store.engine import make_engine, session_factory
from mes.store.migrate import upgrade


def run(url: str, folder: Path, batches: int, repeat: int) -> dict[str, Any]:
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
    fill(runtime, batches, 5)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with runtime.uow() as uow:
            check = checked_against_ledger(uow, CODE, recorded_from=FROM.isoformat())
        times.append(time.perf_counter() - started)
    engine.dispose()
    values = len(check.ties)
    median = statistics.median(times)
    return {
        "batches": batches,
        "values": values,
        "check_s": {"first": times[0], "median": median},
        "per_value_us": median / values * 1e6,
        "estimate_50000_batches_s": median / batches * 50_000,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": len(PARAMETERS),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "sqlite").mkdir()
        url = f"sqlite:///{folder / 'sqlite' / 'mes.sqlite3'}"
        results["sqlite"] = run(url, folder / "sqlite", args.batches, args.repeat)
        name = _pg_database()
        if name is not None:
            (folder / "pg").mkdir()
            base = PG_ADMIN.rsplit("/", 1)[0]
            try:
                results["postgresql"] = run(
                    f"{base}/{name}", folder / "pg", args.batches, args.repeat
                )
            finally:
                _drop(name)
    for db in ("sqlite", "postgresql"):
        if db in results:
            r = results[db]
            print(
                f"{db}: {r['values']} values of {r['batches']} batches checked in "
                f"{r['check_s']['median']:.3f} s median ({r['per_value_us']:.1f} µs a value); "
                f"50,000 batches ≈ {r['estimate_50000_batches_s']:.2f} s"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ledger_check.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
