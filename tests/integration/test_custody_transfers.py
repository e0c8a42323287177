"""Custody transfers of a batch's material at a spoke, on both databases (issue 17).

Both sides sign in one transaction — the logged-in user, and the other side in place with
their own credentials (the witness mechanism) — or the site user alone with an external person
(a courier) typed. Each refusal writes nothing; custody is recorded after completion too.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_checks import assert_sound, entries, unchanged_by
from batch_helpers import LOT, spoke
from sqlalchemy import select
from support import NOW, PASSWORD
from sync_sites import net

from mes.core.batch import BatchStatus
from mes.core.custody import Material
from mes.core.errors import (
    AuthenticationFailed,
    BatchNotActive,
    CustodyRefused,
    InvalidInput,
    NotAuthorised,
    NotInCustody,
    ProductNotReleased,
    SelfCustodyTransfer,
)
from mes.services import batches, custody
from mes.services.esign import Credentials
from mes.store.models import AuditEntry

__all__ = ["net"]  # the hub and spoke fixture (sync_sites)

LATER = NOW + timedelta(hours=1)
SHA = "ab" * 32


def transfer(site, batch_id, who="olivia", other=None, at=LATER, password=PASSWORD, **fields):
    """``who`` records a transfer at their panel; ``other`` (a user) signs the other side there."""
    typed = {
        "side": "received",
        "material": "starting_material",
        "place": "Goods-in, Suite A",
        "container": "SHP-0001",
        "own_organisation": "",
        "other_organisation": "Lyon Collection Centre",
        "other_name": "Jean Courier",
        **fields,
    }
    other_credentials = Credentials(password, other) if other else None
    with site.uow() as uow:
        return custody.transfer_custody(
            uow, site.ctx(who, at), batch_id, other=other_credentials,
            credentials=Credentials(PASSWORD, who), first_signing_in_session=True, **typed,
        )  # fmt: skip


def started(site) -> str:
    return site.start().state.id


def test_starting_material_received_from_a_courier_is_signed_by_the_site_user(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    batch = transfer(site, batch_id)
    [entry] = [e for e in entries(site, batch_id) if e.kind == "custody_transferred"]
    record, [signature] = entry.payload["record"], entry.payload["signatures"]
    assert record["handed_over_by"] == {
        "name": "Jean Courier", "organisation": "Lyon Collection Centre",
        "user_id": None, "username": None,
    }  # fmt: skip
    assert record["received_by"]["username"] == "olivia"
    assert record["container"] == "SHP-0001"
    assert signature["side"] == "received"
    assert signature["manifestation"]["meaning"] == "received"
    assert signature["manifestation"]["username"] == "olivia"
    with site.uow() as uow:
        held = custody.custody_of(uow, site.ctx("olivia"), batch).holders
        name = uow.site.name
    assert held[Material.STARTING_MATERIAL] == name
    assert_sound(site, batch_id)


def test_both_sides_sign_when_the_other_side_is_a_user_signing_in_place(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    transfer(site, batch_id)  # received from the courier by olivia
    transfer(
        site, batch_id, who="olivia", other="sam", side="handed_over",
        other_organisation="", place="Suite A", container="SHP-0001",
    )  # fmt: skip
    entry = [e for e in entries(site, batch_id) if e.kind == "custody_transferred"][-1]
    signatures = {s["side"]: s for s in entry.payload["signatures"]}
    assert signatures["handed_over"]["manifestation"]["username"] == "olivia"
    assert signatures["received"]["manifestation"]["username"] == "sam"
    assert signatures["received"]["manifestation"]["meaning"] == "received"
    assert signatures["received"]["in_session_of"]["username"] == "olivia"
    assert "in_session_of" not in signatures["handed_over"]
    hashes = {s["manifestation"]["record_hash"] for s in signatures.values()}
    assert len(hashes) == 1  # both bound to the same record
    assert_sound(site, batch_id)
    from mes.core.record import entries_in_words

    view = site.view(batch_id)
    with site.uow() as uow:
        sealed = batches.ledger_entries(uow, site.ctx("olivia"), batch_id)
    words = entries_in_words(view.batch, sealed, "Europe/London")[-1]["text"]
    assert "signed 'handed over' by Olivia Tester (olivia)" in words
    assert "signed 'received' by Sam Tester (sam) in place" in words


def test_the_same_person_on_both_sides_is_refused(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    transfer(site, batch_id)
    refusal = unchanged_by(
        site, lambda: transfer(site, batch_id, other="olivia", side="handed_over"), InvalidInput
    )
    assert str(refusal).startswith("You are the logged-in user: a witness is another person.")


def test_the_same_typed_person_on_both_sides_is_refused_by_the_core():
    from mes.core.custody import Party, check_transfer, typed_transfer

    one = Party("Jean", "Centre")
    with pytest.raises(SelfCustodyTransfer, match="on both sides"):
        check_transfer(
            [], typed_transfer("starting_material", one, Party("jean", "centre"), "x", "S1"),
            site_organisation="Spoke", decision=None,
        )  # fmt: skip
    user = Party("Ann", "Spoke", "u1", "ann")
    with pytest.raises(SelfCustodyTransfer):
        check_transfer(
            [], typed_transfer("final_product", user, user, "x", "S1"),
            site_organisation="Spoke", decision="released",
        )  # fmt: skip


def test_a_missing_container_id_is_refused_and_nothing_written(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    refusal = unchanged_by(site, lambda: transfer(site, batch_id, container="  "), InvalidInput)
    assert str(refusal) == (
        "The shipper or container ID is missing. "
        "Scan the ID on the shipper or container the material travels in."
    )


def test_an_external_person_without_a_name_is_refused(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    refusal = unchanged_by(site, lambda: transfer(site, batch_id, other_name=""), InvalidInput)
    assert "their name and organisation are needed" in str(refusal)


def test_handing_over_material_the_site_does_not_hold_is_refused(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    refusal = unchanged_by(site, lambda: transfer(site, batch_id, side="handed_over"), NotInCustody)
    assert str(refusal).startswith(
        "The apheresis starting material has not been received yet: nobody here holds it"
    )


def test_the_final_product_leaves_only_a_released_batch(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    refusal = unchanged_by(
        site,
        lambda: transfer(
            site,
            batch_id,
            side="handed_over",
            material="final_product",
            other_organisation="Clinic Haematology",
            other_name="Dr Who",
        ),
        ProductNotReleased,
    )
    assert str(refusal).startswith("The batch is not released by QA yet")


def test_a_wrong_password_of_the_other_side_writes_no_transfer(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    transfer(site, batch_id)
    before = len(entries(site, batch_id))
    with pytest.raises(AuthenticationFailed):
        transfer(site, batch_id, other="sam", side="handed_over", password="wrong-password")
    assert len(entries(site, batch_id)) == before


def test_a_person_without_a_signing_role_at_the_site_cannot_sign_a_side(make_uow):
    site = spoke(make_uow)
    site.add_person("ada", ["author"])
    batch_id = started(site)
    transfer(site, batch_id)
    unchanged_by(
        site,
        lambda: transfer(site, batch_id, other="ada", side="handed_over"),
        NotAuthorised,
    )


def test_custody_is_recorded_after_completion_and_refused_on_an_aborted_batch(make_uow):
    from test_batch_release import din_for, finish  # the whole test recipe, signed complete

    site = spoke(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.do_count(batch_id)
    finish(site, batch_id)
    assert site.view(batch_id).batch.state.status is BatchStatus.COMPLETE
    batch = transfer(site, batch_id, at=NOW + timedelta(days=1))
    assert len(batch.state.custody) == 1
    with site.uow() as uow:  # once complete, the product exists, held by the site
        held = custody.custody_of(uow, site.ctx("olivia"), batch).holders
        assert held[Material.FINAL_PRODUCT] == uow.site.name
    aborted = site.start(din=din_for(2, NOW.year), patient_id="PAT-0002").state.id
    with site.uow() as uow:
        batches.abort_batch(
            uow, site.ctx("sam"), aborted, "Bag damaged", Credentials(PASSWORD, "sam"),
            first_signing_in_session=True,
        )  # fmt: skip
    refusal = unchanged_by(site, lambda: transfer(site, aborted), BatchNotActive)
    assert "is aborted: custody transfers are recorded" in str(refusal)


# --- custody of a lot the hub sent (a vector lot), at the spoke's lot receipt -------------------


def receive_lot(site, who="sam", **changes):
    typed = {
        "from_name": "Hub Courier", "from_organisation": "Hub Logistics",
        "place": "Goods-in, Suite A", "container": "DRY-SHIPPER-9",
        **changes,
    }  # fmt: skip
    with site.uow() as uow:
        return custody.receive_lot(
            uow, site.ctx(who, LATER), LOT, credentials=Credentials(PASSWORD, who),
            first_signing_in_session=True, **typed,
        )  # fmt: skip


def test_a_lot_from_the_hub_is_received_into_custody_signed_in_the_audit_trail(make_uow):
    site = spoke(make_uow)
    record = receive_lot(site)
    assert record["handed_over_by"]["organisation"] == "Hub Logistics"
    assert record["received_by"]["username"] == "sam"
    with site.uow() as uow:
        rows = list(
            uow.session.execute(
                select(AuditEntry).where(AuditEntry.record_type == "material-lot")
                .order_by(AuditEntry.seq)
            ).scalars()
        )  # fmt: skip
    signature, change = rows[-2], rows[-1]
    assert (signature.kind, signature.new["meaning"]) == ("signature", "received")
    assert change.action == "material lot custody received"
    assert change.new["container"] == "DRY-SHIPPER-9"
    assert change.new["signature_entry"] == signature.seq


def test_a_lot_is_received_once_and_needs_its_container_id(make_uow):
    site = spoke(make_uow)
    refusal = unchanged_by(site, lambda: receive_lot(site, container=""), InvalidInput)
    assert str(refusal).startswith("The shipper or container ID is missing.")
    receive_lot(site)
    refusal = unchanged_by(site, lambda: receive_lot(site, who="quinn"), CustodyRefused)
    assert str(refusal).startswith(f"Lot {LOT} was already received into custody by Sam Tester")


def test_an_operator_cannot_receive_a_lot_into_custody(make_uow):
    site = spoke(make_uow)
    unchanged_by(site, lambda: receive_lot(site, who="olivia"), NotAuthorised)


def test_the_other_side_signs_in_place_with_their_badge_and_pin(make_uow):
    from test_witness_signatures import SAM_BADGE, SAM_PIN, with_badge

    site = spoke(make_uow)
    with_badge(site)
    batch_id = started(site)
    transfer(site, batch_id)
    with site.uow() as uow:
        custody.transfer_custody(
            uow, site.ctx("olivia", LATER), batch_id, side="handed_over",
            material="starting_material", place="Suite A", container="SHP-0001",
            own_organisation="", other_organisation="", other=Credentials(SAM_PIN, badge=SAM_BADGE),
            credentials=Credentials(PASSWORD, "olivia"), first_signing_in_session=True,
        )  # fmt: skip
    entry = [e for e in entries(site, batch_id) if e.kind == "custody_transferred"][-1]
    received = next(s for s in entry.payload["signatures"] if s["side"] == "received")
    assert received["manifestation"]["username"] == "sam"
    assert received["in_session_of"]["username"] == "olivia"
    assert_sound(site, batch_id)


def dispatched_after_release(net, tmp_path):
    """A batch released at the hub whose product the spoke then dispatched to the clinic."""
    from recipe_driver import run_batch
    from sync_sites import recipe_file
    from test_batch_release import decide, enrolled, send

    from mes.services.review import receive_review_entries
    from mes.store.review import review_ledger

    site = net.connected()
    enrolled(site)
    batch_id = run_batch(site, recipe_file(tmp_path))
    sent = send(net, site, batch_id)
    dispatch = {
        "side": "handed_over", "material": "final_product", "other_name": "Dr Ada Nurse",
        "other_organisation": "Clinic Haematology", "container": "DRY-0007", "place": "Dock",
    }  # fmt: skip
    later = NOW + timedelta(days=2)
    unchanged_by(site, lambda: transfer(site, batch_id, at=later, **dispatch), ProductNotReleased)
    decide(net, batch_id)
    with net.hub(read_only=True) as uow:
        released = review_ledger(uow.session, batch_id)
    with site.uow() as uow:
        receive_review_entries(uow, later, released)
    batch = transfer(site, batch_id, at=later, **dispatch)
    with site.uow() as uow:
        held = custody.custody_of(uow, site.ctx("olivia", later), batch).holders
    assert held[Material.FINAL_PRODUCT] == "Clinic Haematology"
    assert_sound(site, batch_id)
    return site, batch_id, sent, later


def test_the_final_product_goes_to_the_clinic_once_qas_release_reached_the_spoke(net, tmp_path):
    dispatched_after_release(net, tmp_path)


def test_a_transfer_after_release_travels_to_the_hub(net, tmp_path):
    from test_batch_release import send, view

    site, batch_id, sent, later = dispatched_after_release(net, tmp_path)
    assert send(net, site, batch_id, after=sent, at=later) == sent + 1
    assert view(net, batch_id).batch.state.custody[0]["received_by"]["name"] == "Dr Ada Nurse"
