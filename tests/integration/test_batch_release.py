"""QA review, release and rejection at the hub, and the decision's trip back to the spoke.

Batches are made at spoke SPK1 through its real services (a viability outside action limits
raises a deviation, a verification at the moment of the performance is a rubber stamp…),
pushed to the hub as chunks, and reviewed there by QA Quinn (mes.services.review). Release is
refused while a deviation is open, an exception is not reviewed, entries are still pending or
the record fails verification — each refusal names its reason and writes nothing. The review
chain then syncs back to the spoke, which checks every entry against the pinned hub key.

Hub and spoke run on two separate databases of the same kind (see ``sync_sites``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from batch_helpers import SCANNER, Spoke
from recipe_driver import din_barcode, din_for, run_batch
from sqlalchemy import Engine, func, select, update
from support import NOW, PASSWORD, user_ctx
from sync_sites import CLI, SPOKE, Network, net, recipe_file

from mes.core.batch import Action
from mes.core.clock import local_text, utc_text
from mes.core.errors import AuthenticationFailed, InvalidInput, MesError, NotAuthorised
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry, seal, verify_chain
from mes.core.review import Decision, QaState, ReleaseRefused, ReviewClosed
from mes.services import batches, ingest, outbox, review
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.users import add_user
from mes.store.models import Batch as BatchRow
from mes.store.models import BatchEntry, BatchReview, BatchReviewEntry, SyncEvent, User
from mes.store.review import review_ledger

QA_AT = NOW + timedelta(days=1)  # QA works on the batches the day after they were made
HOURS = timedelta(hours=1)
INVESTIGATION = {
    "classification": "minor",
    "description": "Viability below the action limit at the count.",
    "impact": "None: the cells were re-counted within limits.",
    "root_cause": "Sample left too long before counting.",
}


# --- batches at the spoke, sent to the hub ----------------------------------------------------


def finish(site: Spoke, batch_id: str, at: datetime = NOW) -> None:
    """Culture and harvest 3 h after ``at`` (the count), then Sam signs the batch complete."""
    later = at + 3 * HOURS
    site.do_culture_and_harvest(batch_id, at=later)
    with site.uow() as uow:
        batches.complete_batch(
            uow, site.ctx("sam", later), batch_id, Credentials(PASSWORD, "sam"),
            first_signing_in_session=True,
        )  # fmt: skip


def begin(site: Spoke, at: datetime = NOW) -> tuple[str, str]:
    """Start a batch with a donation of its own (one donation feeds one batch) and check its bag,
    verified by Sam the moment Olivia performed it (a rubber stamp); (ID, number)."""
    with site.uow() as uow:
        serial = uow.session.execute(select(func.count()).select_from(BatchRow)).scalar_one() + 1
    din = din_for(serial, at.year)
    batch = site.start(at=at, din=din, patient_id=f"PAT-{serial:04d}")
    batch_id = batch.state.id
    site.start_phase(batch_id, "check_bag", at=at)
    result = site.record(
        batch_id, "check_bag", at=at, values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": din_barcode(din), "bag_patient": f"PAT-{serial:04d}"},
    )  # fmt: skip
    assert not result.field_errors, result.field_errors
    site.sign(batch_id, "check_bag", at=at)
    site.sign(batch_id, "check_bag", Action.VERIFY, who="sam", at=at)
    return batch_id, batch.state.number


def with_deviation(site: Spoke, at: datetime = NOW) -> tuple[str, str]:
    """A complete batch with a deviation (viability 60 %, outside action limits, commented and
    acknowledged) and a verification signed at the moment of the performance; (ID, deviation)."""
    batch_id, number = begin(site, at)
    deviation = f"{number}-D1"
    site.do_count(batch_id, at=at, viability="60.0")
    site.acknowledge(batch_id, deviation, who="sam", at=at + timedelta(minutes=5))
    finish(site, batch_id, at)
    return batch_id, deviation


def alert_batch(site: Spoke) -> str:
    """A complete batch with a viability of 80 % (outside alert limits) and a rubber stamp."""
    batch_id, _number = begin(site)
    site.do_count(batch_id, viability="80.0")
    finish(site, batch_id)
    return batch_id


def aborted(site: Spoke, at: datetime = NOW) -> str:
    """A batch whose bag was checked, then aborted by Sam."""
    batch_id, _number = begin(site, at)
    with site.uow() as uow:
        batches.abort_batch(
            uow, site.ctx("sam", at + HOURS), batch_id, "Patient withdrew consent",
            Credentials(PASSWORD, "sam"), first_signing_in_session=True,
        )  # fmt: skip
    return batch_id


def send(
    net: Network,
    site: Spoke,
    batch_id: str,
    after: int = 0,
    size: int = 500,
    at: datetime = NOW + 6 * HOURS,
) -> int:
    """Push the batch's entries after ``after`` (at most ``size``) to the hub at ``at`` (after
    they were recorded: an entry received before its time is flagged); the last seq."""
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, at, batch_id, after, size)
    with net.hub() as uow:
        ingest.ingest_chunk(uow, at, SPOKE, token)
    return last


# --- QA at the hub ------------------------------------------------------------------------------


def qa(net: Network, who: str = "quinn", at: datetime = QA_AT) -> Context:
    return user_ctx(net.hub_ids[who], at=at, terminal="QA office")


def view(net: Network, batch_id: str) -> review.ReviewView:
    with net.hub() as uow:
        return review.review_batch(uow, qa(net), batch_id)


def mark(net: Network, batch_id: str, key: str, ctx: Context | None = None, **options: Any):
    with net.hub() as uow:
        return review.mark_reviewed(
            uow, ctx or qa(net), batch_id, key, Credentials(PASSWORD),
            first_signing_in_session=False, **options,
        )  # fmt: skip


def assess(
    net: Network,
    batch_id: str,
    deviation: str,
    ctx: Context | None = None,
    seen: int | None = None,
    **fields: str,
) -> bool:
    with net.hub() as uow:
        return review.assess_deviation(
            uow, ctx or qa(net), batch_id, deviation, fields, seen_review_seq=seen
        )


def close(net: Network, batch_id: str, deviation: str) -> review.ReviewView:
    with net.hub() as uow:
        return review.close_deviation(
            uow, qa(net), batch_id, deviation, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip


def decide(
    net: Network,
    batch_id: str,
    decision: Decision | str = Decision.RELEASED,
    *,
    ctx: Context | None = None,
    password: str = PASSWORD,
    **options: Any,
) -> review.ReviewView:
    with net.hub() as uow:
        return review.decide_batch(
            uow, ctx or qa(net), batch_id, decision, Credentials(password),
            first_signing_in_session=False, **options,
        )  # fmt: skip


def settle(net: Network, batch_id: str, deviation: str | None = None) -> None:
    """Close the deviation (if any) and mark every exception reviewed."""
    if deviation is not None:
        assess(net, batch_id, deviation, **INVESTIGATION)
        close(net, batch_id, deviation)
    for finding in view(net, batch_id).unreviewed:
        mark(net, batch_id, finding.key)


def written(net: Network) -> tuple[int, list[tuple]]:
    """What the review has written at the hub: its entries and the disposition rows."""
    with net.hub() as uow:
        entries = uow.session.execute(
            select(func.count()).select_from(BatchReviewEntry)
        ).scalar_one()
        rows = uow.session.execute(
            select(BatchReview.batch_id, BatchReview.decision, BatchReview.last_seq)
        ).all()
    return entries, sorted(tuple(r) for r in rows)


def refused(net: Network, error: type[MesError], action: Callable[[], object]) -> MesError:
    """``action`` raises ``error`` and the hub's review records are as before."""
    before = written(net)
    with pytest.raises(error) as caught:
        action()
    assert type(caught.value) is error, caught.value
    assert written(net) == before
    return caught.value


