"""One "reviewed" signature over several exceptions (mes.core.review), without a database.

The signed record lists each exception's content; the one review-chain entry names the same
exceptions; replay refuses an entry whose list differs from what its signature is bound to, even
one the hub re-sealed (a well-formed chain carrying a forged list).
"""

from __future__ import annotations

import pytest
from test_review_rules import (
    HUB_KEY,
    QA_AT,
    QA_DESK,
    QUINN,
    manifestation,
    mark,
    open_review,
    with_deviation,
)

from mes.core.errors import ChainBroken, InvalidInput
from mes.core.esign import Meaning, signature_binds
from mes.core.ledger import seal, verify_chain
from mes.core.review import ReviewKind, replay_review, review_entry_text, unreviewed


def test_one_entry_signed_once_reviews_every_listed_exception():
    review = open_review(with_deviation())
    waiting = unreviewed(review.findings, review.state)
    assert len(waiting) >= 2
    seen = {f.key: f.digest for f in waiting}
    record = review.exceptions_record(seen)
    assert record["exceptions"] == [f.content for f in waiting]
    m = manifestation(record, Meaning.REVIEWED)
    review.mark_reviewed_together(seen, "Seen together", m, QUINN.actor, QA_AT, QA_DESK)
    [entry] = review.new_entries
    assert entry.body["kind"] == ReviewKind.EXCEPTIONS_REVIEWED
    assert signature_binds(entry.body["payload"]["manifestation"], record)
    assert unreviewed(review.findings, review.state) == []
    assert {item.together for item in review.state.reviewed.values()} == {len(waiting)}
    verify_chain(review.new_entries, HUB_KEY.public)
    assert replay_review(review.batch.state.id, review.new_entries).reviewed == (
        review.state.reviewed
    )
    text = review_entry_text(entry.body)
    assert text.startswith(f"reviewed {len(waiting)} exceptions under one signature: '")
    assert "meaning 'reviewed'" in text


def test_a_chain_whose_bulk_entry_lists_other_exceptions_than_it_signed_does_not_replay():
    review = open_review(with_deviation())
    first, second, *_ = unreviewed(review.findings, review.state)
    seen = {first.key: first.digest}
    m = manifestation(review.exceptions_record(seen), Meaning.REVIEWED)
    review.mark_reviewed_together(seen, None, m, QUINN.actor, QA_AT, QA_DESK)
    body = dict(review.new_entries[0].body)
    listed = [{"exception": second.key, "title": second.title}]
    forged = seal({**body, "payload": {**body["payload"], "exceptions": listed}}, HUB_KEY)
    verify_chain([forged], HUB_KEY.public)  # well sealed: only its content gives it away
    with pytest.raises(ChainBroken, match="not those its signature is bound to"):
        replay_review(review.batch.state.id, [forged])


def test_the_whole_set_is_refused_when_one_cannot_be_reviewed_or_has_changed():
    review = open_review(with_deviation())
    waiting = unreviewed(review.findings, review.state)
    seen = {f.key: f.digest for f in waiting}
    settled = next(f for f in review.findings if f.by_closure)
    with pytest.raises(InvalidInput, match="settled by closing the deviation"):
        review.exceptions_record({**seen, settled.key: settled.digest})
    with pytest.raises(InvalidInput, match="has changed since you opened the page"):
        review.exceptions_record({**seen, waiting[0].key: "0" * 64})
    mark(review, waiting[0].key)
    with pytest.raises(InvalidInput, match="already reviewed"):
        review.exceptions_record(seen)
