"""The background loop does not hammer the hub with what it refuses (each refusal is a line of the
sync log on both sides): a refused batch is offered again after a while, and a refused spoke
waits longer and longer. 'mes sync' by hand offers everything at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mes.services.outbox import PendingBatch
from mes.sync.client import RETRY_REFUSED_SECONDS, due, next_wait

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def batch(name: str, refused_seconds_ago: float | None) -> PendingBatch:
    refused_at = (
        None if refused_seconds_ago is None else NOW - timedelta(seconds=refused_seconds_ago)
    )
    return PendingBatch(name, 0, 5, False, refused_at)


def test_a_batch_refused_lately_waits_and_others_go_now():
    waiting = [batch("new", None), batch("refused-now", 10), batch("refused-long-ago", 301)]
    assert [b.batch_id for b in due(waiting, NOW, RETRY_REFUSED_SECONDS)] == [
        "new",
        "refused-long-ago",
    ]


def test_by_hand_every_pending_batch_is_offered():
    waiting = [batch("new", None), batch("refused-now", 10)]
    assert due(waiting, NOW, None) == waiting


def test_a_refused_spoke_waits_twice_as_long_each_round_up_to_five_minutes():
    assert next_wait(2, 0) == 2
    assert [next_wait(2, n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 20)] == [
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        300,
        300,
    ]
    assert next_wait(0.5, 1) == 2  # never sooner than a second, doubled