def failed_attempts(net: Network, who: str = "quinn") -> int:
    with net.hub() as uow:
        return uow.session.get(User, net.hub_ids[who]).failed_attempts


def add_hub_qa(net: Network, username: str) -> str:
    """Another attested QA person at the hub."""
    with net.hub() as uow:
        net.hub_ids[username] = add_user(
            uow, CLI, username=username, full_name=f"{username.title()} Hub", roles=["qa"],
            password=PASSWORD,
        )  # fmt: skip
    with net.hub() as uow:
        acknowledge_accountability(
            uow, user_ctx(net.hub_ids[username]), Credentials(PASSWORD, username), True
        )
    return net.hub_ids[username]


# --- tampering with stored chains (the append-only triggers dropped first) ---------------------


def drop_update_trigger(engine: Engine, table: str) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER {table}_append_only ON {table}")
        conn.commit()


def alter_payload(engine: Engine, model: Any, batch_id: str, seq: int, **changes: Any) -> None:
    with engine.connect() as conn:
        payload = conn.execute(
            select(model.payload).where(model.batch_id == batch_id, model.seq == seq)
        ).scalar_one()
        conn.execute(
            update(model)
            .where(model.batch_id == batch_id, model.seq == seq)
            .values(payload={**payload, **changes})
        )
        conn.commit()


