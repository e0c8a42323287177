"""Look-back at the hub: what each batch used (a read model kept by ingest and equal to a
rebuild), every batch that used a lot, instrument, operator or recipe version, and QA's signed
dispositions on the review chains, carried back to the spoke as its notifications.

Batches are made at spoke SPK1 through its real services and pushed to the hub as in
``test_read_models``; both databases.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_helpers import COUNTER, LOT, SCANNER
from sqlalchemy import select
from support import NOW, PASSWORD
from sync_sites import CLI, SPOKE, Network, net  # noqa: F401  (the fixture)
from test_read_models import begin, connected, count, differences, finish, qa, send

from mes.core.errors import InvalidInput, NotAuthorised
from mes.core.lookback import (
    DispositionAlreadySigned,
    NoActionWithoutReason,
    UnknownLookBackSubject,
)
from mes.core.review import ReviewKind
from mes.services import lookback, outbox, review
from mes.services.esign import Credentials
from mes.store.models import AuditEntry, BatchUsage

LATER = NOW + timedelta(days=2)


def used(net: Network, batch_id: str) -> set[tuple[str, str, str | None]]:  # noqa: F811
    with net.hub() as uow:
        return {
            (u.kind, u.identifier, u.detail)
            for u in uow.session.scalars(select(BatchUsage).where(BatchUsage.batch_id == batch_id))
        }


def two_batches(net: Network) -> tuple[object, str, str]:  # noqa: F811
    """Batch 1 counted with the syringe lot and the counter, complete; batch 2 only begun."""
    site = connected(net)
    first = begin(site, "PT-0001")
    count(site, first)
    finish(site, first)
    send(net, site, first)
    second = begin(site, "PT-0002")
    send(net, site, second)
    return site, first, second


def sign(net: Network, lookback_id: str, batch_id: str, disposition: str, reason=None):  # noqa: F811
    with net.hub() as uow:
        return lookback.dispose(
            uow, qa(net, LATER), lookback_id, batch_id, disposition,
            Credentials(PASSWORD, "quinn"), first_signing_in_session=True, reason=reason,
        )  # fmt: skip


def test_the_hub_keeps_what_each_batch_used_and_a_rebuild_gives_the_same_rows(net):  # noqa: F811
    _site, first, second = two_batches(net)
    found = used(net, first)
    assert ("lot", LOT, "MAT-SYRINGE") in found
    assert {("instrument", SCANNER, None), ("instrument", COUNTER, None)} <= found
    assert ("recipe_version", "BATCH-TEST v1", None) in found
    signers = {i for k, i, _d in found if k == "operator"}
    assert {"olivia", "sam"} <= signers  # performed, verified, completed
    assert not any(k == "lot" for k, _i, _d in used(net, second))  # not counted yet
    assert differences(net) == []


def test_a_look_back_lists_every_batch_that_used_the_subject_with_patient_and_status(net):  # noqa: F811
    _site, first, second = two_batches(net)
    with net.hub() as uow:
        found = lookback.look_back(uow, qa(net), "lot", f"  {LOT} ")
    assert [b.batch_id for b in found.batches] == [first]
    (batch,) = found.batches
    assert batch.chain_of_identity["patient_id"] == "PT-0001"
    assert (batch.site, batch.status, batch.qa_state) == (SPOKE, "complete", "awaiting_review")
    assert batch.detail == "MAT-SYRINGE" and batch.completed_at
    with net.hub() as uow:
        both = lookback.look_back(uow, qa(net), "instrument", SCANNER)
        nobody = lookback.look_back(uow, qa(net), "operator", "nobody")
    assert {b.batch_id for b in both.batches} == {first, second}
    assert nobody.batches == []
    with net.hub() as uow, pytest.raises(InvalidInput, match="not something a look-back"):
        lookback.look_back(uow, qa(net), "room", "R-1")


def test_only_qa_looks_back(net):  # noqa: F811
    two_batches(net)
    with net.hub() as uow, pytest.raises(NotAuthorised):
        lookback.look_back(uow, qa(net).__class__(NOW, net.hub_ids["sam"], "x"), "lot", LOT)


def test_qa_opens_a_look_back_and_signs_one_disposition_per_batch_that_reach_the_spoke(net):  # noqa: F811
    site, first, second = two_batches(net)
    with net.hub() as uow, pytest.raises(UnknownLookBackSubject, match="No batch held"):
        lookback.open_lookback(uow, qa(net), "lot", "LOT-NOBODY-USED", "Supplier recall")
    with net.hub() as uow, pytest.raises(InvalidInput, match="reason"):
        lookback.open_lookback(uow, qa(net), "lot", LOT, "  ")
    with net.hub() as uow:
        opened = lookback.open_lookback(
            uow, qa(net), "lot", LOT, "Supplier recall: endotoxin above the limit"
        )
        lookback_id = opened.id
    with net.hub() as uow:
        audit = uow.session.scalars(
            select(AuditEntry).where(AuditEntry.record_id == lookback_id)
        ).all()
        assert [a.action for a in audit] == ["look-back opened"]
        assert audit[0].reason == "Supplier recall: endotoxin above the limit"

    with pytest.raises(NoActionWithoutReason):
        sign(net, lookback_id, first, "no_action")
    with pytest.raises(InvalidInput, match="not in this look-back"):
        sign(net, lookback_id, second, "notify")
    view = sign(net, lookback_id, first, "notify", "Patient infused on 21 Nov")
    entry = view.review.new_entries[-1].body
    assert entry["kind"] == ReviewKind.LOOKBACK_DISPOSITION
    assert entry["payload"]["manifestation"]["meaning"] == "reviewed"
    with pytest.raises(DispositionAlreadySigned, match="already has its disposition"):
        sign(net, lookback_id, first, "no_action", "changed my mind")

    with net.hub() as uow:
        case = lookback.lookback_case(uow, qa(net), lookback_id)
    assert case.dispositions[first].disposition.value == "notify"
    assert case.open_batches == 0

    # The review chain goes back to the spoke: its page lists the notification.
    with site.uow() as uow:
        outbox.record_enrollment(uow, CLI, "https://hub.example", "HUB", "hub-key-1")
    with site.uow() as uow:
        assert review.awaited_reviews(uow) == {first: 0}
    with net.hub() as uow:
        entries = review.review_updates(uow, SPOKE, {first: 0})
    with site.uow() as uow:
        assert review.receive_review_entries(uow, LATER, entries) >= 1
    with site.uow() as uow:
        (notice,) = lookback.notifications(uow, site.ctx("olivia", LATER))
    assert notice.batch_id == first
    assert notice.subject == f"Material lot {LOT}"
    assert notice.lookback_reason == "Supplier recall: endotoxin above the limit"
    assert notice.reason == "Patient infused on 21 Nov" and notice.by == "Quinn Hub"
    assert differences(net) == []
