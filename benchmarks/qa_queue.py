"""QA queue benchmark: the hub's queue page with a few hundred received batches.

A demo network (``mes demo``'s :func:`~mes.cli.demo.build_demo`) whose spoke runs one real batch
of an example recipe and clones it (:mod:`benchmarks.sync`'s ``prepare``); the hub enrolls the
spoke and stores every clone through its ingest path, in process (a tenth of them only in part,
so they are still "at the spoke"). Then, with the hub's own app (Flask's test client, QA Quinn
logged in), ``GET /qa/`` and the service alone (:func:`mes.services.review.qa_queue`) are timed
and their SQL statements counted (SQLAlchemy's ``before_cursor_execute``).

The same file runs against any checkout with the same services (``PYTHONPATH=<checkout>``), so
the queue before and after a change is measured alike:

    PYTHONPATH=/path/to/old python benchmarks/qa_queue.py --batches 300
    python -m benchmarks.qa_queue --batches 300 [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.sync import DEFAULT_RECIPE, TESTS, _create_pg, _drop_pg, _runtime, prepare
from mes.services import ingest, outbox, review, spokes
from mes.services.context import Context


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def receive(network: Any, partial_every: int = 10) -> int:
    """Enroll the spoke at the hub and ingest every batch of the spoke there (in process)."""
    hub, spoke = _runtime(network.hub), _runtime(network.spoke)
    # Received after the template's last entry (its timers run days ahead of the wall clock).
    now = datetime.now(UTC) + timedelta(days=30)
    try:
        with hub.uow() as uow:
            spokes.enroll(
                uow,
                datetime.now(UTC),
                spoke.site.code,
                network.code,
                spoke.site.key.public.pem().decode(),
            )
        ids = [network.template.batch_id, *network.clones]
        for n, batch_id in enumerate(ids):
            size = 60 if n % partial_every == 1 else 500
            with spoke.uow() as uow:
                token, _first, _last = outbox.chunk_after(uow, now, batch_id, 0, size)
            with hub.uow() as uow:
                ingest.ingest_chunk(uow, now, spoke.site.code, token)
        return len(ids)
    finally:
        hub.close()
        spoke.close()


def measure(network: Any, rounds: int) -> dict[str, Any]:
    """The queue page and the service: median and p95 time, SQL statements each."""
    sys.path.insert(0, str(TESTS / "web"))
    sys.path.insert(0, str(TESTS))
    import web_helpers  # type: ignore[import-not-found]

    from mes.app import create_app
    from mes.cli.demo import HUB_USERS

    runtime = _runtime(network.hub)
    statements = [0]

    def count(*_args: Any, **_kwargs: Any) -> None:
        statements[0] += 1

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        app = create_app(runtime.settings, runtime)
        client = web_helpers.client_of(app)
        password = {u[0]: u[3] for u in HUB_USERS}["quinn"]
        answer = web_helpers.login(client, "quinn", password)
        assert answer.status_code in (302, 303), answer.status_code
        figures: dict[str, Any] = {}
        for name, call in (
            ("page", lambda: client.get("/qa/")),
            ("page_filtered", lambda: client.get("/qa/?state=at_spoke&age=0")),
        ):
            assert call().status_code == 200  # warm
            times, counted = [], []
            for _ in range(rounds):
                statements[0] = 0
                start = time.perf_counter()
                response = call()
                times.append((time.perf_counter() - start) * 1000)
                counted.append(statements[0])
                assert response.status_code == 200
            figures[name] = {
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(_pct(times, 0.95), 1),
                "sql": max(counted),
            }
        with runtime.uow(read_only=True) as uow:
            quinn = next(
                u.id for u in uow.session.execute(_users()).scalars() if u.username == "quinn"
            )
        ctx = Context(at=datetime.now(UTC) + timedelta(days=31), user_id=quinn, terminal="bench")
        times, counted, queue = [], [], None
        for _ in range(rounds):
            statements[0] = 0
            start = time.perf_counter()
            with runtime.uow(read_only=True) as uow:
                queue = review.qa_queue(uow, ctx)
            times.append((time.perf_counter() - start) * 1000)
            counted.append(statements[0])
        assert queue is not None
        figures["service"] = {
            "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(_pct(times, 0.95), 1),
            "sql": max(counted),
            "rows": len(queue.rows),
            "counts": queue.counts,
        }
        return figures
    finally:
        runtime.close()


def rebuild(network: Any) -> dict[str, Any] | None:
    """Rebuild the read models from the chains, and check them: time and entries per second."""
    try:
        from mes.services.read_models import read_model_differences, rebuild_read_models
    except ImportError:  # a checkout before the read models
        return None
    from sqlalchemy import func, select

    from mes.store.models import BatchEntry

    runtime = _runtime(network.hub)
    ctx = Context.command_line(datetime.now(UTC), "bench", "localhost")
    try:
        with runtime.uow(read_only=True) as uow:
            entries = uow.session.execute(select(func.count()).select_from(BatchEntry)).scalar_one()
        start = time.perf_counter()
        with runtime.uow() as uow:
            rebuilt = rebuild_read_models(uow, ctx)
        rebuild_s = time.perf_counter() - start
        start = time.perf_counter()
        with runtime.uow(read_only=True) as uow:
            differences = read_model_differences(uow, ctx)
        check_s = time.perf_counter() - start
        return {
            "batches": rebuilt.batches,
            "entries": entries,
            "rebuild_s": round(rebuild_s, 2),
            "rebuild_entries_per_s": round(entries / rebuild_s),
            "check_s": round(check_s, 2),
            "differences": len(differences),
        }
    finally:
        runtime.close()


def _users() -> Any:
    from sqlalchemy import select

    from mes.store.models import User

    return select(User)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--recipe", default=DEFAULT_RECIPE)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for kind in ("sqlite", "postgresql"):
        if args.only and kind != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"mes-bench-qa-{kind}-") as tmp:
            database = f"mes_bench_qa_{int(time.time())}" if kind == "postgresql" else None
            url = _create_pg(database) if database else None
            try:
                start = time.perf_counter()
                network = prepare(kind, Path(tmp), url, args.recipe, args.batches)
                received = receive(network)
                setup_s = time.perf_counter() - start
                results[kind] = {
                    "received_batches": received,
                    "setup_s": round(setup_s, 1),
                    **measure(network, args.rounds),
                    "rebuild": rebuild(network),
                }
            finally:
                if database:
                    _drop_pg(database)
        print(kind, json.dumps(results[kind], indent=1), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
