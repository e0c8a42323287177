"""The spoke's side of sync: the hub it enrolled with, its outbox, acknowledgements, refusals.

Every batch entry is queued in the outbox in the transaction that records it
(:func:`mes.store.sync.touch_outbox`). A sync round reads the pending batches (deviations first),
sends their entries after the acknowledged mark as signed chunks, and moves the mark only when
the hub answers with the hash of the last entry it holds — and only if that hash is the spoke's
own entry's. A crash anywhere in between resends entries the hub then acknowledges as held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes.core.access import Permission
from mes.core.clock import local_text
from mes.core.errors import InvalidInput, NotFound
from mes.core.ledger import SealedEntry
from mes.core.sync import make_chunk, transfer_file
from mes.services.anchors import keep_hub_receipt
from mes.services.audit import record_entry
from mes.services.context import Context, authorise, system_actor
from mes.store import batches as store
from mes.store import recipes
from mes.store import sync as sync_store
from mes.store.models import Batch as BatchRow
from mes.store.models import HubLink, InstalledRecipe, SyncOutbox
from mes.store.models import SyncEvent as SyncEvent  # the sync log lines it shows
from mes.store.sync import (
    last_link_event,
    log_event,
    mark_refused,
    move_mark,
    pending_batches,
    urgent_refused_at,
)
from mes.store.uow import UnitOfWork

DEFAULT_CHUNK_ENTRIES = 500


def _require_spoke(uow: UnitOfWork) -> None:
    if not uow.site.is_spoke:
        raise InvalidInput(
            f"This runs at a spoke; this site ({uow.site.code}) is the hub.",
            what_to_do="Run it at the spoke.",
        )


# --- the hub link -------------------------------------------------------------------------


def hub_link(uow: UnitOfWork) -> HubLink | None:
    """The hub this spoke enrolled with, if any."""
    return sync_store.hub_link(uow.session)


def record_enrollment(
    uow: UnitOfWork, ctx: Context, hub_url: str, hub_code: str, hub_key_id: str
) -> HubLink:
    """Remember the hub this spoke enrolled with (its key is pinned in the instance folder)."""
    if ctx.user_id:
        authorise(uow, ctx, Permission.INSTALL_RECIPES)
    _require_spoke(uow)
    link = sync_store.hub_link(uow.session)
    old = None
    if link is None:
        link = HubLink(
            id=1, hub_url=hub_url, hub_code=hub_code, hub_key_id=hub_key_id, enrolled_at=ctx.at
        )
        uow.add(link)
    else:
        old = {"hub_url": link.hub_url, "hub_code": link.hub_code, "hub_key_id": link.hub_key_id}
        link.hub_url, link.hub_code, link.hub_key_id = hub_url, hub_code, hub_key_id
        link.enrolled_at = ctx.at
    record_entry(
        uow,
        ctx,
        system_actor(ctx),
        "enrolled with hub",
        "hub-link",
        hub_code,
        old=old,
        new={"hub_url": hub_url, "hub_code": hub_code, "hub_key_id": hub_key_id},
    )
    log_event(uow.session, at=ctx.at, action="enroll", outcome="accepted", peer=hub_code)
    uow.commit()
    return link


# --- the outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingBatch:
    """A batch with entries the hub has not acknowledged."""

    batch_id: str
    acked_seq: int
    last_seq: int
    priority: bool
    refused_at: datetime | None = None  # when the hub last refused it (it stays pending)


def pending(uow: UnitOfWork, limit: int = 500) -> list[PendingBatch]:
    """Batches waiting for the hub, deviations first."""
    return [
        PendingBatch(
            r.batch_id,
            r.acked_seq,
            r.last_seq,
            r.priority,
            r.attempted_at if r.state == "refused" else None,
        )
        for r in pending_batches(uow.session, limit)
    ]


def urgent_waiting(uow: UnitOfWork, now: datetime, retry_refused_after: float) -> bool:
    """Whether an urgent batch (one with a deviation) waits for the hub and may be offered now.

    A batch the hub refused less than ``retry_refused_after`` seconds ago is not offered again
    before then (as in a round: :func:`mes.sync.client.due`).
    """
    return any(
        at is None or (now - at).total_seconds() >= retry_refused_after
        for at in urgent_refused_at(uow.session)
    )


def chunk_after(
    uow: UnitOfWork,
    at: datetime,
    batch_id: str,
    after_seq: int,
    max_entries: int = DEFAULT_CHUNK_ENTRIES,
) -> tuple[str, int, int] | None:
    """The signed chunk of the batch's entries after ``after_seq``: (token, first, last seq)."""
    entries = _entries(uow, batch_id, after_seq, max_entries)
    if not entries:
        return None
    token = make_chunk(entries, site=uow.site.code, key=uow.site.key, issued_at=at)
    return token, entries[0].seq, entries[-1].seq


