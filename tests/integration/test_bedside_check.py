"""The bedside identity check and the infusion at the spoke, after QA's release at the hub.

Made at spoke SPK1, released by QA at the hub, the release received back at the spoke; then
Nina, the ward's clinician, scans the bag's label (DIN with flags, chain-of-identity code) and
the patient's wristband at the ward's tablet, and signs with her badge and PIN. On SQLite and
PostgreSQL (the hub and the spoke each on a database of the test's kind).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sync_sites
from bedside_sites import (
    TIMER_MINUTES,
    WARD_AT,
    badge,
    connected,
    made,
    nina,
    released,
    sent,
)
from sqlalchemy import select

from mes.core.batch import DeviationCategory, EntryKind
from mes.core.clock import utc_text
from mes.core.errors import (
    AuthenticationFailed,
    BagFromAnotherSite,
    BedsideMismatch,
    NotAuthorised,
    NotReleasedForInfusion,
)
from mes.core.limits import InvalidValue
from mes.core.summary import timeline
from mes.services import bedside
from mes.services.batches import _load
from mes.services.review import load_review
from mes.store.models import Batch as BatchRow
from mes.store.models import BatchEntry, Deviation

network = sync_sites.net  # the fixture: the hub and SPK1, each on a database of the test's kind


def kinds(site, batch_id: str) -> list[str]:
    with site.uow() as uow:
        return list(
            uow.session.execute(
                select(BatchEntry.kind)
                .where(BatchEntry.batch_id == batch_id)
                .order_by(BatchEntry.seq)
            ).scalars()
        )


def check(site, scans, at=WARD_AT, credentials=None):
    with site.uow() as uow:
        return bedside.check_at_bedside(
            uow, nina(site, at), scans, credentials or badge(), first_signing_in_session=True
        )


def infusion(site, batch_id, action, at):
    with site.uow() as uow:
        return action(uow, nina(site, at), batch_id, badge(), first_signing_in_session=True)


def test_a_match_is_signed_by_badge_and_pin_starts_the_timer_and_the_infusion_is_recorded(network):
    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    before = kinds(site, batch_id)

    batch = check(site, label)

    assert kinds(site, batch_id) == [*before, EntryKind.BEDSIDE_CHECKED]
    record = batch.state.bedside
    assert record.last_check["matched"] is True
    assert record.last_check["by"].username == "nina"
    assert record.timer == {
        "label": "Infuse within 30 min of the check",
        "starts_at": "check",
        "from": utc_text(WARD_AT),
        "max_minutes": TIMER_MINUTES,
        "deadline": utc_text(WARD_AT + timedelta(minutes=TIMER_MINUTES)),
    }
    with site.uow() as uow:
        entry = uow.session.execute(
            select(BatchEntry).where(
                BatchEntry.batch_id == batch_id, BatchEntry.kind == EntryKind.BEDSIDE_CHECKED
            )
        ).scalar_one()
    signed = entry.payload["manifestation"]
    assert (signed["username"], signed["meaning"]) == ("nina", "performed")

    started_at = WARD_AT + timedelta(minutes=10)
    infusion(site, batch_id, bedside.start_infusion, started_at)
    batch = infusion(site, batch_id, bedside.end_infusion, started_at + timedelta(minutes=20))
    assert kinds(site, batch_id)[-2:] == [EntryKind.INFUSION_STARTED, EntryKind.INFUSION_ENDED]
    assert batch.state.bedside.infusion_started_at == utc_text(started_at)
    assert not batch.state.deviations  # started in time: no deviation
    # Vein to vein ends at the infusion's start; the product reached the bedside at the check.
    points = {p.milestone: p.at for p in timeline(batch, load_review_at_spoke(site, batch_id))}
    assert points["infusion_start"] == utc_text(started_at)
    assert points["bedside_receipt"] == utc_text(WARD_AT)
    # The infusion is recorded once; a second start or end is refused.
    with pytest.raises(Exception, match="identity check is closed"):
        infusion(site, batch_id, bedside.start_infusion, started_at + HOUR)
    with pytest.raises(Exception, match="already ended"):
        infusion(site, batch_id, bedside.end_infusion, started_at + HOUR)


HOUR = timedelta(hours=1)


def load_review_at_spoke(site, batch_id):
    with site.uow() as uow:
        return load_review(uow, batch_id).state


def test_a_mismatch_is_a_hard_stop_recorded_with_an_identity_deviation_in_one_transaction(network):
    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    before = kinds(site, batch_id)

    with pytest.raises(BedsideMismatch) as stop:
        check(site, {**label, "wristband": "PAT-9999"})

    assert str(stop.value).startswith("Do not infuse: Patient identifier on the wristband")
    assert kinds(site, batch_id) == [
        *before,
        EntryKind.BEDSIDE_MISMATCH,
        EntryKind.DEVIATION_RAISED,
    ]
    with site.uow() as uow:
        (deviation,) = uow.session.execute(
            select(Deviation).where(Deviation.batch_id == batch_id)
        ).scalars()
    assert (deviation.category, deviation.status) == (DeviationCategory.IDENTITY.value, "open")
    assert deviation.id == stop.value.deviation
    assert "PAT-9999" in deviation.description
    # The infusion cannot start after a mismatch; a later matching check opens it again.
    with pytest.raises(BedsideMismatch, match="mismatch as its last check"):
        infusion(site, batch_id, bedside.start_infusion, WARD_AT + timedelta(minutes=1))
    check(site, label, at=WARD_AT + timedelta(minutes=2))
    infusion(site, batch_id, bedside.start_infusion, WARD_AT + timedelta(minutes=3))
    # The mismatch travels to the hub, where it is an open deviation (the network's alert).
    sent(network, site, batch_id, at=WARD_AT + timedelta(minutes=4))
    with network.hub() as uow:
        at_hub = uow.session.execute(
            select(Deviation.category, Deviation.status).where(Deviation.batch_id == batch_id)
        ).all()
    assert at_hub == [(DeviationCategory.IDENTITY.value, "open")]


def test_a_bag_of_another_site_is_refused_naming_what_to_do_and_nothing_is_written(network):
    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    before = kinds(site, batch_id)
    other = {"bag_din": "=A99992699999900", "bag_coi": "CHA999999999999", "wristband": "PAT-0001"}
    with pytest.raises(BagFromAnotherSite) as refused:
        check(site, other)
    assert "not a product of SPK1" in str(refused.value)
    assert "call the site named on its label" in str(refused.value)
    # A DIN whose check character is wrong is refused at its field, nothing written either.
    with pytest.raises(InvalidValue) as typed:
        check(site, {**label, "bag_din": "A9999 26 000001 00 Z"})
    assert "bag_din" in typed.value.fields
    assert kinds(site, batch_id) == before


def test_a_product_not_released_is_refused_and_nothing_is_written(network):
    site = connected(network)
    batch_id, label = made(site)
    sent(network, site, batch_id)  # at the hub, QA has not released it
    before = kinds(site, batch_id)
    with pytest.raises(NotReleasedForInfusion, match="not released by QA yet"):
        check(site, label)
    # Nor a mismatch on it: the refusal comes first, nothing is recorded.
    with pytest.raises(NotReleasedForInfusion):
        check(site, {**label, "wristband": "PAT-9999"})
    with pytest.raises(NotReleasedForInfusion):
        infusion(site, batch_id, bedside.start_infusion, WARD_AT)
    assert kinds(site, batch_id) == before


def test_only_a_clinician_checks_and_a_wrong_pin_signs_nothing(network):
    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    before = kinds(site, batch_id)
    with site.uow() as uow, pytest.raises(NotAuthorised):
        bedside.check_at_bedside(
            uow, site.ctx("olivia", WARD_AT), label, badge(), first_signing_in_session=True
        )
    with pytest.raises(AuthenticationFailed):
        check(site, label, credentials=badge("000000"))
    assert kinds(site, batch_id) == before


def test_an_infusion_started_after_the_timer_raises_a_timer_deviation(network):
    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    check(site, label)
    late = WARD_AT + timedelta(minutes=TIMER_MINUTES + 15)
    batch = infusion(site, batch_id, bedside.start_infusion, late)
    (deviation,) = batch.state.deviations.values()
    assert deviation.category == DeviationCategory.TIMER.value
    assert "15 min after the limit" in deviation.description
    # Replaying the ledger gives the same state.
    with site.uow() as uow:
        replayed = _load(uow, batch_id, lock=False).batch
        status = uow.session.get(BatchRow, batch_id).status
    assert replayed.state.bedside == batch.state.bedside
    assert status == "complete"


def test_a_bag_whose_din_and_code_name_two_products_of_the_site_is_a_mismatch_recorded(network):
    """A mislabelled bag (its DIN one product's, its code another's) is the hard stop on the
    product its DIN names, recorded with its deviation, not a bag "of another site"."""
    site = connected(network)
    batch_id, label = made(site)
    _other_id, other = made(site)
    released(network, site, batch_id)
    before = kinds(site, batch_id)
    with pytest.raises(BedsideMismatch, match="Do not infuse"):
        check(site, {**label, "bag_coi": other["bag_coi"]})
    assert kinds(site, batch_id) == [
        *before,
        EntryKind.BEDSIDE_MISMATCH,
        EntryKind.DEVIATION_RAISED,
    ]


def test_qa_investigates_and_closes_a_bedside_mismatch_at_the_hub_after_release(network):
    """A deviation raised after release (the bedside mismatch) is worked at the hub like any
    other: QA's review of a released batch stays closed to everything else."""
    from support import PASSWORD, user_ctx
    from test_batch_release import INVESTIGATION, assess

    from mes.core.review import Decision, ReviewClosed
    from mes.services import review
    from mes.services.esign import Credentials

    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    with pytest.raises(BedsideMismatch) as stop:
        check(site, {**label, "wristband": "PAT-9999"})
    sent(network, site, batch_id, at=WARD_AT + timedelta(minutes=4))
    qa = user_ctx(network.hub_ids["quinn"], at=WARD_AT + HOUR, terminal="QA office")
    assess(network, batch_id, stop.value.deviation, ctx=qa, **INVESTIGATION)
    with network.hub() as uow:
        closed = review.close_deviation(
            uow, qa, batch_id, stop.value.deviation, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    assert closed.state.deviation(stop.value.deviation).closed
    with network.hub() as uow, pytest.raises(ReviewClosed):
        review.decide_batch(
            uow, qa, batch_id, Decision.REJECTED, Credentials(PASSWORD),
            first_signing_in_session=False, reason="Changed my mind",
        )  # fmt: skip


def test_a_scan_with_a_control_character_is_refused_in_words_and_nothing_is_written(network):
    """A scanner's stray control character is no identifier: refused before anything is kept
    (PostgreSQL's JSON would refuse a NUL with a database error)."""
    from mes.core.errors import InvalidInput

    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    before = kinds(site, batch_id)
    with pytest.raises(InvalidInput, match="wristband"):
        check(site, {**label, "wristband": "PAT-\x00001"})
    assert kinds(site, batch_id) == before
