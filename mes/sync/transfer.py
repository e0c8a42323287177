"""Transfer files for air-gapped sites: the same signed chunks and bundles, on a USB stick.

At a spoke, ``mes export`` writes every entry the hub has not acknowledged; at the hub,
``mes import`` ingests each chunk with exactly the checks of a network push. The hub's
``mes export --site CODE`` writes the bundles published for that spoke and its signed
acknowledgements, and QA's review entries of the spoke's batches (each sealed by the hub, in the
form of ``POST /api/v1/sync/reviews``, under the wrapper's ``reviews``); the spoke's ``mes import``
installs the bundles with the checks of ``mes recipe install``, moves its outbox marks and
stores the review entries that verify with its pinned hub key and continue its copy. Importing
the same file again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mes.core.canonical import canonical_json, strict_loads
from mes.core.errors import (
    BundleRefused,
    ChunkUnreadable,
    ConfigurationError,
    MesError,
    SyncRefused,
)
from mes.core.ledger import SealedEntry
from mes.core.sync import chunk_site, make_acks, open_acks, read_transfer_file, transfer_file
from mes.services import ingest, outbox, review, spokes
from mes.services.context import Context
from mes.services.recipes import install_bundle
from mes.services.runtime import Runtime
from mes.sync.reviews import UnreadableReviews, entries_json, read_entries


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ImportReport:
    """What an import did, item by item."""

    stored: int = 0
    duplicates: int = 0
    batches: set[str] = field(default_factory=set)
    installed: list[str] = field(default_factory=list)
    acknowledged: int = 0
    reviews: int = 0  # review entries of the hub stored
    refused: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)  # stored, but dated ahead of the hub's clock

    def summary(self) -> str:
        """One paragraph for people."""
        lines = []
        if self.batches or self.stored or self.duplicates:
            lines.append(
                f"{self.stored} entries stored ({self.duplicates} already held) "
                f"from {len(self.batches)} batch{'es' if len(self.batches) != 1 else ''}."
            )
        if self.installed:
            lines.append(f"Installed {', '.join(self.installed)}.")
        if self.acknowledged:
            lines.append(f"{self.acknowledged} batch marks moved by the hub's acknowledgements.")
        if self.reviews:
            lines.append(f"{self.reviews} review entries of the hub stored.")
        lines += [f"Refused: {r}" for r in self.refused]
        lines += [f"Flagged: {f}" for f in self.flagged]
        return "\n".join(lines) or "Nothing new in the file; nothing changed."


def export_spoke(runtime: Runtime, ctx: Context) -> tuple[bytes, int, int]:
    """Spoke: the transfer file of everything not acknowledged (file, batches, entries)."""
    with runtime.uow(read_only=True) as uow:
        return outbox.export_pending(uow, ctx, runtime.settings.sync_chunk_entries)


def export_hub(runtime: Runtime, ctx: Context, site: str) -> tuple[bytes, int, int]:
    """Hub: the bundles published for ``site`` and the hub's acknowledgements of its batches."""
    site = site.strip().upper()
    with runtime.uow(read_only=True) as uow:
        spokes.list_spokes(uow, ctx)  # permission check
        offers = spokes.bundles_for(uow, site)
        tokens = [spokes.bundle_token(uow, site, o.bundle_hash) for o in offers]
        heads = ingest.heads_of(uow, site)
        reviewed = _all_review_entries(uow, site, heads)
    acks = make_acks(heads, hub=runtime.site.code, site=site, key=runtime.site.key, at=ctx.at)
    data = transfer_file(
        source=runtime.site.code, target=site, created_at=ctx.at, bundles=tokens, acks=acks
    )
    return _with_reviews(data, reviewed), len(tokens), len(heads)


def _all_review_entries(uow: Any, site: str, batches: Iterable[str]) -> list[SealedEntry]:
    """Every review entry of ``site``'s batches (the spoke's heads are not known by file)."""
    known = dict.fromkeys(batches, 0)
    found: list[SealedEntry] = []
    while True:  # the hub answers about 2,000 entries at a time, whole batches
        more = review.review_updates(uow, site, known)
        if not more:
            return found
        found += more
        for entry in more:
            known[entry.body["batch"]] = max(known[entry.body["batch"]], entry.seq)