def _entries(uow: UnitOfWork, batch_id: str, after_seq: int, limit: int) -> list[SealedEntry]:
    return store.entries_after(uow.session, batch_id, after_seq, limit)


def acknowledge(
    uow: UnitOfWork,
    at: datetime,
    batch_id: str,
    last_seq: int,
    last_hash: str,
    *,
    stored: int = 0,
    duplicates: int = 0,
    via: str = "network",
    receipt: tuple[str, str] | None = None,
) -> bool:
    """The hub holds the batch up to ``last_seq``: move the mark if the hash is our entry's.

    Returns False (and marks the batch refused) when the hub's hash is not the spoke's: the
    mark never moves on an acknowledgement that does not name the spoke's own entry.
    ``receipt``: the request's nonce and the hub's signature of the acknowledgement, kept as
    the spoke's receipt for the batch head (:func:`mes.services.anchors.keep_hub_receipt`).
    """
    ours = store.entry_hash(uow.session, batch_id, last_seq)
    if ours is None or ours != last_hash:
        reason = (
            f"The hub acknowledged entry {last_seq} with hash {last_hash[:12]}…, which is not "
            "this spoke's entry: the copies differ."
        )
        mark_refused(uow.session, batch_id, "ack-mismatch", reason, at)
        note(
            uow,
            at,
            "push",
            "refused",
            batch_id=batch_id,
            code="ack-mismatch",
            reason=reason,
            via=via,
            last_seq=last_seq,
        )
        return False
    move_mark(uow.session, batch_id, last_seq, last_hash, at)
    if receipt is not None:
        nonce, signature = receipt
        keep_hub_receipt(uow, at, batch_id, last_seq, last_hash, nonce=nonce, signature=signature)
    outcome = "accepted" if stored else "duplicate"
    note(
        uow,
        at,
        "push",
        outcome,
        batch_id=batch_id,
        via=via,
        last_seq=last_seq,
        stored=stored,
        duplicates=duplicates,
    )
    return True


def refused(
    uow: UnitOfWork, at: datetime, batch_id: str, code: str, reason: str, *, via: str = "network"
) -> None:
    """The hub refused the batch's entries: they stay pending, with why (shown on the board)."""
    mark_refused(uow.session, batch_id, code, reason, at)
    note(uow, at, "push", "refused", batch_id=batch_id, code=code, reason=reason, via=via)


def note(
    uow: UnitOfWork,
    at: datetime,
    action: str,
    outcome: str,
    *,
    batch_id: str | None = None,
    item: str | None = None,
    code: str | None = None,
    reason: str | None = None,
    via: str = "network",
    last_seq: int | None = None,
    stored: int = 0,
    duplicates: int = 0,
) -> None:
    """Log what a sync round did or why it failed (e.g. the hub could not be reached); commit.

    The hub this spoke is linked to is the log line's peer.
    """
    link = hub_link(uow)
    log_event(
        uow.session,
        at=at,
        action=action,
        outcome=outcome,
        peer=link.hub_code if link else None,
        via=via,
        batch_id=batch_id,
        item=item,
        last_seq=last_seq,
        stored=stored,
        duplicates=duplicates,
        code=code,
        reason=reason,
    )
    uow.commit()


# --- the link: the hub unreachable, or answering ----------------------------------------------

HUB_ANSWERS_AGAIN = "The hub answers again."


@dataclass(frozen=True)
class Outage:
    """The hub unreachable since ``since``: no answer, or an answer that is not the hub's."""

    since: datetime
    reason: str


def outage(uow: UnitOfWork) -> Outage | None:
    """The outage in progress, as the sync log's newest line about the link says (or None)."""
    row = last_link_event(uow.session)
    if row is None or row.outcome != "refused":
        return None
    return Outage(row.at, row.reason or "")


def hub_unreachable(uow: UnitOfWork, at: datetime, reason: str) -> Outage:
    """The hub gave no answer of its own: log it once per outage; the outage in progress.

    Rule: an outage is no verdict on any record — nothing is marked refused, everything stays
    queued and is offered again next round (:mod:`mes.sync.answers`). The log says when it
    began and, by :func:`hub_answers`, when it ended, once each (not every round).
    """
    current = outage(uow)
    if current is not None:
        return current
    note(uow, at, "round", "refused", code="unreachable", reason=reason)
    return Outage(at, reason)


def hub_answers(uow: UnitOfWork, at: datetime) -> bool:
    """The hub answered a whole round: log that it answers again if it was unreachable."""
    if outage(uow) is None:
        return False
    note(uow, at, "round", "accepted", reason=HUB_ANSWERS_AGAIN)
    return True


