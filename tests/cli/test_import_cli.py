"""``mes import`` at the hub, run as a real subprocess, on SQLite and on PostgreSQL.

A transfer file carries the same signed chunks a network push does, and the hub ingests them with
the same rules: entries dated ahead of the hub's clock are stored as the spoke sealed them,
flagged in one line, and the command exits 1. The hub instance is made with ``mes init``; its
spoke SPK1 (on a second database of the same kind) is set up through the services, as in the
sync service tests (tests/integration/sync_sites.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sync_sites import SPOKE, Network, twin_database
from test_batch_release import begin, finish

from mes.core.sync import transfer_file
from mes.services import outbox, review
from mes.services.runtime import open_runtime
from mes.settings import load_settings
from mes.store.engine import make_engine


def test_importing_a_file_dated_two_weeks_ahead_stores_flags_in_one_line_and_exits_1(
    instance, request, tmp_path
):
    assert instance.init().code == 0  # hub HUB
    hub = open_runtime(load_settings(instance.path))
    ahead = datetime.now(UTC) + timedelta(days=14)  # the spoke's clock, two weeks ahead
    try:
        with twin_database(request, hub.settings.database_url, tmp_path) as spoke_url:
            spoke_engine = make_engine(spoke_url)
            try:
                net = Network(hub.engine, spoke_engine, hub.site.key, folder=tmp_path)
                site = net.connected()
                batch_id, number = begin(site, ahead)
                site.do_count(batch_id, at=ahead)
                finish(site, batch_id, ahead)
                with site.uow() as uow:
                    token, _first, last = outbox.chunk_after(uow, ahead, batch_id, 0, 500)
            finally:
                spoke_engine.dispose()
        stick = tmp_path / "from-spk1.mes"
        stick.write_bytes(
            transfer_file(source=SPOKE, target="HUB", created_at=ahead, chunks=[token])
        )
        for held in (0, last):  # the second time: nothing new, the same flag
            result = instance.run("import", str(stick))
            lines = result.out.splitlines()
            assert (result.code, result.err, len(lines)) == (1, "", 2), result
            assert lines[0] == f"{last - held} entries stored ({held} already held) from 1 batch."
            assert re.fullmatch(
                rf"Flagged: Batch {number} from SPK1: Entries 1–{last} are dated after the hub "
                r"received them, up to 14 days: entry \d+ is dated 20\d\d-\d\d-\d\d \d\d:\d\d UTC, "
                r"14 days after the hub received it \(20[^)]+ UTC\); at most 300 s of clock "
                r"difference is allowed\. Stored and flagged: QA cannot release the batch \(its "
                r"review page says why\)\.",
                lines[1],
            ), lines[1]
        with hub.uow(read_only=True) as uow:
            first = review.load_review(uow, batch_id).findings[0]
        assert (first.category.value, first.blocking, first.key) == ("clock", True, "clock-ahead:1")
    finally:
        hub.engine.dispose()
