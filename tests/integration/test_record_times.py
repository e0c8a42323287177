"""Records whose times cannot be true, at the hub: stored and flagged, never released.

Batches are made at spoke SPK1 through its real services and sent to the hub as chunks, as in
test_batch_release (whose helpers these tests use). A batch dated two weeks after the hub
received it is stored as the spoke sealed it, its ingest flagged in the sync log, and its review
holds a blocking finding in words; a chain whose times go backwards (a forged record, signed with
the spoke's key) holds one naming the entries; a release dated before any entry it releases is
refused. On SQLite and PostgreSQL (hub and spoke each on their own database).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from support import NOW
from sync_sites import SPOKE, Network, net
from test_batch_release import (
    QA_AT,
    begin,
    decide,
    finish,
    qa,
    refused,
    send,
    settle,
    view,
    written,
)

from mes.core.clock import utc_text
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.review import Category, Decision, ReleasePrecedesRecord, ReleaseRefused
from mes.core.sync import make_chunk
from mes.services import ingest as hub_ingest
from mes.services import outbox
from mes.store import batches as store
from mes.store.models import SyncEvent

__all__ = ["net"]
DAY = timedelta(days=1)
AHEAD = NOW + 14 * DAY  # the spoke's clock, two weeks ahead of the hub's
RECEIVED = NOW + timedelta(hours=6)  # when the hub received the batch, by its own clock


def made(site, at=NOW) -> tuple[str, str]:
    """A complete batch of SPK1 made at ``at`` by the spoke's clock (done 3 h later); (ID, number)."""
    batch_id, number = begin(site, at)
    site.do_count(batch_id, at=at)
    finish(site, batch_id, at)
    return batch_id, number


def ingest(net: Network, token: str, at=RECEIVED) -> hub_ingest.Ack:
    with net.hub() as uow:
        return hub_ingest.ingest_chunk(uow, at, SPOKE, token)


def test_a_batch_dated_two_weeks_ahead_of_the_hub_is_stored_flagged_and_never_released(net):
    site = net.connected()
    batch_id, number = made(site, AHEAD)
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, AHEAD, batch_id, 0, 500)
        # The worst: the first entry of the completion, 3 h after the start.
        worst = next(
            e.seq for e in store.ledger(uow.session, batch_id) if e.body["at"] >= "2026-12-05T12"
        )
    ack = ingest(net, token)
    assert (ack.stored, ack.last_seq) == (last, last)  # stored as the spoke sealed it
    head = (
        f"Batch {number} from SPK1: Entries 1–{last} are dated after the hub received them, up "
        f"to 14 days: entry {worst} is dated 2026-12-05 12:00 UTC, 14 days after the hub "
        "received it (2026-11-21 15:00 UTC); at most 300 s of clock difference is allowed."
    )
    assert ack.flagged == (
        f"{head} Stored and flagged: QA cannot release the batch (its review page says why)."
    )
    with net.hub() as uow:
        logged = uow.session.execute(
            select(SyncEvent.outcome, SyncEvent.reason).where(SyncEvent.batch_id == batch_id)
        ).all()
    assert [tuple(row) for row in logged] == [("accepted", ack.flagged)]

    opened = view(net, batch_id)
    clock = opened.findings[0]
    assert (clock.category, clock.blocking, clock.key) == (Category.CLOCK, True, "clock-ahead:1")
    assert clock.title == f"Entries 1–{last} dated after the hub received them"
    assert clock.detail.startswith(
        f"Entries 1–{last} are dated after the hub received them, up to 14 days: entry {worst} "
        "is dated 2026-12-05 12:00 UTC, 14 days after the hub received it (2026-11-21 15:00 UTC)"
    )
    settle(net, batch_id)  # every other exception reviewed
    # The next day by the hub's clock: the release would come before the record it releases.
    err = refused(net, ReleasePrecedesRecord, lambda: decide(net, batch_id))
    assert err.message.startswith(
        f"Batch {number} cannot be released at 2026-11-22 09:00 UTC: entry {last} of its record "
        "is dated 2026-12-05 12:00 UTC, later than the release"
    )
    assert clock.detail in err.message
    # Once the hub's clock has passed them, the times were still false when they arrived.
    later = qa(net, at=AHEAD + DAY)
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id, ctx=later))
    assert err.message == f"Batch {number} cannot be released: {clock.title}: {clock.detail}"
    decide(net, batch_id, Decision.REJECTED, ctx=later, reason="Spoke clock two weeks out")
    assert view(net, batch_id).state.decision is Decision.REJECTED