# --- release blocked in each listed case; released otherwise ---------------------------------


def test_release_is_refused_while_a_deviation_is_open_or_an_exception_unreviewed(net):
    site = net.connected()
    batch_id, deviation = with_deviation(site)
    send(net, site, batch_id)
    opened = view(net, batch_id)
    assert opened.qa_state is QaState.AWAITING_REVIEW
    # The value outside action limits raised the deviation: closing it settles the value too.
    [value] = [f for f in opened.findings if f.category.value == "action_limit"]
    assert value.by_closure and not value.blocking
    assert value.detail.endswith(
        f" It raised deviation {deviation}: settled when that deviation is closed."
    )
    waiting = opened.unreviewed
    assert [f.category.value for f in waiting] == ["rubber_stamp", "comment"]
    titles = "; ".join(f.title for f in waiting)
    failures = failed_attempts(net)
    # (a) and (b): the deviation is open and two exceptions wait — every reason named.
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id, password="wrong-password"))
    assert f"1 deviation is still open: {deviation}." in err.message
    assert f"2 exceptions are not reviewed: {titles}." in err.message
    assert value.title not in err.message
    assert failed_attempts(net) == failures  # the rules come before the password
    # (a) alone: the exceptions reviewed, the deviation still open.
    for finding in waiting:
        mark(net, batch_id, finding.key)
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id))
    assert err.message == (
        f"Batch {opened.row.number} cannot be released: 1 deviation is still open: {deviation}. "
        "Close each with its investigation first."
    )
    # The deviation cannot be closed half investigated, and is not "reviewed" away.
    assert assess(net, batch_id, deviation, classification="major", impact="None") is True
    err = refused(net, InvalidInput, lambda: close(net, batch_id, deviation))
    assert err.message == (
        f"Deviation {deviation} cannot be closed yet: Description, Root cause, CAPA reference "
        "(required for a major or critical deviation) missing."
    )
    refused(net, InvalidInput, lambda: mark(net, batch_id, f"deviation:{deviation}"))
    err = refused(net, InvalidInput, lambda: mark(net, batch_id, value.key))
    assert err.message == (
        f"{value.title} is settled by closing the deviation, not by marking it reviewed."
    )
    assess(net, batch_id, deviation, **INVESTIGATION, capa="CAPA-2026-014")
    closed = close(net, batch_id, deviation)
    assert closed.open_deviations == [] and closed.blockers == []
    released = decide(net, batch_id)
    assert released.state.decision is Decision.RELEASED
    assert released.qa_state is QaState.RELEASED


def test_release_is_refused_naming_each_exception_not_reviewed(net):
    site = net.connected()
    batch_id = alert_batch(site)  # no deviation
    send(net, site, batch_id)
    waiting = view(net, batch_id).unreviewed
    assert [f.title for f in waiting] == [
        "Viability = 80.0 % in 'Count cells'",
        "'Check the bag' verified 0 s after it was performed",
    ]
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id))
    assert err.message.endswith(
        "2 exceptions are not reviewed: Viability = 80.0 % in 'Count cells'; "
        "'Check the bag' verified 0 s after it was performed."
    )
    mark(net, batch_id, waiting[0].key, note="Within the product's history")
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id))
    assert err.message.endswith(
        "1 exception is not reviewed: 'Check the bag' verified 0 s after it was performed."
    )
    mark(net, batch_id, waiting[1].key)
    assert decide(net, batch_id).state.decision is Decision.RELEASED


