"""QA review by exception, deviation investigation and release at the hub (mes.core.review).

Each function is one permission check and one transaction. The spoke's record is read, never
written; what QA does is appended to the batch's review chain (sealed with the hub's key) in
the same transaction as the disposition row. The chain travels back to the spoke with the next
sync round (:func:`review_updates` at the hub, :func:`receive_review_entries` at the spoke).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes.core.access import Permission
from mes.core.after_release import EVENT, after_release_state, awaiting_words
from mes.core.audit import Actor
from mes.core.batch import Batch, Procedure
from mes.core.clock import local_text, parse_utc_text
from mes.core.errors import ChainBroken, InvalidInput, MesError, NotAuthorised, NotFound
from mes.core.heads import verify_anchored
from mes.core.ledger import GENESIS, SealedEntry, verify_chain
from mes.core.review import (
    DECISION_KINDS,
    REVIEW_ACTIONS,
    REVIEW_RECORD_TYPE,
    Decision,
    Finding,
    QaState,
    Review,
    ReviewKind,
    ReviewState,
    note_text,
    open_deviations,
    qa_state,
    release_blockers,
    replay_review,
    unreviewed,
)
from mes.services.batches import procedure_for, verify_ledger
from mes.services.context import Context, authorise
from mes.services.esign import Credentials, authenticate_signer, check_password_first
from mes.store import batches as store
from mes.store import recipes, spokes
from mes.store.models import Batch as BatchRow
from mes.store.models import (
    BatchReview,
)
from mes.store.qa_queue import QueueFilter, age_days, awaiting_after_release, qa_queue_selection
from mes.store.read_models import refresh_batch, summaries_with_other_settings
from mes.store.review import (
    append_review_entries,
    review_head,
    review_heads,
    review_ledger,
    save_disposition,
    undecided_review_heads,
)
from mes.store.review import disposition as stored_disposition
from mes.store.sync import hub_link, last_event, log_event, receipt_times
from mes.store.uow import UnitOfWork


def _require_hub(uow: UnitOfWork) -> None:
    if uow.site.is_spoke:
        raise InvalidInput(
            "Batches are reviewed and released at the hub.",
            what_to_do="Open the hub's QA queue.",
        )


def _procedure(uow: UnitOfWork, row: BatchRow) -> Procedure:
    """The recipe version the batch was made with (the hub's approved version, or installed)."""
    if row.installed_recipe_id is not None:
        installed = recipes.installed(uow.session, row.installed_recipe_id)
        if installed is not None:
            return procedure_for(installed.content_hash, installed.compiled)
    version = recipes.version_with_content(uow.session, row.content_hash)
    if version is None:
        raise NotFound(
            f"Batch {row.number} was made with a recipe version this site does not hold "
            f"(content {row.content_hash[:12]}…)."
        )
    return procedure_for(version.content_hash, version.compiled)


def site_time_zone(uow: UnitOfWork, site: str) -> str:
    """The time zone a batch's times are shown in: the zone of the site that made it."""
    if site == uow.site.code:
        return uow.site.time_zone
    spoke = spokes.spoke(uow.session, site)
    return spoke.time_zone if spoke is not None else uow.site.time_zone


@dataclass
class ReviewView:
    """One batch as QA reviews it: the record, the exceptions, the review chain, the verdict."""

    row: BatchRow
    batch: Batch
    record: list[SealedEntry]
    review: Review
    review_entries: list[SealedEntry]
    chain_problem: str | None
    time_zone: str

    @property
    def state(self) -> ReviewState:
        """The review chain, replayed."""
        return self.review.state

    @property
    def findings(self) -> list[Finding]:
        """Every exception, most serious first."""
        return self.review.findings

    @property
    def qa_state(self) -> QaState:
        """Where the batch stands for QA."""
        return qa_state(self.batch, self.state)

    @property
    def blockers(self) -> list[str]:
        """Why it cannot be released now (empty: it can)."""
        return release_blockers(self.batch, self.state, self.findings)

    @property
    def unreviewed(self) -> list[Finding]:
        """Exceptions still waiting for a "reviewed" signature."""
        return unreviewed(self.findings, self.state)

    @property
    def open_deviations(self) -> list[str]:
        """Deviations not closed by QA."""
        return open_deviations(self.batch, self.state)


def _chain_problem(uow: UnitOfWork, row: BatchRow) -> str | None:
    try:
        verify_ledger(uow, row.id)
    except ChainBroken as broken:
        return broken.message
    except NotFound as missing:
        return missing.message
    if uow.site.is_spoke or not (entries := review_ledger(uow.session, row.id)):
        return None
    public = uow.site.key.public
    disposition = stored_disposition(uow.session, row.id)
    try:
        if disposition is None:
            verify_chain(entries, public)
        else:  # the head the hub signed as it moved: the newest review entries were not deleted
            verify_anchored(entries, public, review_head(disposition), public, uow.site.code)
    except ChainBroken as broken:
        return f"The review record: {broken.message}"
    return None


def load_review(
    uow: UnitOfWork, batch_id: str, *, lock: bool = False, verify: bool = True
) -> ReviewView:
    """A batch with its record and review chain (``lock``: for an action; no permission check).

    ``verify``: check every entry's hash and signature again (the queue skips it: each entry
    was verified when it arrived, and the review page and every action verify again).
    """
    row = store.lock_batch(uow.session, batch_id) if lock else store.batch(uow.session, batch_id)
    if row is None:
        raise NotFound(f"There is no batch {batch_id!r}.", what_to_do="Pick it from the QA queue.")
    zone = site_time_zone(uow, row.site)
    record = store.ledger(uow.session, row.id)
    batch = Batch.replay(_procedure(uow, row), record, time_zone=zone)
    entries = review_ledger(uow.session, row.id)
    problem = _chain_problem(uow, row) if verify else None
    review = Review(
        batch,
        entries,
        record=record,
        key=uow.site.key,
        site=uow.site.code,
        settings=uow.site.review,
        chain_problem=problem,
        received=receipt_times(uow.session, row.id) if row.site != uow.site.code else None,
    )
    return ReviewView(row, batch, record, review, entries, problem, zone)


def review_batch(uow: UnitOfWork, ctx: Context, batch_id: str) -> ReviewView:
    """One batch opened for review by exception (QA), or for its results after release (QC)."""
    try:
        authorise(uow, ctx, Permission.REVIEW_BATCHES)
    except NotAuthorised:
        authorise(uow, ctx, Permission.RECORD_RESULTS)
    return load_review(uow, batch_id)


def commit_review(uow: UnitOfWork, view: ReviewView) -> ReviewView:
    """The review's new entries and its disposition row, committed together; returns ``view``.

    Every service that appends to a batch's review chain ends here (review, results after
    release, look-back), so the QA queue's row and what the batch awaits move with it.
    """
    new = view.review.new_entries
    append_review_entries(uow.session, new)
    at = new[-1].body["at"] if new else ""
    save_disposition(
        uow.session,
        view.review.state,
        key=uow.site.key,
        at=at,
        after_release=view.review.after_release().awaiting,
    )
    # The QA queue's and the board's row of the batch, and its release on the timeline.
    refresh_batch(uow.session, view.batch, view.record, view.review.state, settings=uow.site.review)
    uow.commit()
    return view


def sign_review(
    uow: UnitOfWork,
    ctx: Context,
    view: ReviewView,
    record: Mapping[str, Any],
    kind: ReviewKind,
    credentials: Credentials,
    first_signing_in_session: bool,
    checked: Any,
) -> Any:
    """The signature of ``kind``'s action on ``record``: its meaning and roles are the rule's."""
    rule = REVIEW_ACTIONS[kind]
    assert rule.meaning is not None
    _user, manifestation = authenticate_signer(
        uow,
        ctx,
        record_type=REVIEW_RECORD_TYPE,
        record_id=view.row.id,
        record=record,
        meaning=rule.meaning,
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        signer_roles=sorted(r.value for r in rule.roles),
        checked=checked,
    )
    return manifestation


def _seen(view: ReviewView, seen_review_seq: int | None, seen_record_seq: int | None) -> None:
    """Stale page: the record or its review changed since the page was opened.

    A signature is bound to the record as the reviewer saw it: entries that arrived from the
    spoke meanwhile, or another reviewer's action, make the page out of date.
    """
    if seen_record_seq is not None and seen_record_seq != view.batch.state.last_seq:
        raise InvalidInput(
            f"The record of batch {view.row.number} changed since you opened it: the hub now "
            f"holds entries 1–{view.batch.state.last_seq} from {view.row.site}.",
            what_to_do="Reload the page and review what arrived.",
        )
    state = view.state
    if seen_review_seq is not None and seen_review_seq != state.last_seq:
        last = view.review_entries[-1].body if view.review_entries else None
        when = local_text(parse_utc_text(last["at"]), view.time_zone) if last else ""
        who = f" by {last['actor']['name']} at {when}" if last else ""
        raise InvalidInput(
            f"The review of batch {view.row.number} changed since you opened it{who}.",
            what_to_do="Reload the page and check what was recorded.",
        )


def _opened(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    credentials: Credentials | None,
    seen_review_seq: int | None,
    seen_record_seq: int | None,
) -> tuple[ReviewView, Actor, Any]:
    """How every QA action starts: (view, actor, password check).

    The password is hashed before any lock is taken; then the authority check, the batch locked
    and loaded with both chains verified, and the page the reviewer acted on not out of date.
    """
    _require_hub(uow)
    checked = check_password_first(uow, ctx, credentials) if credentials else None
    actor = authorise(uow, ctx, Permission.REVIEW_BATCHES)
    view = load_review(uow, batch_id, lock=True)
    _seen(view, seen_review_seq, seen_record_seq)
    return view, actor, checked


def mark_reviewed(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    exception: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    note: str | None = None,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> ReviewView:
    """Sign one exception "reviewed" (11.50: name, time, meaning; 11.70: bound to its content).

    A note too long to keep whole is refused before the password is checked.
    """
    note = note_text(note)
    view, actor, checked = _opened(
        uow, ctx, batch_id, credentials, seen_review_seq, seen_record_seq
    )
    record = view.review.exception_record(exception)
    m = sign_review(uow, ctx, view, record, ReviewKind.EXCEPTION_REVIEWED, credentials,
              first_signing_in_session, checked)  # fmt: skip
    view.review.mark_reviewed(exception, note, m, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


def mark_reviewed_together(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    seen: Mapping[str, str],
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    note: str | None = None,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> ReviewView:
    """Sign several exceptions "reviewed" with ONE signature (11.50; 11.70: bound to each).

    ``seen``: each chosen exception's key and the digest of its content as the page showed it.
    The signed record lists every exception's content; one entry of the review chain records
    them all. Refused as a whole, before the password counts, when any one cannot be reviewed
    (a blocking finding never can) or has changed since the page was opened.
    """
    note = note_text(note)
    view, actor, checked = _opened(
        uow, ctx, batch_id, credentials, seen_review_seq, seen_record_seq
    )
    record = view.review.exceptions_record(seen)
    m = sign_review(uow, ctx, view, record, ReviewKind.EXCEPTIONS_REVIEWED, credentials,
              first_signing_in_session, checked)  # fmt: skip
    view.review.mark_reviewed_together(seen, note, m, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


def assess_deviation(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    deviation_id: str,
    assessment: Mapping[str, str | None],
    *,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> bool:
    """Record QA's classification, description, impact, root cause and CAPA of a deviation."""
    view, actor, _ = _opened(uow, ctx, batch_id, None, seen_review_seq, seen_record_seq)
    changed = view.review.assess_deviation(deviation_id, assessment, actor, ctx.at, ctx.terminal)
    if changed:  # nothing recorded: no disposition row either (it would read "under review")
        commit_review(uow, view)
    return changed


def close_deviation(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    deviation_id: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> ReviewView:
    """Close a deviation whose investigation is complete, with QA's signature ("closed")."""
    view, actor, checked = _opened(
        uow, ctx, batch_id, credentials, seen_review_seq, seen_record_seq
    )
    record = view.review.closure_record(deviation_id)
    m = sign_review(uow, ctx, view, record, ReviewKind.DEVIATION_CLOSED, credentials,
              first_signing_in_session, checked)  # fmt: skip
    view.review.close_deviation(deviation_id, m, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


def decide_batch(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    decision: Decision | str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    reason: str | None = None,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> ReviewView:
    """Release or reject a batch with QA's signature ("released" / "rejected").

    Release is refused, naming every reason, while the record fails verification, entries are
    pending from the spoke, its times cannot be true, a deviation is open or an exception is not
    reviewed — and while any entry is dated later than the release (ReleasePrecedesRecord). The
    rules are checked before the password counts.
    """
    try:
        decision = Decision(decision)
    except ValueError:
        raise InvalidInput(
            f"'{decision}' is not a decision.", what_to_do="Use released or rejected."
        ) from None
    view, actor, checked = _opened(
        uow, ctx, batch_id, credentials, seen_review_seq, seen_record_seq
    )
    record = view.review.decision_record(decision, reason, at=ctx.at)  # rules, then password
    m = sign_review(uow, ctx, view, record, DECISION_KINDS[decision], credentials,
              first_signing_in_session, checked)  # fmt: skip
    view.review.decide(decision, reason, m, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


# --- after release (mes.core.after_release) ------------------------------------------------------


def record_result_at_hub(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    fields: Mapping[str, Any],
    *,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> ReviewView:
    """The hub's QC enters a result the recipe declared pending at release (review chain).

    ``fields``: result, value, reference, within_specification (where the recipe gives no rule),
    method; for a correction also corrects (the entry's key) and reason. A result out of
    specification opens an after-release event: the hub's alerts show it and nothing else is
    signed on the batch until the treating physician's notification is recorded.
    """
    _require_hub(uow)
    actor = authorise(uow, ctx, Permission.RECORD_RESULTS)
    view = load_review(uow, batch_id, lock=True)
    _seen(view, seen_review_seq, seen_record_seq)
    view.review.record_result(fields, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


def notify_physician_at_hub(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    fields: Mapping[str, str],
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> ReviewView:
    """QA records, signed, that the treating physician was told of a result out of specification.

    ``fields``: result, physician (who was told), how (phone, in_person, email, letter),
    told_at (UTC text: when). By whom is the signer ("notified", 21 CFR 11.50).
    """
    view, actor, checked = _opened(
        uow, ctx, batch_id, credentials, seen_review_seq, seen_record_seq
    )
    record = view.review.notification_record(ctx.at, **fields)
    m = sign_review(uow, ctx, view, record, ReviewKind.PHYSICIAN_NOTIFIED, credentials,
              first_signing_in_session, checked)  # fmt: skip
    view.review.notify_physician(record, m, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


def certify_final(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    seen_review_seq: int | None = None,
    seen_record_seq: int | None = None,
) -> ReviewView:
    """QA signs the final certification ("certified final"), once every pending result is in.

    Refused before release, a second time, while a result is pending or out of specification,
    and while a physician's notification is due (mes.core.after_release) — before the password
    counts.
    """
    view, actor, checked = _opened(
        uow, ctx, batch_id, credentials, seen_review_seq, seen_record_seq
    )
    record = view.review.certification_record()
    m = sign_review(uow, ctx, view, record, ReviewKind.BATCH_CERTIFIED_FINAL, credentials,
              first_signing_in_session, checked)  # fmt: skip
    view.review.certify_final(m, actor, ctx.at, ctx.terminal)
    return commit_review(uow, view)


# --- the QA queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    """One batch in the QA queue."""

    id: str
    number: str
    site: str
    product: str
    recipe: str
    status: str  # the batch's own status (from the spoke)
    qa_state: QaState
    completed_at: str | None
    created_at: str
    age_days: int
    open_deviations: int
    unreviewed: int
    blocked: bool  # the record fails verification or its times cannot be true
    decision_by: str | None
    # Why a released batch is still in the queue (mes.core.after_release.awaiting_words).
    after_release: tuple[str, ...] = ()


@dataclass(frozen=True)
class Queue:
    """The QA queue: rows after the filters, counts over every batch, and the filter choices."""

    rows: list[QueueRow]
    counts: dict[str, int]
    sites: list[str]
    products: list[str]
    matching: int = 0  # batches the filters match (the rows are the first ``limit`` of them)
    # Summaries whose exception count came from other [review] settings (until a rebuild).
    other_settings: int = 0


def qa_queue(
    uow: UnitOfWork,
    ctx: Context,
    *,
    site: str | None = None,
    product: str | None = None,
    state: str | None = None,
    min_age_days: int | None = None,
    limit: int = 100,
) -> Queue:
    """Every batch received, filterable by site, product (recipe code), QA state and age.

    Counts of what needs attention are over all batches. Read from the batch summaries, which
    ingest and every QA action keep in step with the batch's record and review: the exception
    counts are what its review page shows.
    """
    authorise(uow, ctx, Permission.REVIEW_BATCHES)
    if state is not None and state not in {s.value for s in QaState}:
        raise InvalidInput(
            f"'{state}' is not a QA state.",
            what_to_do=f"Use one of: {', '.join(s.value for s in QaState)}.",
        )
    selection = qa_queue_selection(
        uow.session,
        ctx.at,
        QueueFilter(site=site, product=product, state=state, min_age_days=min_age_days),
        limit,
    )
    counts = selection.counts
    listed = []
    for queued in selection.batches:
        summary, qs = queued.summary, queued.qa_state
        decided = qs in (QaState.RELEASED, QaState.REJECTED)
        listed.append(
            QueueRow(
                id=summary.batch_id,
                number=summary.number,
                site=summary.site,
                product=summary.recipe_code,
                recipe=f"{summary.recipe_code} v{summary.recipe_version}",
                status=summary.status,
                qa_state=qs,
                completed_at=summary.completed_at,
                created_at=summary.created_at,
                age_days=queued.age_days,
                # A decided batch's review is closed: nothing is waiting on it.
                open_deviations=0 if decided else summary.open_deviations,
                unreviewed=0 if decided else summary.exceptions,
                # Entries still to come are where a batch in progress stands ("At the spoke"),
                # not an alarm: only a record that fails verification or has false times is.
                blocked=False if decided else summary.blocking,
                decision_by=queued.decided_by,
                after_release=tuple(awaiting_words(queued.after_release))
                if queued.after_release is not None
                else (),
            )
        )
    counts["needs_attention"] = (
        counts[QaState.AWAITING_REVIEW] + counts[QaState.UNDER_REVIEW] + counts.get(EVENT, 0)
    )
    return Queue(
        listed,
        counts,
        selection.sites,
        selection.products,
        matching=selection.matching,
        other_settings=summaries_with_other_settings(uow.session, uow.site.review.digest()),
    )


def awaiting_results(uow: UnitOfWork, ctx: Context, limit: int = 200) -> list[QueueRow]:
    """Released batches still awaiting something after release: QC's list of results to enter.

    A result out of specification not closed first, then the provisional batches (results
    pending or final certification to sign). QA reads it too.
    """
    try:
        authorise(uow, ctx, Permission.RECORD_RESULTS)
    except NotAuthorised:
        authorise(uow, ctx, Permission.REVIEW_BATCHES)
    return [
        QueueRow(
            id=summary.batch_id,
            number=summary.number,
            site=summary.site,
            product=summary.recipe_code,
            recipe=f"{summary.recipe_code} v{summary.recipe_version}",
            status=summary.status,
            qa_state=QaState(summary.qa_state),
            completed_at=summary.completed_at,
            created_at=summary.created_at,
            age_days=age_days(summary, ctx.at),
            open_deviations=0,
            unreviewed=0,
            blocked=False,
            decision_by=None,
            after_release=tuple(awaiting_words(state)) if state is not None else (),
        )
        for summary, state in awaiting_after_release(uow.session, limit)
    ]


# --- back to the spoke ------------------------------------------------------------------------

MAX_REVIEW_ENTRIES = 2000


def review_updates(uow: UnitOfWork, site: str, known: Mapping[str, int]) -> list[SealedEntry]:
    """Hub: the review entries of ``site``'s batches that the spoke does not hold yet.

    ``known``: the spoke's review head (last seq) per batch it still waits on (0: it holds none).
    Batches it does not name — decided ones it holds in full — cost nothing.
    """
    named = list(known)
    heads = review_heads(uow.session, site, named)
    out: list[SealedEntry] = []
    for batch_id, last_seq in heads:
        have = int(known[batch_id])
        if last_seq > have:
            out.extend(review_ledger(uow.session, batch_id, after_seq=have))
        if len(out) >= MAX_REVIEW_ENTRIES:
            break
    return out


def awaited_reviews(uow: UnitOfWork) -> dict[str, int]:
    """Spoke: the batches the hub may still decide, with our review head for each.

    Only complete or aborted batches (QA decides nothing else), and not those already decided,
    so a spoke with nothing awaiting a decision does not ask at all.
    """
    return undecided_review_heads(uow.session)


class ReviewEntriesRefused(MesError):
    """Review entries from the hub that do not verify or do not continue our copy."""

    http_status = 422


def receive_review_entries(
    uow: UnitOfWork, at: datetime, entries: Sequence[SealedEntry], *, via: str = "network"
) -> int:
    """Spoke: store the hub's review entries after checking each against the pinned hub key.

    Each batch's entries must continue the copy held here (seq and prev), hash to what they
    say and carry the hub's signature; a batch whose entries do not is refused and logged,
    the others are stored. Returns how many entries were stored.
    """
    hub_key = uow.site.hub_key
    link = hub_link(uow.session)
    if hub_key is None or link is None:
        raise InvalidInput("This spoke is not enrolled with a hub.")
    by_batch: dict[str, list[SealedEntry]] = {}
    for entry in {(e.seq, e.hash): e for e in entries}.values():  # one copy of each entry
        by_batch.setdefault(str(entry.body.get("batch")), []).append(entry)
    stored = 0
    for batch_id, new in by_batch.items():
        new.sort(key=lambda e: e.seq)
        row = store.lock_batch(uow.session, batch_id)
        try:
            if row is None:
                raise ReviewEntriesRefused(
                    f"The hub sent review entries of unknown batch {batch_id}."
                )
            held = review_ledger(uow.session, batch_id)
            head_seq, head_hash = (held[-1].seq, held[-1].hash) if held else (0, GENESIS)
            fresh = [e for e in new if e.seq > head_seq]
            if not fresh:
                continue
            if any(e.body.get("site") != link.hub_code for e in fresh):
                raise ReviewEntriesRefused(f"Review entries of {row.number} name another site.")
            # The whole chain, ours and new, verifies with the hub's key from the start.
            verify_chain([*held, *fresh], hub_key)
            if fresh[0].body["prev"] != head_hash:  # pragma: no cover - verify_chain checks it
                raise ReviewEntriesRefused(f"Review entries of {row.number} do not continue ours.")
            state = replay_review(batch_id, [*held, *fresh])
        except (ChainBroken, ReviewEntriesRefused, KeyError, ValueError, TypeError) as err:
            reason = (err.message if isinstance(err, MesError) else str(err))[:2000]
            if _last_review_refusal(uow, batch_id) != reason:  # once, not every round
                log_event(
                    uow.session, at=at, action="review", outcome="refused", peer=link.hub_code,
                    via=via, batch_id=batch_id, item=row.number if row else None, reason=reason,
                )  # fmt: skip
            continue
        append_review_entries(uow.session, fresh)
        following = after_release_state(
            _procedure(uow, row), [e.body for e in store.ledger(uow.session, batch_id)],
            state.followups,
        )  # fmt: skip
        save_disposition(
            uow.session, state, key=uow.site.key, at=fresh[-1].body["at"],
            after_release=following.awaiting,
        )  # fmt: skip
        log_event(
            uow.session, at=at, action="review", outcome="accepted", peer=link.hub_code,
            via=via, batch_id=batch_id, item=row.number, first_seq=fresh[0].seq,
            last_seq=fresh[-1].seq, stored=len(fresh),
        )  # fmt: skip
        stored += len(fresh)
    uow.commit()
    return stored


def _last_review_refusal(uow: UnitOfWork, batch_id: str) -> str | None:
    """The reason of the batch's last review event, if that event was a refusal."""
    last = last_event(uow.session, "review", batch_id=batch_id)
    return last.reason if last is not None and last.outcome == "refused" else None


def disposition_of(uow: UnitOfWork, batch_id: str) -> BatchReview | None:
    """The batch's disposition row, if QA has recorded anything (both roles)."""
    return stored_disposition(uow.session, batch_id)


__all__ = [
    "Queue",
    "QueueRow",
    "ReviewView",
    "assess_deviation",
    "awaited_reviews",
    "close_deviation",
    "commit_review",
    "decide_batch",
    "disposition_of",
    "load_review",
    "mark_reviewed",
    "mark_reviewed_together",
    "qa_queue",
    "receive_review_entries",
    "review_batch",
    "review_updates",
    "sign_review",
]