# --- what the spoke shows -------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSync:
    """A batch's sync state as the spoke shows it: synced, pending (n entries) or refused (why).

    ``unreachable_since``: the hub has been unreachable since then while entries of this batch
    wait (they are retried every few seconds; nothing was refused).
    """

    state: str
    pending: int
    refusal: str | None
    acked_at: datetime | None
    unreachable_since: datetime | None = None

    def words(self, time_zone: str) -> str:
        """In words, for the board and the sync page (times in the site's zone)."""
        if self.state == "synced":
            return "synced"
        if self.state == "refused":
            return f"refused by the hub: {self.refusal}"
        waiting = f"pending ({self.pending} {'entry' if self.pending == 1 else 'entries'})"
        if self.unreachable_since is not None:
            since = local_text(self.unreachable_since, time_zone)
            return f"{waiting}: hub unreachable since {since}, retrying"
        return waiting

    @property
    def text(self) -> str:
        """In words, times in UTC."""
        return self.words("UTC")


def batch_sync(uow: UnitOfWork, batch_ids: list[str]) -> dict[str, BatchSync]:
    """The sync state of each batch (batches never queued are pending with all entries)."""
    rows = sync_store.outbox_rows(uow.session, batch_ids)
    down = outage(uow)
    return {
        r.batch_id: BatchSync(
            state=r.state if r.pending or r.state == "refused" else "synced",
            pending=r.last_seq - r.acked_seq,
            refusal=r.refusal,
            acked_at=r.acked_at,
            unreachable_since=down.since if down and r.pending else None,
        )
        for r in rows
    }


@dataclass(frozen=True)
class SyncOverview:
    """The spoke's sync page: the hub, each batch's state, and the log."""

    link: HubLink | None
    batches: list[tuple[BatchRow, BatchSync]]
    events: list[SyncEvent]
    installed: list[InstalledRecipe]
    outage: Outage | None = None


def overview(uow: UnitOfWork, ctx: Context, *, events: int = 50) -> SyncOverview:
    """What the spoke administrator reads on the sync page."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    _require_spoke(uow)
    batches = store.batches_newest_first(uow.session)
    states = batch_sync(uow, [b.id for b in batches])
    down = outage(uow)
    fallback = BatchSync("pending", 0, None, None, down.since if down else None)
    return SyncOverview(
        link=hub_link(uow),
        batches=[(b, states.get(b.id, fallback)) for b in batches],
        events=sync_store.recent_events(uow.session, events),
        installed=recipes.installed_newest_first(uow.session),
        outage=down,
    )


# --- bundles already handled ----------------------------------------------------------------


def handled_bundles(uow: UnitOfWork) -> set[str]:
    """Bundle hashes installed here, or handled before (not fetched again every round).

    Handled: installed, found already installed (a version published again is a new bundle of
    the same content, which installs nothing) or refused, as the sync log noted.
    """
    return recipes.installed_bundle_hashes(uow.session) | sync_store.handled_bundle_hashes(
        uow.session
    )


# --- air-gapped transfer --------------------------------------------------------------------


def export_pending(
    uow: UnitOfWork, ctx: Context, max_entries: int = DEFAULT_CHUNK_ENTRIES
) -> tuple[bytes, int, int]:
    """A transfer file of every entry not acknowledged by the hub: (file, batches, entries).

    The marks do not move: they move when the hub's acknowledgement comes back (or the entries
    are sent again and acknowledged as held).
    """
    if ctx.user_id:
        authorise(uow, ctx, Permission.INSTALL_RECIPES)
    _require_spoke(uow)
    tokens, batches, count = [], 0, 0
    for waiting in pending(uow, limit=100_000):
        after = waiting.acked_seq
        batches += 1
        while True:
            entries = _entries(uow, waiting.batch_id, after, max_entries)
            if not entries:
                break
            tokens.append(
                make_chunk(entries, site=uow.site.code, key=uow.site.key, issued_at=ctx.at)
            )
            count += len(entries)
            after = entries[-1].seq
    link = hub_link(uow)
    data = transfer_file(
        source=uow.site.code,
        target=link.hub_code if link else None,
        created_at=ctx.at,
        chunks=tokens,
    )
    return data, batches, count


def outbox_row(uow: UnitOfWork, batch_id: str) -> SyncOutbox:
    """The outbox row of a batch."""
    row = sync_store.outbox_row(uow.session, batch_id)
    if row is None:
        raise NotFound(f"Batch {batch_id} is not in the outbox.")
    return row


def as_json(sync: BatchSync) -> dict[str, Any]:
    """A batch's sync state as JSON."""
    return {"state": sync.state, "pending": sync.pending, "refusal": sync.refusal}
