"""``mes demo``: its hub and spoke are enrolled with each other and sync in the background.

Issue 5 is done when a batch finished on the demo's spoke appears at its hub without any manual
step: the real ``mes demo`` runs as a subprocess (it serves the spoke and starts the hub), the
test runs a whole batch at the spoke through the services — as the spoke's pages would — and
waits for the hub's database to hold the finished batch, complete and verified. Nobody runs
``mes sync``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sync_network import ledger_rows, mes_env, start_batch, stop, wait_for

from mes.cli.serve import free_port
from mes.services.ingest import verify_received
from mes.services.runtime import open_runtime
from mes.settings import load_settings
from mes.store.models import Batch as BatchRow
from mes.store.models import SyncOutbox

pytestmark = pytest.mark.e2e


def test_a_batch_finished_at_the_demo_spoke_appears_at_the_hub_with_no_manual_step(
    tmp_path: Path,
):
    folder, log = tmp_path / "demo", tmp_path / "demo.log"
    port = free_port("127.0.0.1", 0)
    with log.open("wb") as output:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mes.cli",
                "demo",
                "--dir",
                str(folder),
                "--port",
                str(port),
                "--history",
                "0",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=mes_env(),  # the demo's own settings: a sync round every 2 s
            start_new_session=True,  # the demo and the hub it starts: one process group
        )
    try:

        def serving() -> str:
            assert demo.poll() is None, log.read_text()
            text = log.read_text()
            return text if "Serving spoke SPK1 on" in text else ""

        guide = wait_for("the demo to serve its spoke", serving)
        assert "The spoke enrolled with hub HUB and syncs every 2 s in the background" in guide
        hub_url = re.search(r"^Hub .*?(http://127\.0\.0\.1:\d+)/", guide, re.MULTILINE)
        assert hub_url is not None, guide
        assert httpx.get(f"{hub_url[1]}/health", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200

        spoke = open_runtime(load_settings(folder / "spoke", env={}))
        hub = open_runtime(load_settings(folder / "hub", env={}))
        try:
            run = start_batch(spoke)
            run.run_until()
            run.finish()
            made = ledger_rows(spoke, batch=run.batch_id)
            assert len(made) > 100

            def arrived() -> bool:
                with hub.uow(read_only=True) as uow:
                    row = uow.session.get(BatchRow, run.batch_id)
                    return row is not None and (row.status, row.last_seq) == ("complete", len(made))

            wait_for("the finished batch at the hub", arrived, seconds=30)
            assert sorted(ledger_rows(hub, batch=run.batch_id)) == sorted(made)
            with hub.uow(read_only=True) as uow:
                assert verify_received(uow, run.batch_id) == len(made)
                row = uow.session.get(BatchRow, run.batch_id)
                assert row is not None and row.site == "SPK1"

            def synced() -> bool:
                with spoke.uow(read_only=True) as uow:
                    mark = uow.session.execute(
                        select(SyncOutbox).where(SyncOutbox.batch_id == run.batch_id)
                    ).scalar_one()
                    return (mark.state, mark.acked_seq) == ("synced", len(made))

            wait_for("the spoke to show the batch synced", synced, seconds=30)
        finally:
            spoke.close()
            hub.close()
        assert demo.poll() is None, log.read_text()
    finally:
        stop(demo)
