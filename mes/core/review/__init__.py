"""QA review by exception, deviation investigation and batch disposition (at the hub).

A batch's record is the spoke's ledger: it is never written to at the hub. What QA does with it —
each exception marked reviewed, each deviation classified, investigated and closed, the release
or rejection — is a second hash chain per batch, the **review chain**, sealed with the hub's
key. Its entries have exactly the shape of a batch ledger entry (``batch, seq, prev, at, site,
terminal, actor, kind, payload``), so the same code verifies, stores and ships them; they sync
back to the spoke, whose board then shows the decision.

**Review by exception.** :func:`find_exceptions` reads the spoke's record and lists what a
reviewer must judge, most serious first:

* the record cannot be trusted yet — its chain fails verification, or entries are still
  pending from the spoke (these block release outright; they cannot be "reviewed" away);
* times that cannot be true (mes.core.chronology) — entries dated later than the hub received
  them, or earlier than an entry before them, beyond the allowed clock skew; these block release
  too: a record whose times are false is investigated at the spoke and rejected, never reviewed
  away by one signature;
* deviations (worked and closed in their own workflow, not by marking them reviewed);
* values outside action or alert limits; corrections, with the original, the new value and the
  reason; phases signed late (the performer's signature more than a margin after the phase's
  last data); verifications signed within seconds of the performance (a rubber-stamp
  pattern); phases that needed a second person and were not verified; comments, holds and the
  reason of an abort; scans the rules refused.

Every other exception needs a "reviewed" e-signature naming its key — except a value outside its
action limits that raised a deviation: that excursion is judged once, in the deviation's
investigation, and settled by its closure. The signature is bound to
the exception's content (21 CFR 11.70), so a later correction, which is a new exception, needs its
own review.

**Release** (EU GMP Annex 16; 21 CFR 211.192; 11.50): QA signs "released" or "rejected" (a reason
is required to reject). Release is refused while the chain fails, entries are pending, a
deviation is open or an exception is not reviewed — :func:`release_blockers` says which — and
while any entry of the record or of its review is dated later than the release itself
(:class:`ReleasePrecedesRecord`).
"""

from mes.core.review.actions import DECISION_KINDS, REVIEW_ACTIONS, Review
from mes.core.review.chain import (
    ASSESSMENT_FIELDS,
    ASSESSMENT_ONE_LINE,
    ASSESSMENT_TITLES,
    QA_STATE_TITLES,
    REVIEW_RECORD_TYPE,
    Classification,
    Decision,
    DeviationReview,
    QaState,
    ReleasePrecedesRecord,
    ReleaseRefused,
    ReviewClosed,
    ReviewedItem,
    ReviewKind,
    ReviewState,
    assessment_text,
    note_text,
    qa_state,
    qa_state_of,
    replay_review,
    review_entry_text,
)
from mes.core.review.findings import (
    CATEGORY_TITLES,
    CLOCK_WHAT_TO_DO,
    Category,
    Finding,
    ReviewSettings,
    clock_findings,
    find_exceptions,
    open_deviations,
    pending_reason,
    release_blockers,
    unreviewed,
)

__all__ = [
    "ASSESSMENT_FIELDS",
    "ASSESSMENT_ONE_LINE",
    "ASSESSMENT_TITLES",
    "CATEGORY_TITLES",
    "CLOCK_WHAT_TO_DO",
    "DECISION_KINDS",
    "QA_STATE_TITLES",
    "REVIEW_ACTIONS",
    "REVIEW_RECORD_TYPE",
    "Category",
    "Classification",
    "Decision",
    "DeviationReview",
    "Finding",
    "QaState",
    "ReleasePrecedesRecord",
    "ReleaseRefused",
    "Review",
    "ReviewClosed",
    "ReviewKind",
    "ReviewSettings",
    "ReviewState",
    "ReviewedItem",
    "assessment_text",
    "clock_findings",
    "find_exceptions",
    "note_text",
    "open_deviations",
    "pending_reason",
    "qa_state",
    "qa_state_of",
    "release_blockers",
    "replay_review",
    "review_entry_text",
    "unreviewed",
]
