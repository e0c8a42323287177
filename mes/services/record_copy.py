"""The hub's own copy of a batch's chains, to compare an issued PDF record with (``--against-hub``).

A signed PDF proves what the hub issued; comparing it with the database shows whether the
record still says what the hub holds now (21 CFR 11.10(b): accurate and complete copies).
"""

from __future__ import annotations

from dataclasses import dataclass

from mes.core.access import Permission
from mes.core.errors import NotFound
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