def test_release_is_refused_while_entries_are_still_pending_from_the_spoke(net, tmp_path):
    site = net.connected()
    batch_id = run_batch(site, recipe_file(tmp_path))
    first = send(net, site, batch_id, size=6)
    opened = view(net, batch_id)
    assert opened.qa_state is QaState.AT_SPOKE
    assert [(f.key, f.blocking) for f in opened.findings] == [("pending", True)]
    says = (
        f"The hub holds entries 1–{first} and the batch is in progress at SPK1: the rest of the "
        "record has not arrived."
    )
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id))
    assert err.message == (
        f"Batch {opened.row.number} cannot be released: The record is not complete: {says}"
    )
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id, "rejected", reason="Late"))
    assert err.message == f"Batch {opened.row.number} cannot be decided yet: {says}"
    err = refused(net, InvalidInput, lambda: mark(net, batch_id, "pending"))
    assert err.message == f"'The record is not complete' cannot be marked reviewed: {says}"
    send(net, site, batch_id, after=first)
    # A page opened before the rest arrived is out of date: nothing is signed on it.
    err = refused(
        net, InvalidInput, lambda: decide(net, batch_id, seen_record_seq=first, seen_review_seq=0)
    )
    assert err.message == (
        f"The record of batch {opened.row.number} changed since you opened it: the hub now "
        f"holds entries 1–{view(net, batch_id).batch.state.last_seq} from SPK1."
    )
    assert view(net, batch_id).findings == []
    assert decide(net, batch_id).state.decision is Decision.RELEASED


def test_release_is_refused_when_the_batch_record_fails_verification(net):
    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    with net.hub() as uow:
        seq = next(
            e.seq
            for e in review.load_review(uow, batch_id).record
            if e.body["payload"].get("value") == "viability"
        )
    settle(net, batch_id)
    before = written(net)
    # Someone with write access to the hub's database makes the viability look better.
    drop_update_trigger(net.hub_engine, "batch_entries")
    alter_payload(net.hub_engine, BatchEntry, batch_id, seq, recorded="95.0", status="ok")
    opened = view(net, batch_id)
    chain = opened.findings[0]
    says = f"entry {seq}: its content does not match its hash: it was edited"
    assert (chain.key, chain.blocking, chain.detail) == ("chain", True, says)
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id))
    assert err.message == (
        f"Batch {opened.row.number} cannot be released: The record fails verification: {says}"
    )
    err = refused(net, InvalidInput, lambda: mark(net, batch_id, "chain"))
    assert says in err.message
    assert written(net) == before


def test_release_is_refused_when_the_review_chain_at_the_hub_fails_verification(net):
    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    settle(net, batch_id)
    drop_update_trigger(net.hub_engine, "batch_review_entries")
    alter_payload(net.hub_engine, BatchReviewEntry, batch_id, 1, note="Nothing unusual")
    opened = view(net, batch_id)
    assert opened.chain_problem == (
        "The review record: entry 1: its content does not match its hash: it was edited"
    )
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id))
    assert err.message.endswith(f"The record fails verification: {opened.chain_problem}")


def test_a_release_is_signed_by_qa_and_its_manifestation_kept_in_the_review_chain(net, tmp_path):
    site = net.connected()
    batch_id = run_batch(site, recipe_file(tmp_path))
    send(net, site, batch_id)
    assert written(net) == (0, [])
    # Not QA: refused before anything else.
    err = refused(net, NotAuthorised, lambda: decide(net, batch_id, ctx=qa(net, "sam")))
    assert err.message == (
        "You are not allowed to review batch records, work deviations and release or reject "
        "batches."
    )
    # A wrong password: refused, counted, nothing written.
    refused(net, AuthenticationFailed, lambda: decide(net, batch_id, password="wrong-password"))
    assert failed_attempts(net) == 1
    at = QA_AT + timedelta(minutes=7)
    released = decide(net, batch_id, ctx=qa(net, at=at))
    assert failed_attempts(net) == 0
    with net.hub() as uow:
        entries = review_ledger(uow.session, batch_id)
        disposition = review.disposition_of(uow, batch_id)
    (entry,) = entries
    assert verify_chain(entries, net.hub_key.public) == 1
    assert (entry.body["kind"], entry.body["site"], entry.body["at"]) == (
        "batch_released",
        "HUB",
        utc_text(at),
    )
    signed = entry.body["payload"]["manifestation"]
    assert {k: signed[k] for k in ("printed_name", "username", "signer_id", "meaning", "at")} == {
        "printed_name": "Quinn Hub",
        "username": "quinn",
        "signer_id": net.hub_ids["quinn"],
        "meaning": "released",
        "at": utc_text(at),
    }
    assert signed == released.state.decision_signature
    record = entry.body["payload"]["record"]
    assert record["record_head"] == [released.batch.state.last_seq, released.batch.state.last_hash]
    assert (disposition.decision, disposition.decided_by, disposition.decided_at) == (
        "released",
        "Quinn Hub",
        utc_text(at),
    )
    assert (disposition.last_seq, disposition.last_hash) == (1, entry.hash)
    err = refused(net, ReviewClosed, lambda: decide(net, batch_id, "rejected", reason="Oops"))
    assert err.message == (
        f"Batch {released.row.number} is already released "
        f"(by Quinn Hub at {local_text(at, 'Europe/London')})."
    )


