"""``mes batch``: the board, the batch record and the verification of its ledger, at a spoke.

The batches are made through the services on the instance's own database (a spoke that pins a
hub key, the test recipe installed from a bundle signed with it), then read with the command.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from batch_helpers import DIN, OTHER_DIN, PATIENT, Spoke
from conftest import Instance
from support import NOW, PASSWORD

from mes.core.identity import mod37_2
from mes.core.keys import SiteKey
from mes.services import batches
from mes.services.esign import Credentials
from mes.services.runtime import Runtime, open_runtime
from mes.settings import load_settings
from mes.store.engine import make_engine


@dataclass
class SpokeInstance:
    """A spoke instance made with ``mes init``, and the same spoke as the services see it."""

    instance: Instance
    runtime: Runtime
    site: Spoke


def _init_spoke(instance: Instance, tmp_path: Path, hub_key: SiteKey) -> None:
    key_file = tmp_path / "hub.pub.pem"
    key_file.write_bytes(hub_key.public.pem())
    args = ["init", "--role", "spoke", "--site", "SPK1", "--admin", "ada", "--name", "Ada Admin"]
    args += ["--password-stdin", "--hub-key", str(key_file)]
    if instance.database_url:
        args += ["--database-url", instance.database_url]
    created = instance.run(*args, stdin=PASSWORD + "\n")
    assert created.code == 0, created.err


@pytest.fixture
def spoke(instance: Instance, tmp_path: Path) -> Iterator[SpokeInstance]:
    """A spoke with people, a terminal, the test recipe, a released lot and two instruments."""
    hub_key = SiteKey.generate()
    _init_spoke(instance, tmp_path, hub_key)
    runtime = open_runtime(load_settings(instance.path, env={}))
    try:
        site = Spoke(lambda *_, **__: runtime.uow(), hub_key).set_up()
        yield SpokeInstance(instance, runtime, site)
    finally:
        runtime.close()


def _running_batch(site: Spoke) -> str:
    """A batch with its bag checked and its count performed, one value past its action limit."""
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    result = site.do_count(batch_id, viability="65.0")
    assert len(result.batch.state.deviations) == 1
    return batch_id


def _aborted_batch(site: Spoke) -> str:
    typed = f"{OTHER_DIN} 00 {mod37_2(OTHER_DIN)}"
    batch = site.start(din=typed, patient_id="PAT-0002")
    with site.uow() as uow:
        batches.abort_batch(
            uow,
            site.ctx("sam", NOW + timedelta(minutes=5)),
            batch.state.id,
            "Donor consent withdrawn",
            Credentials(PASSWORD, "sam"),
            first_signing_in_session=True,
        )
    return batch.state.number


def test_the_board_lists_batches_in_progress_with_current_phases_and_open_deviations(spoke):
    empty = spoke.instance.run("batch", "list")
    assert empty.code == 0, empty.err
    assert empty.out == "No batches in progress (--all shows closed ones).\n"
    _running_batch(spoke.site)
    aborted = _aborted_batch(spoke.site)

    board = spoke.instance.run("batch", "list")
    assert board.code == 0, board.err
    header, *rows = board.out.splitlines()
    assert header.split() == [
        "NUMBER", "RECIPE", "STATUS", "IDENTITY", "CURRENT", "PHASES", "TIMERS", "OPEN",
        "DEVIATIONS",
    ]  # fmt: skip
    assert len(rows) == 1
    row = rows[0]
    assert row.startswith("SPK1-2026-0001  BATCH-TEST v1  In progress  ")
    assert f"{DIN[:5]} {DIN[5:7]} {DIN[7:]}" in row and PATIENT in row
    assert "Test A (ready), Test B (ready)" in row
    assert row.rstrip().endswith("  1")
    assert aborted not in board.out

    everything = spoke.instance.run("batch", "list", "--all")
    assert everything.code == 0, everything.err
    closed = next(line for line in everything.out.splitlines() if line.startswith(aborted))
    assert "  Aborted  " in closed


def test_show_prints_phases_values_with_units_and_limits_signatures_and_deviations(spoke):
    batch_id = _running_batch(spoke.site)
    deviation = next(iter(spoke.site.view(batch_id).batch.state.deviations))
    spoke.site.acknowledge(batch_id, deviation, who="sam", at=NOW + timedelta(minutes=10))
    shown = spoke.instance.run("batch", "show", "spk1-2026-0001")
    assert shown.code == 0, shown.err
    out = shown.out
    lines = out.splitlines()
    assert lines[0] == "Batch SPK1-2026-0001 — BATCH-TEST v1, Batch execution test recipe"
    assert lines[1] == "Status: In progress; started 2026-11-21 09:00:00 UTC"
    assert lines[3] == f"Patient identifier: {PATIENT}"
    assert "Open deviations: 0" in lines
    assert any(
        line.startswith("Ledger: ") and line.endswith(" entries, verified") for line in lines
    )
    assert "Receipt › Receive the bag" in lines
    assert "  Check the bag [check_bag] — Verified" in lines
    assert "      Bag intact: yes" in lines
    assert "      Equipment SCN-01 (Barcode Scanner)" in lines
    assert "      Signed: Olivia Tester (olivia) — Performed — 2026-11-21 09:00:00 UTC" in lines
    assert "      Signed: Sam Tester (sam) — Verified — 2026-11-21 09:00:00 UTC" in lines
    assert "  Record the damage [report_damage] — Not applicable" in lines
    assert "  Count cells [count_cells] — Performed" in lines
    assert "      Bag volume: 200 mL — no limits" in lines  # none set: said, not "within"
    assert (
        "      Viability: 65.0 % — Outside action limits (acceptable ≥ 70 %; alert below 85 %; target 95 %)"
        in lines
    )
    assert "      Material Sampling syringe (MAT-SYRINGE): lot LOT-SYR-001, 1 each" in lines
    assert "  Harvest [harvest] — Waiting" in lines
    deviations = lines[lines.index("Deviations") + 1 :]
    assert deviations[0].startswith(
        "  #1 Value outside action limits in Count cells — acknowledged: Viability 65.0 % "
    )
    assert deviations[1:] == [
        "      raised by Olivia Tester (olivia) 2026-11-21 09:00:00 UTC",
        "      comment: Low viability reported to QA — Olivia Tester (olivia)",
        "      Signed: Sam Tester (sam) — Acknowledged — 2026-11-21 09:10:00 UTC",
    ]


def test_show_and_verify_refuse_an_unknown_batch_in_one_line(spoke):
    for command in ("show", "verify"):
        result = spoke.instance.run("batch", command, "SPK1-2026-0099")
        assert result.code == 1
        assert result.out == ""
        assert result.err == (
            "error: There is no batch 'SPK1-2026-0099'. Check the batch number.\n"
        )


def _drop_ledger_trigger_and_run(instance: Instance, statement: str) -> None:
    """What a database administrator could do behind the application's back."""
    engine = make_engine(load_settings(instance.path, env={}).database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER batch_entries_no_update")
        else:
            conn.exec_driver_sql("DROP TRIGGER batch_entries_append_only ON batch_entries")
        conn.execute(sa.text(statement))
    engine.dispose()


def test_verify_names_the_ledger_entry_edited_behind_the_applications_back(spoke):
    batch_id = _running_batch(spoke.site)
    ok = spoke.instance.run("batch", "verify", "SPK1-2026-0001")
    assert ok.code == 0, ok.err
    count = int(ok.out.removeprefix("ok: ").split(" entries;")[0])
    assert f"head {count} signed by SPK1" in ok.out
    with spoke.site.uow() as uow:
        assert count == batches.get_batch(uow, spoke.site.ctx("sam"), batch_id).row.last_seq
    spoke.runtime.close()

    _drop_ledger_trigger_and_run(
        spoke.instance,
        f"UPDATE batch_entries SET actor_name = 'Mallory' WHERE batch_id = '{batch_id}' AND seq = 3",
    )
    result = spoke.instance.run("batch", "verify", "SPK1-2026-0001")
    assert result.code == 1
    assert result.out == ""
    assert result.err == (
        "FAILED: batch SPK1-2026-0001 entry 3: its content does not match its hash: it was edited\n"
    )
    shown = spoke.instance.run("batch", "show", "SPK1-2026-0001")
    assert shown.code == 1
    assert shown.out == ""
    assert shown.err == result.err
