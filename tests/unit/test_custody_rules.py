"""The chain of custody's rules in the core (issue 17): who holds the material, who may hand it
over, and the refusals, each with its sentence; the transfer and both signatures are one entry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_fixtures import OLIVIA, SAM, T0, complete_run, hand_over, new_batch, party, person

from mes.core.batch import Action, Batch
from mes.core.custody import (
    Material,
    Party,
    Side,
    holder,
    logger_evidence,
    transfer_in_words,
    typed_transfer,
)
from mes.core.errors import (
    BatchNotActive,
    CustodyRefused,
    InvalidInput,
    NotAuthorised,
    NotInCustody,
    ProductNotReleased,
)
from mes.core.keys import SiteKey
from mes.core.ledger import verify_chain

COURIER = Party("Jean Courier", "Lyon Collection Centre")
CLINIC = Party("Dr Ada Nurse", "Clinic Haematology")
H = timedelta(hours=1)


def received(batch: Batch, at=T0) -> None:
    transfer = typed_transfer("starting_material", COURIER, party(OLIVIA), "Goods-in", "SHP-1")
    hand_over(batch, transfer, {Side.RECEIVED: OLIVIA}, at)


def test_custody_of_the_starting_material_follows_the_transfers():
    batch = new_batch()
    assert holder(batch.state.custody, Material.STARTING_MATERIAL, "Spoke Site") is None
    assert holder(batch.state.custody, Material.FINAL_PRODUCT, "Spoke Site") == "Spoke Site"
    received(batch)
    assert holder(batch.state.custody, Material.STARTING_MATERIAL, "Spoke Site") == "Spoke Site"
    inside = typed_transfer("starting_material", party(OLIVIA), party(SAM), "Suite A", "SHP-1")
    entry = hand_over(batch, inside, {Side.HANDED_OVER: OLIVIA, Side.RECEIVED: SAM})
    meanings = [s["manifestation"]["meaning"] for s in entry.body["payload"]["signatures"]]
    assert meanings == ["handed over", "received"]
    assert [t["seq"] for t in batch.state.custody] == [batch.state.last_seq - 1, entry.seq]


def test_a_ledger_with_custody_replays_to_the_same_chain_and_verifies():
    key = SiteKey.generate()
    batch = new_batch(key=key)
    received(batch)
    replayed = Batch.replay(batch.procedure, batch.new_entries)
    assert replayed.state.custody == batch.state.custody
    assert verify_chain(batch.new_entries, key.public) == len(batch.new_entries)


def test_the_holder_is_compared_by_organisation_ignoring_case_and_spaces():
    batch = new_batch()
    received(batch)
    out = typed_transfer(
        "starting_material", party(OLIVIA, "  spoke   SITE "), CLINIC, "Dock", "SHP-1"
    )
    hand_over(batch, out, {Side.HANDED_OVER: OLIVIA})
    assert holder(batch.state.custody, Material.STARTING_MATERIAL, "x") == "Clinic Haematology"


def test_a_hand_over_by_an_organisation_that_does_not_hold_the_material_is_refused():
    batch = new_batch()
    received(batch)
    elsewhere = typed_transfer("starting_material", COURIER, party(OLIVIA), "Goods-in", "SHP-2")
    with pytest.raises(NotInCustody) as refusal:
        hand_over(batch, elsewhere, {Side.RECEIVED: OLIVIA})
    assert str(refusal.value) == (
        "The apheresis starting material is held by Spoke Site (the chain of custody so far), "
        "not by Lyon Collection Centre: Jean Courier cannot hand it over. "
        "Record the hand-over by Spoke Site, or correct the organisation typed."
    )


def test_the_final_product_is_dispatched_only_after_release():
    batch = complete_run()
    dispatch = typed_transfer("final_product", party(SAM), CLINIC, "Clinic ward 3", "DRY-7")
    with pytest.raises(ProductNotReleased, match="not released by QA yet"):
        hand_over(batch, dispatch, {Side.HANDED_OVER: SAM}, T0 + 9 * H)
    with pytest.raises(ProductNotReleased, match="was rejected by QA"):
        hand_over(batch, dispatch, {Side.HANDED_OVER: SAM}, T0 + 9 * H, decision="rejected")
    hand_over(batch, dispatch, {Side.HANDED_OVER: SAM}, T0 + 9 * H, decision="released")
    assert holder(batch.state.custody, Material.FINAL_PRODUCT, "x") == "Clinic Haematology"


def test_neither_side_a_user_is_refused():
    batch = new_batch()
    with pytest.raises(CustodyRefused, match="Neither side of the transfer is a user"):
        batch.prepare_custody(
            typed_transfer("starting_material", COURIER, CLINIC, "Road", "SHP-1"), {}, T0,
            site_organisation="Spoke Site", decision=None,
        )  # fmt: skip


def test_a_signer_must_be_the_person_of_their_side():
    batch = new_batch()
    transfer = typed_transfer("starting_material", COURIER, party(OLIVIA), "Goods-in", "SHP-1")
    with pytest.raises(InvalidInput, match="not that side's person"):
        batch.prepare_custody(
            transfer, {Side.RECEIVED: SAM}, T0, site_organisation="Spoke Site", decision=None
        )


def test_an_author_cannot_sign_a_side_while_an_operator_may():
    batch = new_batch()
    author = person("u-ann", "ann", "author")
    transfer = typed_transfer("starting_material", COURIER, party(author), "Goods-in", "SHP-1")
    with pytest.raises(NotAuthorised, match="To record a custody transfer you need"):
        hand_over(batch, transfer, {Side.RECEIVED: author})
    refusal = batch.refusal(Action.TRANSFER_CUSTODY, OLIVIA, T0)
    assert refusal is None


@pytest.mark.parametrize(
    ("material", "container", "place", "says"),
    [
        ("blood", "S1", "Dock", "'blood' is not a material whose custody is recorded."),
        ("final_product", "", "Dock", "The shipper or container ID is missing."),
        ("final_product", "S1", " ", "The place of the hand-over is missing."),
        ("final_product", "S1\nS2", "Dock", "The shipper or container ID contains"),
    ],
)
def test_a_transfer_typed_wrong_is_refused_with_its_sentence(material, container, place, says):
    with pytest.raises(InvalidInput) as refusal:
        typed_transfer(material, COURIER, CLINIC, place, container)
    assert str(refusal.value).startswith(says)


def test_logger_evidence_is_bound_into_the_record_and_said_in_words():
    assert logger_evidence("", "") is None
    with pytest.raises(InvalidInput, match="not 64 hexadecimal"):
        logger_evidence("abc", "x")
    batch = new_batch()
    evidence = logger_evidence("AB" * 32, "2.1–7.9 °C, no excursion")
    transfer = typed_transfer(
        "starting_material", COURIER, party(OLIVIA), "Goods-in", "SHP-1", evidence
    )
    entry = hand_over(batch, transfer, {Side.RECEIVED: OLIVIA})
    assert entry.body["payload"]["record"]["logger"] == {
        "sha256": "ab" * 32, "summary": "2.1–7.9 °C, no excursion",
    }  # fmt: skip
    words = transfer_in_words(entry.body["payload"])
    assert words.startswith(
        "custody of the apheresis starting material in container SHP-1 passed from Jean "
        "Courier, Lyon Collection Centre (not a user: typed by the signer) to Olivia Tester "
        "(olivia), Spoke Site at Goods-in; signed 'received' by Olivia Tester (olivia)"
    )
    assert "temperature logger file SHA-256 abababababab…: 2.1–7.9 °C" in words


def test_an_aborted_batch_takes_no_custody_transfer():
    batch = new_batch()
    from batch_fixtures import sign

    sign(batch, Action.ABORT, SAM, reason="Bag damaged")
    with pytest.raises(BatchNotActive, match="is aborted: custody transfers are recorded"):
        received(batch)