def test_a_batch_is_rejected_only_with_a_reason(net, tmp_path):
    site = net.connected()
    batch_id = run_batch(site, recipe_file(tmp_path))
    send(net, site, batch_id)
    err = refused(net, InvalidInput, lambda: decide(net, batch_id, "rejected", reason="  "))
    assert err.message == "A rejection needs a reason."
    refused(net, InvalidInput, lambda: decide(net, batch_id, "quarantined"))
    rejected = decide(net, batch_id, "rejected", reason="Transport temperature excursion")
    assert (rejected.state.decision, rejected.state.reason) == (
        Decision.REJECTED,
        "Transport temperature excursion",
    )
    with net.hub() as uow:
        disposition = review.disposition_of(uow, batch_id)
        (entry,) = review_ledger(uow.session, batch_id)
    assert (disposition.decision, disposition.reason) == (
        "rejected",
        "Transport temperature excursion",
    )
    assert entry.body["payload"]["manifestation"]["meaning"] == "rejected"
    refused(net, ReviewClosed, lambda: decide(net, batch_id))


def test_an_aborted_batch_cannot_be_released_but_can_be_rejected(net):
    site = net.connected()
    batch_id = aborted(site)
    send(net, site, batch_id)
    opened = view(net, batch_id)
    assert opened.qa_state is QaState.AWAITING_REVIEW
    assert [f.title for f in opened.unreviewed] == [
        "'Check the bag' verified 0 s after it was performed",
        "The batch was aborted",
    ]
    settle(net, batch_id)
    err = refused(net, ReleaseRefused, lambda: decide(net, batch_id))
    assert err.message == (
        f"Batch {opened.row.number} cannot be released: The batch was aborted at the spoke: it "
        "can only be rejected."
    )
    rejected = decide(net, batch_id, "rejected", reason="Aborted at the spoke")
    assert rejected.qa_state is QaState.REJECTED


def test_a_stale_review_page_is_refused_naming_who_acted_since(net):
    site = net.connected()
    batch_id, deviation = with_deviation(site)
    send(net, site, batch_id)
    add_hub_qa(net, "quincy")
    page = view(net, batch_id)  # both open the page with nothing recorded
    seen = page.state.last_seq
    assert seen == 0
    first, second = page.unreviewed[:2]
    mark(net, batch_id, first.key, seen_review_seq=seen)
    late = qa(net, "quincy", QA_AT + timedelta(minutes=3))
    says = (
        f"The review of batch {page.row.number} changed since you opened it by Quinn Hub at "
        f"{local_text(QA_AT, 'Europe/London')}."
    )
    for action in (
        lambda: mark(net, batch_id, second.key, ctx=late, seen_review_seq=seen),
        lambda: decide(net, batch_id, ctx=late, seen_review_seq=seen),
    ):
        err = refused(net, InvalidInput, action)
        assert err.message == says
    err = refused(
        net, InvalidInput, lambda: assess(net, batch_id, deviation, ctx=late, seen=seen, impact="-")
    )
    assert err.message == says
    # With the page reloaded, Quincy's review goes in.
    view_now = mark(net, batch_id, second.key, ctx=late, seen_review_seq=1)
    assert view_now.state.reviewed[second.key].by.name == "Quincy Hub"


# --- the QA queue ---------------------------------------------------------------------------


