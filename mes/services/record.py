"""The executed batch record as one document: what the PDF prints and what it embeds.

:func:`batch_record` gathers, in one read-only transaction, the batch's ledger (signed by the
spoke that made it), its review chain (signed by the hub), the public keys that verify both,
and the record in words (:func:`mes.core.record.build_record`). The embedded document is the
RFC 8785 canonical JSON of::

    {"format": "mes-batch-record/1", "batch": {id, number, site}, "keys": {site code: PEM},
     "ledger": [{body, hash, signature} …], "review": [… of the review chain],
     "record_hash": SHA-256 of this object without "record_hash"}

so anyone holding the file can verify every entry offline with standard tools (21 CFR 11.10(b):
accurate and complete copies in human-readable and electronic form).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes.core.access import Permission
from mes.core.canonical import canonical_json, content_hash
from mes.core.clock import local_text, parse_utc_text
from mes.core.ledger import SealedEntry
from mes.core.record import (
    AFTER_RELEASE_WORDS,
    AuditLine,
    BatchRecord,
    after_release_text,
    batch_audit_lines,
    build_record,
)
from mes.core.review import ReviewKind, review_entry_text
from mes.services.batches import signing_key
from mes.services.context import Context, authorise
from mes.services.review import ReviewView, load_review
from mes.store import spokes
from mes.store.uow import UnitOfWork

RECORD_FORMAT = "mes-batch-record/1"
ATTACHMENT_NAME = "batch-record.json"


@dataclass(frozen=True)
class RecordPackage:
    """A batch record ready to print: the record in words and the document it embeds."""

    view: ReviewView
    record: BatchRecord
    attachment: bytes
    record_hash: str
    heads: tuple[str, str]  # the last hash of the ledger and of the review chain (cache key)


def _entries(entries: list[SealedEntry]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in entries]


def record_document(uow: UnitOfWork, view: ReviewView) -> dict[str, Any]:
    """The embedded document (without its hash): entries as sealed and the keys that verify them."""
    keys = {view.row.site: signing_key(uow, view.row.site).pem().decode("ascii")}
    if view.review_entries:
        hub = str(view.review_entries[0].body["site"])
        hub_key = uow.site.key.public if hub == uow.site.code else uow.site.hub_key
        if hub_key is not None:
            keys[hub] = hub_key.pem().decode("ascii")
    return {
        "format": RECORD_FORMAT,
        "batch": {"id": view.row.id, "number": view.row.number, "site": view.row.site},
        "keys": keys,
        "ledger": _entries(view.record),
        "review": _entries(view.review_entries),
    }


def site_name(uow: UnitOfWork, site: str) -> str:
    """The printed name of the site that made a batch (a spoke's name as the hub knows it)."""
    if site == uow.site.code:
        return uow.site.name
    spoke = spokes.spoke(uow.session, site)
    return spoke.name if spoke is not None else site


# The review kinds :func:`mes.core.review.review_entry_text` words (QA's review and decision).
_REVIEW_KINDS = frozenset(
    {
        ReviewKind.EXCEPTION_REVIEWED,
        ReviewKind.EXCEPTIONS_REVIEWED,
        ReviewKind.DEVIATION_ASSESSED,
        ReviewKind.DEVIATION_CLOSED,
        ReviewKind.BATCH_RELEASED,
        ReviewKind.BATCH_REJECTED,
    }
)


def _review_text(body: Mapping[str, Any]) -> str:
    """A review entry in words; a kind added after release by its kind's words, never dropped."""
    kind = body["kind"]
    if kind in AFTER_RELEASE_WORDS or kind not in _REVIEW_KINDS:
        return after_release_text(body)
    return review_entry_text(body)


def review_audit_lines(entries: list[SealedEntry], time_zone: str) -> list[AuditLine]:
    """The review chain as audit-trail lines (chain "review"), oldest first."""
    return [
        AuditLine(
            seq=int(e.body["seq"]),
            at_text=local_text(parse_utc_text(e.body["at"]), time_zone),
            who=f"{e.body['actor']['name']} ({e.body['actor']['username']})",
            terminal=e.body.get("terminal") or "",
            kind=str(e.body["kind"]),
            text=_review_text(e.body),
            chain="review",
        )
        for e in entries
    ]


def package(uow: UnitOfWork, batch_id: str, generated_at: datetime) -> RecordPackage:
    """The record of a batch as it is now (no permission check: callers check)."""
    view = load_review(uow, batch_id)
    document = record_document(uow, view)
    record_hash = content_hash(document)
    attachment = canonical_json({**document, "record_hash": record_hash})
    audit = [
        *batch_audit_lines(view.batch, view.record, view.time_zone),
        *review_audit_lines(view.review_entries, view.time_zone),
    ]
    record = build_record(
        view.batch,
        view.state,
        time_zone=view.time_zone,
        site_name=site_name(uow, view.row.site),
        audit=audit,
        record_hash=record_hash,
        generated_at=generated_at,
        ledger=view.record,
        review_entries=view.review_entries,
    )
    heads = (view.batch.state.last_hash, view.state.last_hash)
    return RecordPackage(view, record, attachment, record_hash, heads)


def batch_record(uow: UnitOfWork, ctx: Context, batch_id: str) -> RecordPackage:
    """The printable record of one batch, for anyone who may read batch records."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    return package(uow, batch_id, ctx.at)
