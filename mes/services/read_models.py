"""The hub's read models of received batches, rebuilt from the chains, and checked against them.

Ingest and QA's review keep the rows in step (:func:`mes.store.read_models.refresh_batch`); a
rebuild recomputes every batch's rows from its ledger, review chain and receipts with the same
function — after an upgrade that added a read model, or when a check finds a difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mes.core.access import Permission
from mes.core.batch import Batch, Procedure
from mes.core.errors import InvalidInput
from mes.core.review import replay_review
from mes.services.batches import procedure_for
from mes.services.context import Context, authorise
from mes.store import batches as store
from mes.store import read_models, recipes
from mes.store.read_models import LedgerCheck, Rows
from mes.store.review import review_ledger
from mes.store.sync import receipt_times
from mes.store.uow import UnitOfWork

_WRITE_EVERY = 200  # batches computed before their rows are written (bounded memory)


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild wrote: batches, and rows per table."""

    batches: int
    rows: dict[str, int]

    def summary(self) -> str:
        """In words, for the command line."""
        counts = ", ".join(f"{n} {t.replace('_', ' ')}" for t, n in self.rows.items())
        return f"rebuilt the read models of {self.batches} batches: {counts}"


def _require_hub(uow: UnitOfWork) -> None:
    if uow.site.is_spoke:
        raise InvalidInput(
            "The network's read models are kept at the hub, of the batches it received.",
            what_to_do="Run it at the hub.",
        )


def _computed(uow: UnitOfWork) -> Iterator[Rows]:
    """Each received batch's rows from its chains and receipts, a few batches at a time."""
    session = uow.session
    procedures: dict[str, Procedure] = {}
    rows = Rows()
    for batch_id, content_hash in read_models.received_batches(session):
        procedure = procedures.get(content_hash)
        if procedure is None:
            version = recipes.version_with_content(session, content_hash)
            if version is None:  # ingest stores only deployed versions: not in normal use
                raise InvalidInput(
                    f"Batch {batch_id} was made with a recipe version this hub does not hold."
                )
            procedure = procedures[content_hash] = procedure_for(
                version.content_hash, version.compiled
            )
        record = store.ledger(session, batch_id)
        batch = Batch.replay(procedure, record)
        review = replay_review(batch_id, review_ledger(session, batch_id))
        rows.add(
            read_models.batch_rows(
                batch,
                record,
                review,
                settings=uow.site.review,
                received=receipt_times(session, batch_id),
            )
        )
        if rows.batches() >= _WRITE_EVERY:
            yield rows
            rows = Rows()
    yield rows


def rebuild_read_models(uow: UnitOfWork, ctx: Context) -> Rebuilt:
    """Delete the read models and recompute them from every received batch's chains.

    Administrators and QA; one transaction (the pages read the old rows until it commits).
    """
    _require_hub(uow)
    authorise(uow, ctx, Permission.REBUILD_READ_MODELS)
    read_models.remove(uow.session)
    batches, counts = 0, dict.fromkeys(Rows().tables, 0)
    for rows in _computed(uow):
        read_models.write(uow.session, rows)
        batches += rows.batches()
        for table, n in rows.counts().items():
            counts[table] += n
    uow.commit()
    return Rebuilt(batches, counts)


def read_model_differences(uow: UnitOfWork, ctx: Context) -> list[str]:
    """How the stored read models differ from a fresh computation from the chains (none: [])."""
    _require_hub(uow)
    authorise(uow, ctx, Permission.REBUILD_READ_MODELS)
    expected = Rows()
    for rows in _computed(uow):
        expected.add(rows)
    stale = read_models.summaries_with_other_settings(uow.session, uow.site.review.digest())
    return ([other_settings_words(stale)] if stale else []) + read_models.differences(
        expected, read_models.stored(uow.session)
    )


def other_settings_words(n: int) -> str:
    """That ``n`` batch summaries' exception counts came from other review settings, in words."""
    summaries = "batch summary was" if n == 1 else "batch summaries were"
    return (
        f"{n} {summaries} computed with other review settings: the exception counts may be "
        "stale; run `mes network rebuild`."
    )


def checked_against_ledger(uow: UnitOfWork, recipe_code: str, **which: object) -> LedgerCheck:
    """The values of a series, each tied to its ledger entry; refused when a row differs.

    Before the hub signs a report or QA freezes a baseline from ``parameter_results`` (a
    projection anyone with database access could change): one query; ``which`` as
    :func:`mes.store.read_models.check_against_ledger`. Nothing is written.
    """
    check = read_models.check_against_ledger(uow.session, recipe_code, **which)  # type: ignore[arg-type]
    if check.differing:
        numbers = sorted(check.differing)
        named = ", ".join(numbers[:10]) + (
            f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
        )
        first = check.differing[numbers[0]]
        raise InvalidInput(
            f"The hub's copy of batch{'es' if len(numbers) > 1 else ''} {named} does not match "
            f"{'their' if len(numbers) > 1 else 'its'} ledger ({numbers[0]}: {first}).",
            what_to_do="Run `mes network rebuild --check`, then `mes network rebuild`.",
        )
    return check