def test_the_qa_queue_counts_and_filters_by_site_product_state_and_age(net, tmp_path):
    site = net.connected()
    released = run_batch(site, recipe_file(tmp_path))  # complete at NOW + a few hours
    under_review, deviation = with_deviation(site)
    awaiting = aborted(site, NOW + timedelta(days=2))
    at_spoke = begin(site, NOW + timedelta(days=3))[0]
    for batch_id in (released, under_review, awaiting, at_spoke):
        send(net, site, batch_id, at=NOW + timedelta(days=4))
    decide(net, released)
    assess(net, under_review, deviation, classification="minor")
    when = qa(net, at=NOW + timedelta(days=5, hours=6))

    def queue(**filters: Any) -> review.Queue:
        with net.hub() as uow:
            return review.qa_queue(uow, when, **filters)

    everything = queue()
    assert everything.counts == {
        "at_spoke": 1,
        "awaiting_review": 1,
        "under_review": 1,
        "released": 1,
        "rejected": 0,
        "event": 0,
        "needs_attention": 2,
    }
    assert (everything.sites, everything.products) == (["SPK1"], ["BATCH-TEST"])
    rows = {r.id: r for r in everything.rows}
    assert {r.id: r.qa_state for r in everything.rows} == {
        released: QaState.RELEASED,
        under_review: QaState.UNDER_REVIEW,
        awaiting: QaState.AWAITING_REVIEW,
        at_spoke: QaState.AT_SPOKE,
    }
    assert {r.id: r.age_days for r in everything.rows} == {
        released: 5,
        under_review: 5,
        awaiting: 3,
        at_spoke: 2,
    }
    assert (rows[released].decision_by, rows[released].open_deviations) == ("Quinn Hub", 0)
    # Its value outside action limits is settled by closing the deviation: not counted.
    assert (rows[under_review].open_deviations, rows[under_review].unreviewed) == (1, 2)
    assert (rows[awaiting].unreviewed, rows[awaiting].blocked) == (2, False)
    # In progress at its spoke: where it stands ("At the spoke"), not blocked.
    assert (rows[at_spoke].blocked, rows[at_spoke].status) == (False, "in_progress")
    assert [r.recipe for r in everything.rows] == ["BATCH-TEST v1"] * 4

    def listed(**filters: Any) -> set[str]:
        found = queue(**filters)
        assert found.counts == everything.counts  # counts are over every batch
        return {r.id for r in found.rows}

    assert listed(state="under_review") == {under_review}
    assert listed(state="awaiting_review") == {awaiting}
    assert listed(state="rejected") == set()
    assert listed(site="SPK1") == set(rows)
    assert listed(site="SPK2") == set()
    assert listed(product="BATCH-TEST") == set(rows)
    assert listed(product="OTHER") == set()
    assert listed(min_age_days=3) == {released, under_review, awaiting}
    assert listed(min_age_days=4) == {released, under_review}
    assert listed(min_age_days=6) == set()
    assert listed(site="SPK1", state="at_spoke", min_age_days=2) == {at_spoke}
    with net.hub() as uow, pytest.raises(InvalidInput) as caught:
        review.qa_queue(uow, when, state="pending")
    assert caught.value.message == "'pending' is not a QA state."
    with net.hub() as uow, pytest.raises(NotAuthorised):
        review.qa_queue(uow, qa(net, "sam"))


def test_an_assessment_that_changes_nothing_leaves_the_batch_awaiting_review(net):
    site = net.connected()
    batch_id, deviation = with_deviation(site)
    send(net, site, batch_id)
    assert assess(net, batch_id, deviation) is False  # nothing given: nothing recorded
    assert view(net, batch_id).qa_state is QaState.AWAITING_REVIEW
    with net.hub() as uow:
        (row,) = review.qa_queue(uow, qa(net)).rows
    assert row.qa_state is QaState.AWAITING_REVIEW


# --- the review chain goes back to the spoke --------------------------------------------------


def awaited(site: Spoke) -> dict[str, int]:
    with site.uow() as uow:
        return review.awaited_reviews(uow)


def updates(net: Network, known: dict[str, int]) -> list[SealedEntry]:
    with net.hub() as uow:
        return review.review_updates(uow, SPOKE, known)


