"""Issuing a batch's record: the signed PDF/A-3b, produced once per state of the record and kept.

A batch's record changes only by new entries — the spoke's, or QA's at the hub, also after the
release (results, custody, the bedside, final certification). The signed PDF of one state of
the record (named by the batch's ID and its record hash) is written once to
``<instance>/records/`` with a note of when it was issued and the heads of the two chains it
covers, and handed out again for as long as nothing is added. A record whose chains moved is
issued anew: the download always gives the newest, and every earlier issue is kept, never
overwritten (:func:`issued_records`; ``mes verify --against-hub`` names the newest that
supersedes an older copy); the layout of its
unchanging parts is kept too (:class:`mes.pdf.render.PartCache`), so the next print after a QA
action lays out only the cover, the deviations and QA's audit trail. The PDF is a derived copy:
the ledger it embeds is the record, and any copy can be checked with ``mes verify``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mes.core.clock import as_utc
from mes.core.errors import MesError
from mes.core.ledger import SealedEntry
from mes.core.text import first_few
from mes.pdf.readback import Expected, missing_words
from mes.pdf.render import PartCache, render_record_pdf
from mes.pdf.sign import sign_pdf
from mes.pdf.verify import Superseded
from mes.services.context import Context
from mes.services.document_certificate import load_document_key
from mes.services.record import ATTACHMENT_NAME, batch_record
from mes.services.record_copy import entries_added
from mes.services.runtime import Runtime
from mes.settings import RECORDS_FOLDER, Settings
from mes.store.files import make_private_folder, write_private

LOG = logging.getLogger(__name__)
# The hub's visible signature stamp sits on the cover, low on the page where the cover leaves
# room (x1, y1, x2, y2 in points on A4), clear of the footer's record hash and page number.
COVER_STAMP_BOX = (37, 56, 287, 100)
# Kept signed records are named with this mark since each is kept with its issue note (when, and
# which heads it covers): a copy kept by an earlier version (not read back, or without its note)
# is never handed out again nor overwritten, but made anew under this name.
KEPT_AS = "-issued"
ISSUED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # an issue's time as notes and ``mes verify`` write it


@dataclass(frozen=True)
class IssuedRecord:
    """A signed record: its bytes, a file name, and whether it was made now or kept from before."""

    pdf: bytes
    filename: str
    number: str
    made_now: bool
    issued_at: str = ""  # UTC, :data:`ISSUED_AT_FORMAT`
    heads: tuple[tuple[int, str | None], tuple[int, str | None]] = ((0, None), (0, None))

    @property
    def sha256(self) -> str:
        """The SHA-256 of the signed file: how ``mes verify`` names a record."""
        return hashlib.sha256(self.pdf).hexdigest()


@dataclass(frozen=True)
class IssueNote:
    """What is kept beside an issued record: its file's SHA-256, when, and the heads it covers."""

    batch_id: str
    record_hash: str
    sha256: str
    issued_at: str
    ledger_head: tuple[int, str | None]
    review_head: tuple[int, str | None]

    def as_json(self) -> bytes:
        """The note as kept (``<record>.json``)."""
        return json.dumps(
            {
                "batch": self.batch_id,
                "record_hash": self.record_hash,
                "sha256": self.sha256,
                "issued_at": self.issued_at,
                "heads": {"ledger": list(self.ledger_head), "review": list(self.review_head)},
            },
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> IssueNote | None:
        """The note kept at ``path``, or None when there is none or it is not whole."""
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
            heads = raw["heads"]
            return cls(
                batch_id=str(raw["batch"]),
                record_hash=str(raw["record_hash"]),
                sha256=str(raw["sha256"]),
                issued_at=str(raw["issued_at"]),
                ledger_head=(int(heads["ledger"][0]), heads["ledger"][1]),
                review_head=(int(heads["review"][0]), heads["review"][1]),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None


def records_folder(settings: Settings) -> Path:
    """Where issued records and the layout of their parts are kept (0700, each file 0600)."""
    return settings.instance_path / RECORDS_FOLDER


class RecordNotIssued(MesError):
    """The hub does not sign a copy of a record that fails verification."""

    http_status = 409


class PrintIncomplete(RecordNotIssued):
    """A rendered document does not show all it must: the hub does not sign it."""

    def __init__(
        self, document: str, missing: list[Expected], *, leaves_out: str, hides: str
    ) -> None:
        self.missing = [item.what for item in missing]
        shown = first_few(self.missing, 5, "; ", last="; and ")
        super().__init__(
            f"{document} does not show {shown}. The hub does not sign a copy that leaves out "
            f"{leaves_out}.",
            what_to_do=f"Report this to the administrator: {hides}.",
        )


class RecordPrintIncomplete(PrintIncomplete):
    """The rendered record does not show all of the record: the hub does not sign it."""

    def __init__(self, number: str, missing: list[Expected]) -> None:
        super().__init__(
            f"The printed record of batch {number}",
            missing,
            leaves_out="part of the record",
            hides="the record's text or the print template hides part of the record",
        )


def _kept(path: Path) -> tuple[bytes, IssueNote] | None:
    """A kept signed record and its note, if both are whole (its SHA-256 is kept beside it)."""
    try:
        pdf = path.read_bytes()
        digest = path.with_suffix(".sha256").read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    note = IssueNote.read(path.with_suffix(".json"))
    found = hashlib.sha256(pdf).hexdigest()
    if found != digest or note is None or note.sha256 != found:
        return None
    return pdf, note


def _keep(path: Path, pdf: bytes, note: IssueNote) -> None:
    """Write a signed record under its kept name: synced, then renamed, its note, its digest last."""
    # A name of its own: two requests for the same state must not write into one file.
    for target, data in (
        (path, pdf),
        (path.with_suffix(".json"), note.as_json()),
        (path.with_suffix(".sha256"), hashlib.sha256(pdf).hexdigest().encode()),
    ):
        temporary = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
        write_private(temporary, data, sync=True)  # on disk before it takes the kept name
        temporary.replace(target)  # never half a file under the kept name


def issue_record(runtime: Runtime, ctx: Context, batch_id: str) -> IssuedRecord:
    """The signed PDF/A-3b of a batch's record as it is now (made if this state has none yet).

    Anyone who may read batch records may have it; only a hub signs (its certificate), and only
    a record whose ledger and review chain verify. A state of the record is named by its record
    hash (the SHA-256 of the whole embedded document), so a kept copy is the copy of exactly
    this record; a kept file that is not whole is made again.

    The hub signs only what it has read back (21 CFR 11.10(b), accurate and complete copies):
    the rendered file's text must show every deviation, every signature's manifestation,
    every value and change of a value and every audit-trail line of the record
    (:func:`mes.pdf.readback.missing_words`); otherwise :class:`RecordPrintIncomplete` names
    what is missing and nothing is signed or kept.
    """
    settings = runtime.settings
    key = load_document_key(settings)  # refused at a spoke, or with what to do if missing
    with runtime.uow(read_only=True) as uow:
        package = batch_record(uow, ctx, batch_id)
    number = package.view.row.number
    if package.view.chain_problem:
        raise RecordNotIssued(
            f"The record of batch {number} fails verification: {package.view.chain_problem} "
            "The hub does not sign a copy of it.",
            what_to_do="Investigate (mes batch verify); the review page shows the problem.",
        )
    filename = f"{number}-record.pdf"
    folder = records_folder(settings)
    kept = folder / f"{package.view.row.id}-{package.record_hash}{KEPT_AS}.pdf"
    heads = (_head(package.view.record), _head(package.view.review_entries))
    earlier = _kept(kept)
    if earlier is not None:
        pdf, note = earlier
        return IssuedRecord(pdf, filename, number, False, note.issued_at, heads)
    pdf = render_record_pdf(
        package.record, package.attachment, ATTACHMENT_NAME, cache=PartCache(folder / "parts")
    )
    missing = missing_words(package.record, pdf)  # signed only once read back whole
    if missing:
        LOG.error(
            "Not signed: the printed record of batch %s does not show %s",
            number,
            "; ".join(item.what for item in missing),
        )
        raise RecordPrintIncomplete(number, missing)
    signed = sign_pdf(
        pdf,
        key,
        at=ctx.at,
        reason=f"Executed batch record {number}",
        location=f"{settings.site_name} ({settings.site_code})",
        name=settings.site_name,
        stamp_page=0,
        stamp_box=COVER_STAMP_BOX,
    )
    issued_at = as_utc(ctx.at).strftime(ISSUED_AT_FORMAT)
    note = IssueNote(
        package.view.row.id,
        package.record_hash,
        hashlib.sha256(signed).hexdigest(),
        issued_at,
        *heads,
    )
    make_private_folder(folder)
    _keep(kept, signed, note)
    return IssuedRecord(signed, filename, number, True, issued_at, heads)


def _head(entries: list[SealedEntry]) -> tuple[int, str | None]:
    """(seq, hash) of a chain's last entry; (0, None) for an empty chain."""
    return (entries[-1].seq, entries[-1].hash) if entries else (0, None)


def issued_records(settings: Settings, batch_id: str) -> list[IssueNote]:
    """Every record of a batch issued and kept here, oldest first (by issue time)."""
    folder = records_folder(settings)
    notes = [
        note
        for path in sorted(folder.glob(f"{batch_id}-*{KEPT_AS}.json"))
        if (note := IssueNote.read(path)) is not None and note.batch_id == batch_id
    ]
    return sorted(notes, key=lambda n: (n.issued_at, n.ledger_head[0], n.review_head[0]))


def superseding_record(
    runtime: Runtime, ctx: Context, batch_id: str, heads: Mapping[str, int]
) -> Superseded:
    """The newest record of a batch (issued now if its chains moved) and what it adds.

    ``heads``: the last seq of each chain an older copy covers; the words of each entry added
    since are :func:`mes.services.record_copy.entries_added`'s.
    """
    newest = issue_record(runtime, ctx, batch_id)
    until = {"ledger": newest.heads[0][0], "review": newest.heads[1][0]}
    with runtime.uow(read_only=True) as uow:
        added = entries_added(uow, ctx, batch_id, heads, until)
    return Superseded(newest.sha256, newest.issued_at, tuple(added))
