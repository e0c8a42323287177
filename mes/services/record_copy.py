"""The hub's own copy of a batch's chains, to compare an issued PDF record with (``--against-hub``).

A signed PDF proves what the hub issued; comparing it with the database shows whether the
record still says what the hub holds now (21 CFR 11.10(b): accurate and complete copies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mes.core.access import Permission
from mes.core.clock import parse_utc_text
from mes.core.errors import NotFound
from mes.core.record import after_release_summary
from mes.services.context import Context, authorise
from mes.store.batches import batch, ledger
from mes.store.review import review_ledger
from mes.store.uow import UnitOfWork


@dataclass(frozen=True)
class HubChains:
    """The batch's chains as the hub holds them: (seq, hash) of every entry, in order."""

    batch_id: str
    batch_number: str
    ledger: list[tuple[int, str]]
    review: list[tuple[int, str]]


def hub_chains(uow: UnitOfWork, ctx: Context, batch_id: str) -> HubChains:
    """The hub's ledger and review chain of a batch; :class:`NotFound` when it holds none."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    row = batch(uow.session, batch_id)
    if row is None:
        raise NotFound(
            f"This instance holds no batch with the record's batch ID {batch_id}.",
            what_to_do="Compare the record at the hub that issued it.",
        )
    return HubChains(
        batch_id=row.id,
        batch_number=row.number,
        ledger=[(e.seq, e.hash) for e in ledger(uow.session, batch_id)],
        review=[(e.seq, e.hash) for e in review_ledger(uow.session, batch_id)],
    )


def entries_added(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    after: Mapping[str, int],
    until: Mapping[str, int] | None = None,
) -> list[str]:
    """What the hub holds beyond an issued record's heads, each entry in a few words, oldest first.

    ``after``: the last seq of each chain ("ledger", "review") the record covers; ``until``:
    the last seq of each chain of the newer record (default: all the hub holds). The words are
    :func:`mes.core.record.after_release_summary` ('result sterility_final recorded', 'final
    certification').
    """
    authorise(uow, ctx, Permission.READ_BATCHES)
    last = until or {}
    entries = [
        e
        for e in ledger(uow.session, batch_id)
        if after.get("ledger", 0) < e.seq <= last.get("ledger", e.seq)
    ]
    entries += [
        e
        for e in review_ledger(uow.session, batch_id, after_seq=after.get("review", 0))
        if e.seq <= last.get("review", e.seq)
    ]
    entries.sort(key=lambda e: parse_utc_text(str(e.body["at"])))
    return [after_release_summary(e.body) for e in entries]