def receive(site: Spoke, entries: list[SealedEntry]) -> int:
    with site.uow() as uow:
        return review.receive_review_entries(uow, NOW + 2 * timedelta(days=1), entries)


def held_at_spoke(site: Spoke, batch_id: str) -> list[SealedEntry]:
    with site.uow() as uow:
        return review_ledger(uow.session, batch_id)


def spoke_events(site: Spoke) -> list[SyncEvent]:
    with site.uow() as uow:
        return list(
            uow.session.execute(
                select(SyncEvent).where(SyncEvent.action == "review").order_by(SyncEvent.id)
            ).scalars()
        )


def enrolled(site: Spoke) -> None:
    with site.uow() as uow:
        outbox.record_enrollment(uow, CLI, "https://hub.example", "HUB", "hub-key-1")


def test_the_review_chain_syncs_back_and_the_spoke_shows_the_decision(net):
    site = net.connected()
    batch_id, deviation = with_deviation(site)
    send(net, site, batch_id)
    with site.uow() as uow:
        refused(net, InvalidInput, lambda: review.receive_review_entries(uow, NOW, []))
    enrolled(site)
    assert awaited(site) == {batch_id: 0}
    assert updates(net, awaited(site)) == []  # nothing recorded by QA yet
    # QA reviews one exception: the spoke gets that entry.
    first = view(net, batch_id).unreviewed[0]
    mark(net, batch_id, first.key)
    assert receive(site, updates(net, awaited(site))) == 1
    assert awaited(site) == {batch_id: 1}
    # The rest of the review and the release: only what the spoke does not hold is sent.
    settle(net, batch_id, deviation)
    decide(net, batch_id)
    with net.hub() as uow:
        hub_chain = review_ledger(uow.session, batch_id)
    rest = updates(net, awaited(site))
    assert rest == hub_chain[1:]
    assert updates(net, {}) == []  # batches the spoke does not name cost nothing
    assert receive(site, rest) == len(rest)
    assert held_at_spoke(site, batch_id) == hub_chain
    assert verify_chain(held_at_spoke(site, batch_id), net.hub_key.public) == len(hub_chain)
    with site.uow() as uow:
        disposition = review.disposition_of(uow, batch_id)
    assert (disposition.decision, disposition.decided_by, disposition.last_seq) == (
        "released",
        "Quinn Hub",
        len(hub_chain),
    )
    assert awaited(site) == {}  # decided: no longer asked for
    # Sent twice (the answer was lost): stored once.
    assert receive(site, hub_chain) == 0
    assert held_at_spoke(site, batch_id) == hub_chain
    assert [
        (e.outcome, e.batch_id, e.first_seq, e.last_seq, e.stored) for e in spoke_events(site)
    ] == [
        ("accepted", batch_id, 1, 1, 1),
        ("accepted", batch_id, 2, len(hub_chain), len(hub_chain) - 1),
    ]


def test_a_tampered_review_entry_is_refused_at_the_spoke_logged_and_nothing_stored(net, tmp_path):
    site = net.connected()
    batch_id = run_batch(site, recipe_file(tmp_path))
    send(net, site, batch_id)
    decide(net, batch_id)
    enrolled(site)
    (genuine,) = updates(net, awaited(site))
    # The payload altered on the way (its hash and signature kept).
    body = copy.deepcopy(dict(genuine.body))
    body["payload"]["decision"] = "rejected"
    altered = SealedEntry(body, genuine.hash, genuine.signature)
    # Sealed again by a key that is not the hub's.
    forged = seal(copy.deepcopy(dict(genuine.body)), SiteKey.generate())
    # Sealed by the hub's key but naming another site.
    elsewhere = seal({**copy.deepcopy(dict(genuine.body)), "site": "HUB2"}, net.hub_key)
    for entry in (altered, forged, elsewhere):
        assert receive(site, [entry]) == 0
    assert held_at_spoke(site, batch_id) == []
    with site.uow() as uow:
        assert review.disposition_of(uow, batch_id) is None
    logged = spoke_events(site)
    assert [(e.outcome, e.peer, e.batch_id, e.stored) for e in logged] == [
        ("refused", "HUB", batch_id, 0)
    ] * 3
    assert [e.reason for e in logged] == [
        "entry 1: its content does not match its hash: it was edited",
        "entry 1: the site signature does not match: it was rewritten or forged",
        f"Review entries of {logged[0].item} name another site.",
    ]
    assert awaited(site) == {batch_id: 0}
    assert receive(site, [genuine]) == 1
    with site.uow() as uow:
        assert review.disposition_of(uow, batch_id).decision == "released"


