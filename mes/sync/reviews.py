"""The hub's review entries on their way to the spoke: their JSON form, read strictly.

The same form travels over the network (``POST /api/v1/sync/reviews``) and in the hub's
transfer file for an air-gapped spoke: a list of ``{"body", "hash", "signature"}``, each body a
ledger-shaped entry of a batch's review chain, sealed by the hub. Reading checks only the form;
the entries are then verified with the pinned hub key, and for continuity with the chain held
here, by :func:`mes.services.review.receive_review_entries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mes.core.entry import read_sealed_entries
from mes.core.ledger import SealedEntry

MAX_ENTRIES = 20_000  # far above what the hub sends at once (about 2,000)


class UnreadableReviews(ValueError):
    """What arrived is not a list of review entries of the batches asked about."""


def entries_json(entries: Iterable[SealedEntry]) -> list[dict[str, Any]]:
    """Sealed entries as they travel."""
    return [e.as_dict() for e in entries]


def read_entries(items: Any, asked: Mapping[str, int] | None = None) -> list[SealedEntry]:
    """Review entries from their JSON form; :class:`UnreadableReviews` if any is malformed.

    ``asked``: the review heads the spoke sent; then every entry must be of one of those batches
    and come after the head named for it (the hub answers nothing else).
    """
    if not isinstance(items, list):
        raise UnreadableReviews("the entries are not a list")
    if len(items) > MAX_ENTRIES:
        raise UnreadableReviews(f"more than {MAX_ENTRIES:,} entries at once")
    entries = read_sealed_entries(
        items,
        UnreadableReviews(
            "an entry is not a review entry of this format (body with exactly the ledger's "
            "fields, hash, signature)"
        ),
    )
    if asked is not None:
        for entry in entries:
            batch = entry.body["batch"]
            if batch not in asked:
                raise UnreadableReviews(f"an entry is of batch {batch[:40]!r}, not asked about")
            if entry.seq <= asked[batch]:
                raise UnreadableReviews(
                    f"an entry of batch {batch} (seq {entry.seq}) is one this spoke holds"
                )
    return entries


__all__ = ["MAX_ENTRIES", "UnreadableReviews", "entries_json", "read_entries"]
