"""Look-back at the hub: every batch at every spoke that used a suspect item, and QA's verdicts.

QA signs a disposition of each batch: notify the treating clinic, or no action with a reason.

The search reads the ``batch_usages`` read model (:mod:`mes.store.lookback`). Opening a
look-back is a row and an entry of the hub's audit trail; each disposition is an e-signed entry
of the batch's review chain (:meth:`mes.core.review.Review.lookback_record`), so it is sealed by
the hub and synced back to the spoke, whose page lists the notifications that concern it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mes.core.access import Permission
from mes.core.audit import require_reason
from mes.core.errors import InvalidInput, NotFound
from mes.core.lookback import (
    LOOKBACK_RECORD_TYPE,
    Disposition,
    LookBackDisposition,
    UnknownLookBackSubject,
    UsageKind,
    subject_of,
)
from mes.core.review import ReviewKind
from mes.services.audit import record_entry
from mes.services.context import Context, authorise
from mes.services.esign import Credentials, check_password_first
from mes.services.ids import new_id
from mes.services.review import ReviewView, commit_review, load_review, sign_review
from mes.store import lookback as store
from mes.store.models import LookBack
from mes.store.uow import UnitOfWork

__all__ = [
    "Case",
    "Found",
    "Notification",
    "decided_reviews",
    "dispose",
    "look_back",
    "lookback_case",
    "notifications",
    "open_lookback",
]


def _require_hub(uow: UnitOfWork) -> None:
    if uow.site.is_spoke:
        raise InvalidInput(
            "Look-backs are run at the hub, across every spoke.",
            what_to_do="Open the hub's look-back page.",
        )


PAGE_SIZE = 500  # batches a page lists (a recipe version may have been used by thousands)


def _page_of(page: int) -> tuple[int, int]:
    """(limit, offset) of page ``page`` (from 1)."""
    page = max(1, min(int(page), 10**6))
    return PAGE_SIZE, (page - 1) * PAGE_SIZE


@dataclass(frozen=True)
class Found:
    """The batches that used one subject (the search's answer): one page, and how many in all."""

    kind: UsageKind
    subject: str
    batches: list[store.UsedBy]
    total: int
    page: int = 1

    @property
    def pages(self) -> int:
        """How many pages the batches fill."""
        return max(1, -(-self.total // PAGE_SIZE))


def look_back(
    uow: UnitOfWork, ctx: Context, kind: str, identifier: str | None, *, page: int = 1
) -> Found:
    """Every batch at every spoke that used a lot, instrument, operator or recipe version.

    With the patient's identifiers, the batch's status and QA's decision and its dates, from
    the read models (no ledger is read); ``page``: which :data:`PAGE_SIZE` of them, by site and
    start, with the count of all.
    """
    _require_hub(uow)
    authorise(uow, ctx, Permission.LOOK_BACK)
    known, subject = subject_of(kind, identifier)
    limit, offset = _page_of(page)
    return Found(
        known,
        subject,
        store.batches_using(uow.session, known.value, subject, limit=limit, offset=offset),
        store.used_count(uow.session, known.value, subject),
        page,
    )


def open_lookback(
    uow: UnitOfWork, ctx: Context, kind: str, identifier: str | None, reason: str | None
) -> LookBack:
    """Open a look-back on a subject some batch used, with QA's reason (an audit-trail entry).

    Refused (:class:`UnknownLookBackSubject`) when no batch held here used the subject.
    """
    _require_hub(uow)
    actor = authorise(uow, ctx, Permission.LOOK_BACK)
    known, subject = subject_of(kind, identifier)
    why = require_reason(reason, "open a look-back")
    if not store.used_count(uow.session, known.value, subject):
        raise UnknownLookBackSubject(
            f"No batch held at the hub used {known.words.lower()} {subject}.",
            what_to_do="Check the identifier as it is printed (a lot number, an equipment ID, "
            "a user name, or 'CODE vN') and the kind chosen.",
        )
    row = LookBack(
        id=new_id(),
        subject_kind=known.value,
        subject=subject,
        reason=why,
        opened_at=ctx.at,
        opened_by=ctx.user_id,
    )
    uow.add(row)
    uow.flush()
    record_entry(
        uow,
        ctx,
        actor,
        "look-back opened",
        LOOKBACK_RECORD_TYPE,
        row.id,
        new={"subject_kind": known.value, "subject": subject},
        reason=why,
    )
    uow.commit()
    return row


@dataclass
class Case:
    """A look-back as QA works it: its subject, its batches, each batch's disposition."""

    lookback: LookBack
    batches: list[store.UsedBy]  # one page of them
    total: int
    dispositions: dict[str, LookBackDisposition] = field(default_factory=dict)  # by batch ID
    page: int = 1

    @property
    def kind(self) -> UsageKind:
        """What the look-back is on."""
        return UsageKind(self.lookback.subject_kind)

    @property
    def open_batches(self) -> int:
        """Batches without a disposition yet (of every page)."""
        return self.total - len(self.dispositions)

    @property
    def pages(self) -> int:
        """How many pages the batches fill."""
        return max(1, -(-self.total // PAGE_SIZE))


def _lookback(uow: UnitOfWork, lookback_id: str) -> LookBack:
    row = store.lookback(uow.session, lookback_id)
    if row is None:
        raise NotFound(
            f"There is no look-back {lookback_id!r}.",
            what_to_do="Open it from the look-back page.",
        )
    return row


def lookback_case(uow: UnitOfWork, ctx: Context, lookback_id: str, *, page: int = 1) -> Case:
    """One look-back: the batches that used its subject (a page), the dispositions signed."""
    _require_hub(uow)
    authorise(uow, ctx, Permission.LOOK_BACK)
    row = _lookback(uow, lookback_id)
    limit, offset = _page_of(page)
    return Case(
        row,
        store.batches_using(uow.session, row.subject_kind, row.subject, limit=limit, offset=offset),
        store.used_count(uow.session, row.subject_kind, row.subject),
        {b: d for b, _n, d in store.dispositions(uow.session, lookback_id=row.id)},
        page,
    )


def recent(uow: UnitOfWork, ctx: Context) -> list[LookBack]:
    """The look-backs opened most recently, newest first."""
    _require_hub(uow)
    authorise(uow, ctx, Permission.LOOK_BACK)
    return store.recent_lookbacks(uow.session)


def dispose(
    uow: UnitOfWork,
    ctx: Context,
    lookback_id: str,
    batch_id: str,
    disposition: Disposition | str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    reason: str | None = None,
) -> ReviewView:
    """Sign QA's disposition of one batch in a look-back, on the batch's review chain.

    Notify (the treating clinic, through the spoke) or no action with a reason; once per batch
    per look-back. The rules are checked before the password counts; the signature (11.50,
    meaning "reviewed") is bound to the disposition's record (11.70).
    """
    _require_hub(uow)
    checked = check_password_first(uow, ctx, credentials)
    actor = authorise(uow, ctx, Permission.LOOK_BACK)
    row = _lookback(uow, lookback_id)
    view = load_review(uow, batch_id, lock=True)
    if not store.used_by(uow.session, row.subject_kind, row.subject, batch_id):
        raise InvalidInput(
            f"Batch {view.row.number} did not use {UsageKind(row.subject_kind).words.lower()} "
            f"{row.subject}: it is not in this look-back.",
            what_to_do="Sign dispositions from the look-back's list of batches.",
        )
    subject = {
        "id": row.id,
        "subject_kind": row.subject_kind,
        "subject": row.subject,
        "reason": row.reason,
    }
    record = view.review.lookback_record(subject, str(disposition), reason)
    manifestation = sign_review(
        uow,
        ctx,
        view,
        record,
        ReviewKind.LOOKBACK_DISPOSITION,
        credentials,
        first_signing_in_session,
        checked,
    )
    view.review.dispose_lookback(record, manifestation, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


def decided_reviews(uow: UnitOfWork, *, after: str, limit: int) -> dict[str, int]:
    """Spoke (sync): decided batches to ask the hub about again, with our review head for each.

    A look-back's disposition is recorded on a batch's review chain after its release, maybe
    years later; the sync client names decided batches ``limit`` at a time, in batch-ID order
    after ``after``, so every one is asked about in turn at a constant cost per round.
    """
    return store.decided_review_heads(uow.session, after, limit)


@dataclass(frozen=True)
class Notification:
    """A look-back disposition "notify" of a batch made here, as the spoke lists it."""

    batch_id: str
    number: str
    subject: str  # "Material lot L-123"
    lookback_reason: str
    reason: str | None
    by: str
    at: str


def notifications(uow: UnitOfWork, ctx: Context) -> list[Notification]:
    """The hub's look-back notifications of this site's batches, newest first.

    A spoke holds the review chains of its own batches only, so each one concerns it: the
    treating clinic of that batch's patient is to be told.
    """
    authorise(uow, ctx, Permission.READ_BATCHES)
    return [
        Notification(batch_id, number, d.subject_words, d.lookback_reason, d.reason, d.by, d.at)
        for batch_id, number, d in store.dispositions(uow.session)
        if d.disposition is Disposition.NOTIFY
    ]