def redated(entries: list[SealedEntry], key, times: dict[int, str]) -> list[SealedEntry]:
    """The chain re-sealed with other times for some seqs, as someone with the key could."""
    out: list[SealedEntry] = []
    for entry in entries:
        body = {**entry.body, "prev": out[-1].hash if out else GENESIS}
        body["at"] = times.get(entry.seq, body["at"])
        out.append(seal(body, key))
    return out


def test_entries_dated_before_an_earlier_entry_are_a_blocking_finding_naming_them(net):
    site = net.connected()
    batch_id, _number = made(site)
    with site.uow() as uow:
        record = store.ledger(uow.session, batch_id)
    # Entry 3 dated a day later than it was made: every entry after it goes back in time.
    forged = redated(record, net.spoke_key, {3: utc_text(NOW + DAY)})
    token = make_chunk(forged, site=SPOKE, key=net.spoke_key, issued_at=NOW + 2 * DAY)
    ack = ingest(net, token, at=NOW + 2 * DAY)
    assert (ack.stored, ack.flagged) == (len(record), None)  # nothing dated ahead of its receipt
    clock = [f for f in view(net, batch_id).findings if f.category is Category.CLOCK]
    last = record[-1].seq
    assert [(f.key, f.title, f.blocking) for f in clock] == [
        ("clock-backwards:4", f"Entries 4–{last} dated before entry 3", True)
    ]
    assert clock[0].detail.startswith(
        f"Entries 4–{last} are dated before entry 3 (2026-11-22 09:00 UTC): entry 4 is dated "
        "2026-11-21 09:00 UTC, 24 h before entry 3 (2026-11-22 09:00 UTC); at most 300 s of "
        "clock difference is allowed."
    )
    settle(net, batch_id)
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id, ctx=qa(net, at=NOW + 3 * DAY)))
    assert f"{clock[0].title}: {clock[0].detail}" in err.message


def test_a_release_is_refused_while_an_entry_is_dated_later_than_the_release(net):
    site = net.connected()
    batch_id, number = made(site)  # signed complete 3 h after NOW
    last = send(net, site, batch_id)
    early = qa(net, at=NOW + timedelta(hours=2))  # the hub's clock an hour behind the spoke's
    err = refused(net, ReleasePrecedesRecord, lambda: decide(net, batch_id, ctx=early))
    assert err.message.startswith(
        f"Batch {number} cannot be released at 2026-11-21 11:00 UTC: entry {last} of its record "
        "is dated 2026-11-21 12:00 UTC, later than the release: a release comes after everything "
        "it releases. "  # and what else blocks it
    )
    settle(net, batch_id)  # by QA the next day
    reviewed = view(net, batch_id).state.last_seq
    before = written(net)
    back = qa(net, at=QA_AT - timedelta(hours=1))  # the hub's clock set back an hour since
    err = refused(net, ReleasePrecedesRecord, lambda: decide(net, batch_id, ctx=back))
    assert err.message == (
        f"Batch {number} cannot be released at 2026-11-22 08:00 UTC: entry {reviewed} of its "
        "review at the hub is dated 2026-11-22 09:00 UTC, later than the release: a release "
        "comes after everything it releases."
    )
    assert err.what_to_do.startswith("Check the hub's clock (NTP) and the review page")
    assert written(net) == before
    decide(net, batch_id, ctx=qa(net, at=QA_AT))
    assert view(net, batch_id).state.decision is Decision.RELEASED
