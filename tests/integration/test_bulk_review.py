"""QA marks several exceptions reviewed with ONE e-signature (mes.services.review).

The signed record lists each exception's content, so the one signature is bound to every one of
them (21 CFR 11.70); one entry of the review chain records them all, and the chain — old
single-exception entries and the new entry alike — verifies and replays. A finding whose content
changed since the page was opened, a blocking finding (pending, chain, clock) or a stale page is
refused as a whole, before anything is signed.

Batches are made at spoke SPK1 and reviewed at the hub, on two databases of the same kind.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from support import PASSWORD
from sync_sites import net  # noqa: F401 - the fixture
from test_batch_release import (
    QA_AT,
    alert_batch,
    awaited,
    begin,
    decide,
    enrolled,
    held_at_spoke,
    mark,
    qa,
    receive,
    refused,
    send,
    updates,
    view,
)
from test_issued_record import INVESTIGATION, one_line, page_texts, sent_to_the_hub, written

from mes.core.canonical import content_hash
from mes.core.certificate import load_certificate
from mes.core.errors import InvalidInput
from mes.core.esign import signature_binds
from mes.core.ledger import verify_chain
from mes.core.record import manifestation_text
from mes.core.review import Decision, QaState, ReviewKind, ReviewSettings, replay_review
from mes.pdf.issue import issue_record
from mes.pdf.verify import verify_record_pdf
from mes.services import review
from mes.services.esign import Credentials
from mes.services.record import batch_record
from mes.store.review import review_ledger
from mes.store.uow import UnitOfWork


def together(net, batch_id: str, seen: dict[str, str], **options) -> review.ReviewView:  # noqa: F811 - a Network
    with net.hub() as uow:
        return review.mark_reviewed_together(
            uow, qa(net), batch_id, seen, Credentials(PASSWORD),
            first_signing_in_session=False, **options,
        )  # fmt: skip


def as_seen(findings) -> dict[str, str]:
    """What a page showed: each exception's key and the digest of its content."""
    return {f.key: f.digest for f in findings}


def test_one_signature_reviews_several_exceptions_and_is_bound_to_each(net):  # noqa: F811
    site = net.connected()
    batch_id = alert_batch(site)  # a value outside alert limits and a rubber stamp
    send(net, site, batch_id)
    opened = view(net, batch_id)
    waiting = opened.unreviewed
    assert [f.category.value for f in waiting] == ["alert_limit", "rubber_stamp"]

    done = together(net, batch_id, as_seen(waiting), note="Both within the product's history")

    assert done.unreviewed == [] and done.blockers == []
    [entry] = view(net, batch_id).review_entries  # one entry of the review chain for both
    assert entry.body["kind"] == ReviewKind.EXCEPTIONS_REVIEWED
    payload = entry.body["payload"]
    record, signature = payload["record"], payload["manifestation"]
    # The signed record lists the content of each exception exactly as the page showed it.
    assert record["exceptions"] == [f.content for f in waiting]
    assert [content_hash(c) for c in record["exceptions"]] == [f.digest for f in waiting]
    assert record["record_head"] == list(opened.review.record_head)
    assert signature_binds(signature, record)
    assert signature["meaning"] == "reviewed" and signature["username"] == "quinn"
    # Each exception is reviewed under that one signature.
    for finding in waiting:
        item = done.state.reviewed[finding.key]
        assert item.signature == signature and item.together == 2
        assert item.note == "Both within the product's history"
    # The review chain verifies with the hub's key and replays to the same state.
    with net.hub() as uow:
        entries = review_ledger(uow.session, batch_id)
        verify_chain(entries, net.hub_key.public)
        assert review.load_review(uow, batch_id).chain_problem is None
    assert replay_review(batch_id, entries).reviewed == done.state.reviewed
    assert decide(net, batch_id).state.decision is Decision.RELEASED


def test_old_single_reviews_and_a_bulk_review_verify_together_in_one_chain(net):  # noqa: F811
    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    first, second = view(net, batch_id).unreviewed
    mark(net, batch_id, first.key)  # an entry of the kind every existing chain holds
    done = together(net, batch_id, as_seen([second]))
    kinds = [e.body["kind"] for e in view(net, batch_id).review_entries]
    assert kinds == [ReviewKind.EXCEPTION_REVIEWED, ReviewKind.EXCEPTIONS_REVIEWED]
    with net.hub() as uow:
        verify_chain(review_ledger(uow.session, batch_id), net.hub_key.public)
    assert done.state.reviewed[first.key].together == 1
    assert done.state.reviewed[second.key].together == 1


def test_a_finding_changed_since_the_page_was_opened_is_refused_and_nothing_is_signed(net):  # noqa: F811
    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    seen = as_seen(view(net, batch_id).unreviewed)
    # The hub's rubber-stamp threshold changes: the finding now reads differently.
    stricter = replace(net.hub_site, review=ReviewSettings(rubber_stamp_seconds=45))

    def act() -> None:
        with UnitOfWork(net.hub_sessions, stricter) as uow:
            review.mark_reviewed_together(
                uow, qa(net), batch_id, seen, Credentials(PASSWORD),
                first_signing_in_session=False,
            )  # fmt: skip

    err = refused(net, InvalidInput, act)
    assert err.message.startswith(
        "''Check the bag' verified 0 s after it was performed' has changed since you opened the "
        "page: it now reads"
    )
    assert "(threshold 45 s)" in err.message
    assert err.what_to_do == "Reload the page and review it as it reads now."
    # A digest that was never shown is refused the same way.
    [key, *_] = seen
    refused(net, InvalidInput, lambda: together(net, batch_id, {**seen, key: "0" * 64}))
    assert len(view(net, batch_id).unreviewed) == 2