def _with_reviews(data: bytes, entries: list[SealedEntry]) -> bytes:
    """The transfer file with the review entries added under ``reviews`` (when there are any)."""
    if not entries:
        return data
    raw = strict_loads(data)
    raw["reviews"] = entries_json(entries)
    return canonical_json(raw)


def _reviews_in(data: bytes) -> list[SealedEntry]:
    """The review entries a transfer file carries (none if it has no ``reviews``)."""
    raw = strict_loads(data)  # read_transfer_file has checked it is a transfer file
    if "reviews" not in raw:
        return []
    try:
        return read_entries(raw["reviews"])
    except UnreadableReviews as err:
        raise ChunkUnreadable(
            f"The review entries in the file are not readable: {err}.",
            what_to_do="Use the file the hub wrote for this site ('mes export --site').",
        ) from None


def import_file(runtime: Runtime, ctx: Context, data: bytes) -> ImportReport:
    """Ingest a transfer file (hub: chunks; spoke: bundles and acknowledgements)."""
    transfer = read_transfer_file(data)
    reviews = _reviews_in(data)
    report = ImportReport()
    if runtime.site.role == "hub":
        if transfer.bundles:
            report.refused.append("recipe bundles are imported at a spoke, not at the hub")
        if reviews:
            report.refused.append("review entries are imported at a spoke, not at the hub")
        for token in transfer.chunks:
            site = chunk_site(token) or transfer.source
            try:
                with runtime.uow() as uow:
                    ack = ingest.ingest_chunk(uow, _now(), site, token, via="file")
            except SyncRefused as refusal:
                report.refused.append(refusal.message)
                continue
            report.stored += ack.stored
            report.duplicates += ack.duplicates
            report.batches.add(ack.batch)
            if ack.flagged:  # the same rule as a network push (ingest._clock_flag)
                report.flagged.append(ack.flagged)
        return report
    if transfer.chunks:
        raise ChunkUnreadable(
            "The file holds batch records from a spoke; import it at the hub.",
            what_to_do="Import at a spoke only the file the hub wrote for it.",
        )
    for token in transfer.bundles:
        try:
            with runtime.uow() as uow:
                outcome = install_bundle(uow, ctx, token, "transfer file")
        except BundleRefused as refusal:
            report.refused.append(refusal.message)
            continue
        if outcome.newly_installed:
            report.installed.append(f"{outcome.recipe.recipe_code} v{outcome.recipe.version}")
    if transfer.acks:
        if runtime.site.hub_key is None:
            raise ConfigurationError("This spoke has no pinned hub key to verify the file with.")
        heads = open_acks(transfer.acks, runtime.site.hub_key, runtime.site.code)
        with runtime.uow(read_only=True) as uow:
            waiting = {p.batch_id: p for p in outbox.pending(uow, limit=100_000)}
        for batch_id, (seq, digest) in heads.items():
            mark = waiting.get(batch_id)
            if mark is None or seq <= mark.acked_seq:
                continue
            with runtime.uow() as uow:
                if outbox.acknowledge(uow, ctx.at, batch_id, seq, digest, via="file"):
                    report.acknowledged += 1
                    continue
            with runtime.uow(read_only=True) as uow:  # refused: say why, as the board does
                report.refused.append(
                    f"Batch {batch_id}: {outbox.outbox_row(uow, batch_id).refusal}"
                )
    if reviews:
        _import_reviews(runtime, ctx, reviews, report)
    return report


def _import_reviews(
    runtime: Runtime, ctx: Context, entries: list[SealedEntry], report: ImportReport
) -> None:
    """Store the hub's review entries this spoke does not hold yet; say how many were refused."""
    with runtime.uow(read_only=True) as uow:
        awaited = review.awaited_reviews(uow)
    new = [e for e in entries if e.seq > awaited.get(str(e.body["batch"]), e.seq)]
    if not new:
        return
    try:
        with runtime.uow() as uow:
            report.reviews = review.receive_review_entries(uow, ctx.at, new, via="file")
    except MesError as err:
        report.refused.append(err.message)
        return
    if report.reviews < len(new):
        report.refused.append(
            f"{len(new) - report.reviews} review entries of the hub were refused (they do not "
            "verify with the pinned hub key or do not continue this spoke's copy); the sync "
            "log says why, batch by batch."
        )