def test_review_entries_of_a_batch_the_spoke_does_not_hold_are_refused(net, tmp_path):
    site = net.connected()
    batch_id = run_batch(site, recipe_file(tmp_path))
    send(net, site, batch_id)
    decide(net, batch_id)
    enrolled(site)
    (entry,) = updates(net, {batch_id: 0})
    stranger = seal({**copy.deepcopy(dict(entry.body)), "batch": "no-such-batch"}, net.hub_key)
    assert receive(site, [stranger, entry]) == 1  # the known batch's entry still goes in
    logged = spoke_events(site)
    assert [(e.outcome, e.batch_id, e.reason) for e in logged] == [
        ("refused", "no-such-batch", "The hub sent review entries of unknown batch no-such-batch."),
        ("accepted", batch_id, None),
    ]


def test_a_spoke_records_nothing_in_a_review(net):
    site = net.connected()
    batch_id, _deviation = with_deviation(site)
    with site.uow() as uow, pytest.raises(InvalidInput) as caught:
        review.decide_batch(
            uow, site.ctx("quinn", QA_AT), batch_id, "released", Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    assert caught.value.message == "Batches are reviewed and released at the hub."
    with site.uow() as uow:
        assert review.disposition_of(uow, batch_id) is None


__all__ = ["net"]  # the fixture, imported from sync_sites


def test_the_hub_adds_no_entry_to_a_batch_after_its_decision(net):
    from mes.core.errors import ChunkConflict
    from mes.core.ledger import next_link
    from mes.core.sync import make_chunk

    site = net.connected()
    batch_id = alert_batch(site)
    send(net, site, batch_id)
    settle(net, batch_id)
    released = decide(net, batch_id)
    # A spoke (or someone with its key) appends an entry after QA's release.
    last = released.record[-1]
    seq, prev = next_link(last.seq, last.hash)
    extra = seal({**last.body, "seq": seq, "prev": prev, "kind": "batch_held",
                  "payload": {"reason": "after the release"}}, net.spoke_key)  # fmt: skip
    token = make_chunk([extra], site=SPOKE, key=net.spoke_key, issued_at=NOW)
    with net.hub() as uow:
        before = count_entries(uow, batch_id)
    with pytest.raises(ChunkConflict) as caught, net.hub() as uow:
        ingest.ingest_chunk(uow, NOW + timedelta(hours=7), SPOKE, token)
    assert "no entry is added to it after the decision" in caught.value.message
    with net.hub() as uow:
        assert count_entries(uow, batch_id) == before == released.batch.state.last_seq


def count_entries(uow, batch_id: str) -> int:
    return uow.session.execute(
        select(func.count()).select_from(BatchEntry).where(BatchEntry.batch_id == batch_id)
    ).scalar_one()


def test_the_queue_lists_what_needs_qa_first_and_says_when_it_shows_only_part(net):
    site = net.connected()
    released = alert_batch(site)
    send(net, site, released)
    settle(net, released)
    decide(net, released)
    waiting = alert_batch(site)
    send(net, site, waiting)
    with net.hub() as uow:
        queue = review.qa_queue(uow, qa(net), limit=1)
    assert [r.id for r in queue.rows] == [waiting]  # the decided one is behind it
    assert queue.matching == 2


@pytest.mark.parametrize(
    "number",
    ['SPK1-2026-0001"; x', "SPK1-2026-../../x", "SPK1-2026-0001\u00e9", "SPK2-2026-0001", ""],
)
def test_a_batch_number_not_of_the_spokes_form_is_refused_at_ingest(net, number):
    from mes.core.errors import ChunkConflict

    with net.hub() as uow, pytest.raises(ChunkConflict) as caught:
        ingest._check_number(uow.session, SPOKE, number)
    assert "is not of the form SPK1-YYYY-NNNN" in caught.value.message
    with net.hub() as uow:
        ingest._check_number(uow.session, SPOKE, "SPK1-2026-0001")  # the form spokes write