def test_blocking_findings_are_never_reviewed_in_bulk(net):  # noqa: F811
    site = net.connected()
    batch_id, _number = begin(site)  # a rubber stamp, and the batch still in progress
    send(net, site, batch_id)
    opened = view(net, batch_id)
    assert opened.qa_state is QaState.AT_SPOKE
    pending = next(f for f in opened.findings if f.key == "pending")
    assert pending.blocking
    err = refused(net, InvalidInput, lambda: together(net, batch_id, as_seen(opened.findings)))
    assert err.message.startswith("'The record is not complete' cannot be marked reviewed:")
    assert view(net, batch_id).state.reviewed == {}


def test_nothing_chosen_or_a_stale_page_is_refused(net):  # noqa: F811
    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    opened = view(net, batch_id)
    err = refused(net, InvalidInput, lambda: together(net, batch_id, {}))
    assert err.message == "No exception was chosen."
    first, second = opened.unreviewed
    mark(net, batch_id, first.key)  # another reviewer, meanwhile
    stale = {"seen_review_seq": opened.state.last_seq,
             "seen_record_seq": opened.batch.state.last_seq}  # fmt: skip
    err = refused(net, InvalidInput, lambda: together(net, batch_id, as_seen([second]), **stale))
    assert err.message.startswith(f"The review of batch {opened.row.number} changed since")
    # Already reviewed: refused even on a fresh page, naming who reviewed it.
    err = refused(net, InvalidInput, lambda: together(net, batch_id, as_seen([first, second])))
    assert "was already reviewed by Quinn" in err.message


def test_the_printed_record_shows_each_exception_reviewed_with_the_one_signature(net):  # noqa: F811
    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    waiting = view(net, batch_id).unreviewed
    together(net, batch_id, as_seen(waiting))
    with net.hub() as uow:
        printed = batch_record(uow, qa(net), batch_id).record
    assert [line.title for line in printed.reviewed] == [f.title for f in waiting]
    [signature] = {line.signature for line in printed.reviewed}
    assert signature.meaning == "Reviewed" and signature.user_id == "quinn"
    [line] = [a for a in printed.audit if a.chain == "review"]
    titles = "; ".join(f"'{f.title}'" for f in waiting)
    assert f"reviewed 2 exceptions under one signature: {titles} — e-signature of" in line.text


def test_a_batch_in_progress_is_at_the_spoke_in_the_queue_not_blocked(net):  # noqa: F811
    site = net.connected()
    batch_id, number = begin(site)
    send(net, site, batch_id)
    with net.hub() as uow:
        queue = review.qa_queue(uow, qa(net))
    [row] = [r for r in queue.rows if r.number == number]
    assert row.qa_state is QaState.AT_SPOKE and not row.blocked


def test_the_signed_pdf_prints_each_exception_with_the_one_signature_and_verifies(
    net,  # noqa: F811
    tmp_path,
):
    runtime, certificate, batch_id, deviation = sent_to_the_hub(net)
    with net.hub() as uow:
        review.assess_deviation(uow, qa(net), batch_id, deviation, INVESTIGATION)
    with net.hub() as uow:
        review.close_deviation(
            uow, qa(net), batch_id, deviation, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    waiting = view(net, batch_id).unreviewed
    assert len({f.category for f in waiting}) >= 2
    done = together(net, batch_id, as_seen(waiting))
    assert decide(net, batch_id).state.decision is Decision.RELEASED
    issued = issue_record(runtime, qa(net, at=QA_AT + timedelta(hours=2)), batch_id)
    checked = verify_record_pdf(issued.pdf, [load_certificate(certificate)])
    assert checked.problems == []
    text = one_line(" ".join(page_texts(written(tmp_path, "bulk.pdf", issued.pdf))))
    signed = manifestation_text(done.state.reviewed[waiting[0].key].signature, done.time_zone)
    for finding in waiting:
        assert one_line(finding.title) in text, finding.title
    assert text.count(f"Reviewed: {signed}") == len(waiting)
    assert f"reviewed {len(waiting)} exceptions under one signature:" in text


def test_a_bulk_review_syncs_back_to_the_spoke_which_verifies_and_replays_it(net):  # noqa: F811
    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    enrolled(site)
    together(net, batch_id, as_seen(view(net, batch_id).unreviewed))
    decide(net, batch_id)
    with net.hub() as uow:
        hub_chain = review_ledger(uow.session, batch_id)
    assert receive(site, updates(net, awaited(site))) == len(hub_chain) == 2
    assert held_at_spoke(site, batch_id) == hub_chain
    with site.uow() as uow:
        assert review.disposition_of(uow, batch_id).decision == "released"
