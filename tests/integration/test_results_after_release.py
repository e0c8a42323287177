"""Results after release: provisional then final certification, and a result out of specification.

A batch of BATCH-TEST declaring two pending results (sterility, VCN) is made at spoke SPK1,
sent to the hub and released there provisionally. The spoke's QC enters a result in the batch
ledger, the hub's QC in the review chain (mes.core.after_release reads both); a result out of
specification raises a deviation at the spoke in the same transaction, and nothing else is
signed on the batch at either site until the physician's notification is recorded. Hub and
spoke run on two databases of the same kind, SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import TEST_RECIPE, Spoke
from recipe_driver import run_batch
from sqlalchemy import func, select
from support import PASSWORD, user_ctx
from sync_sites import CLI, SPOKE, Network
from sync_sites import net as net  # the fixture
from test_batch_release import INVESTIGATION, QA_AT, assess, decide, qa, send, view

from mes.core.after_release import (
    AlreadyCertifiedFinal,
    Certification,
    CertificationRefused,
    NotReleased,
    PhysicianNotificationPending,
    ResultAlreadyRecorded,
    ResultNotDeclared,
)
from mes.core.batch import DeviationCategory
from mes.core.errors import NotAuthorised
from mes.services import batches, lookback, network, review
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.users import add_user
from mes.store.models import BatchEntry, BatchReviewEntry

RESULTS_RECIPE = (
    TEST_RECIPE
    + """pending_results:
  - {id: sterility_final, label: Sterility (14-day culture), specification: No growth,
     accepted: [No growth]}
  - {id: vcn, label: Vector copy number, specification: ≤ 5 copies/cell, unit: copies/cell,
     maximum: 5}
"""
)
LATER = QA_AT + timedelta(days=13)  # the 14-day culture is read two weeks after release
GROWTH = {"result": "sterility_final", "value": "Growth: S. epidermidis", "reference": "MB-118"}


def released(net: Network, tmp_path: Path) -> tuple[Spoke, str]:
    """A batch of the recipe with pending results, sent to the hub and released (provisional)."""
    net.publish(net.approve(RESULTS_RECIPE))
    net.enroll()
    site = Spoke(net.spoke_uow, net.hub_key).set_up(RESULTS_RECIPE)
    site.add_person("cora", ["qc"])
    path = tmp_path / "results.yaml"
    path.write_text(RESULTS_RECIPE, encoding="utf-8")
    batch_id = run_batch(site, path)
    send(net, site, batch_id)
    decide(net, batch_id)
    with net.hub() as uow:
        net.hub_ids["quill"] = add_user(
            uow, CLI, username="quill", full_name="Quill Hub", roles=["qc"], password=PASSWORD
        )
    with net.hub() as uow:
        acknowledge_accountability(
            uow, user_ctx(net.hub_ids["quill"]), Credentials(PASSWORD, "quill"), True
        )
    return site, batch_id


def at_spoke(site: Spoke, batch_id: str, who: str = "cora", **fields: Any) -> Any:
    with site.uow() as uow:
        return batches.record_result(uow, site.ctx(who, LATER), batch_id, fields)


def at_hub(net: Network, batch_id: str, who: str = "quill", **fields: Any) -> review.ReviewView:
    with net.hub() as uow:
        ctx = user_ctx(net.hub_ids[who], at=LATER, terminal="QC lab")
        return review.record_result_at_hub(uow, ctx, batch_id, fields)


def certify(net: Network, batch_id: str) -> review.ReviewView:
    with net.hub() as uow:
        return review.certify_final(
            uow, qa(net, at=LATER + timedelta(hours=1)), batch_id, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip


def alerts(net: Network) -> list[str]:
    """The hub's network alerts of results after release, as "<id>: <description>"."""
    with net.hub() as uow:
        view = network.network(uow, qa(net, at=LATER))
    return [f"{a.id}: {a.description}" for a in view.alerts if a.category == "result_after_release"]


def counts(net: Network, site: Spoke) -> tuple[int, int]:
    with net.hub() as uow:
        hub = uow.session.execute(select(func.count()).select_from(BatchReviewEntry)).scalar_one()
    with site.uow() as uow:
        spoke = uow.session.execute(select(func.count()).select_from(BatchEntry)).scalar_one()
    return hub, spoke


def test_a_release_with_results_pending_is_provisional_until_qa_certifies_it_final(
    net: Network, tmp_path: Path
) -> None:
    site, batch_id = released(net, tmp_path)
    opened = view(net, batch_id)
    state = opened.review.after_release()
    assert state.certification is Certification.PROVISIONAL
    assert [p.id for p in state.pending] == ["sterility_final", "vcn"]
    with pytest.raises(CertificationRefused, match=r"Sterility .14-day culture. is pending"):
        certify(net, batch_id)
    # The spoke's QC enters the VCN (batch ledger), the hub's QC the sterility (review chain).
    at_spoke(site, batch_id, result="vcn", value="2.1", reference="PCR-77")
    send(net, site, batch_id, after=view(net, batch_id).batch.state.last_seq, at=LATER)
    at_hub(net, batch_id, result="sterility_final", value="No growth", reference="MB-117")
    before = counts(net, site)
    with pytest.raises(ResultAlreadyRecorded, match="already recorded: No growth"):
        at_hub(net, batch_id, result="sterility_final", value="Growth", reference="MB-119")
    with pytest.raises(ResultNotDeclared, match="declares no pending result 'mycoplasma'"):
        at_spoke(site, batch_id, result="mycoplasma", value="Negative", reference="M-1")
    with pytest.raises(NotAuthorised):  # an operator does not enter QC results
        at_spoke(site, batch_id, who="olivia", result="vcn", value="2", reference="X")
    assert counts(net, site) == before  # nothing half-written
    final = certify(net, batch_id)
    assert final.review.after_release().certification is Certification.FINAL
    assert final.state.followups[-1]["payload"]["manifestation"]["meaning"] == "certified final"
    with pytest.raises(AlreadyCertifiedFinal):
        certify(net, batch_id)


def test_final_certification_before_release_is_refused(net: Network, tmp_path: Path) -> None:
    net.publish(net.approve(RESULTS_RECIPE))
    net.enroll()
    site = Spoke(net.spoke_uow, net.hub_key).set_up(RESULTS_RECIPE)
    path = tmp_path / "results.yaml"
    path.write_text(RESULTS_RECIPE, encoding="utf-8")
    batch_id = run_batch(site, path)
    send(net, site, batch_id)
    with pytest.raises(NotReleased, match="not released"):
        certify(net, batch_id)


def test_a_result_out_of_specification_at_the_spoke_raises_a_deviation_and_holds_every_signature(
    net: Network, tmp_path: Path
) -> None:
    site, batch_id = released(net, tmp_path)
    waiting = run_batch(site, tmp_path / "results.yaml")  # another batch, awaiting review
    send(net, site, waiting)
    batch = at_spoke(site, batch_id, **GROWTH)
    (deviation,) = [
        d
        for d in batch.state.deviations.values()
        if d.category == DeviationCategory.RESULT_AFTER_RELEASE
    ]
    assert batch.after_release().notification_pending
    assert alerts(net) == []  # not at the hub yet
    send(net, site, batch_id, after=view(net, batch_id).batch.state.last_seq, at=LATER)
    number = view(net, batch_id).row.number
    with net.hub() as uow:  # the released batch heads QA's queue, before one awaiting review
        assert [r.id for r in review.qa_queue(uow, qa(net, at=LATER)).rows] == [batch_id, waiting]
    (alert,) = alerts(net)
    assert alert.startswith(f"{number}:sterility_final: Specification No growth (report MB-118")
    assert alert.endswith("Notify the treating physician now: nothing else can be signed on "
                          "this batch until it is recorded.")  # fmt: skip
    # At the hub: every other signature is refused until the physician is told.
    assess(net, batch_id, deviation.id, ctx=qa(net, at=LATER), **INVESTIGATION)
    with net.hub() as uow, pytest.raises(PhysicianNotificationPending, match="treating physician"):
        review.close_deviation(
            uow, qa(net, at=LATER), batch_id, deviation.id, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    with pytest.raises(PhysicianNotificationPending):
        certify(net, batch_id)
    # The spoke's supervisor records the notification, signed: who was told, when, how.
    told = {
        "result": "sterility_final",
        "physician": "Dr Ada Haem",
        "how": "phone",
        "told_at": "2026-01-16T09:05:00Z",
    }
    with site.uow() as uow:
        batch = batches.notify_physician(
            uow, site.ctx("sam", LATER + timedelta(minutes=5)), batch_id, told,
            Credentials(PASSWORD, "sam"), first_signing_in_session=True,
        )  # fmt: skip
    assert not batch.after_release().notification_pending
    send(net, site, batch_id, after=view(net, batch_id).batch.state.last_seq, at=LATER)
    (alert,) = alerts(net)
    assert alert.endswith(f"Physician Dr Ada Haem told by phone by Sam Tester; deviation "
                          f"{deviation.id} to close.")  # fmt: skip
    with net.hub() as uow:
        closed = review.close_deviation(
            uow, qa(net, at=LATER + timedelta(hours=1)), batch_id, deviation.id,
            Credentials(PASSWORD), first_signing_in_session=False,
        )  # fmt: skip
    state = closed.review.after_release()
    assert not state.open_events
    assert alerts(net) == []
    assert state.certification is Certification.PROVISIONAL  # out of spec: never final
    with pytest.raises(CertificationRefused, match="out of specification"):
        certify(net, batch_id)


def test_a_result_out_of_specification_at_the_hub_is_notified_by_qa_before_anything_else(
    net: Network, tmp_path: Path
) -> None:
    _site, batch_id = released(net, tmp_path)
    opened = at_hub(net, batch_id, **GROWTH)
    assert opened.review.after_release().open_events
    (alert,) = alerts(net)
    assert "entered at the hub" in alert
    with pytest.raises(PhysicianNotificationPending):
        certify(net, batch_id)
    told = {"result": "sterility_final", "physician": "Dr Ada Haem", "how": "in_person",
            "told_at": "2026-01-16T09:05:00Z"}  # fmt: skip
    with net.hub() as uow:
        notified = review.notify_physician_at_hub(
            uow, qa(net, at=LATER), batch_id, told, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    assert not notified.review.after_release().open_events
    assert alerts(net) == []


def test_a_look_back_disposition_waits_for_the_physicians_notification(
    net: Network, tmp_path: Path
) -> None:
    """The gate holds every other signature at the hub, a look-back disposition too."""
    _site, batch_id = released(net, tmp_path)
    at_hub(net, batch_id, **GROWTH)
    with net.hub() as uow:
        case = lookback.open_lookback(
            uow, qa(net, at=LATER), "recipe_version", "BATCH-TEST v1", "Supplier recall"
        )
    before = counts(net, _site)
    with net.hub() as uow, pytest.raises(PhysicianNotificationPending, match="treating physician"):
        lookback.dispose(
            uow, qa(net, at=LATER), case.id, batch_id, "notify", Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    assert counts(net, _site) == before  # refused before any signature: nothing written


def test_the_hub_refuses_a_notification_told_later_than_now(net: Network, tmp_path: Path) -> None:
    """As at the spoke: the physician cannot have been told after the signature."""
    from mes.core.errors import InvalidInput

    _site, batch_id = released(net, tmp_path)
    at_hub(net, batch_id, **GROWTH)
    told = {"result": "sterility_final", "physician": "Dr Ada Haem", "how": "phone",
            "told_at": (LATER + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    with net.hub() as uow, pytest.raises(InvalidInput, match="later than now"):
        review.notify_physician_at_hub(
            uow, qa(net, at=LATER), batch_id, told, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip


def test_a_look_back_disposition_waits_then_is_signed_once_the_physician_is_told(
    net: Network, tmp_path: Path
) -> None:
    _site, batch_id = released(net, tmp_path)
    at_hub(net, batch_id, **GROWTH)
    with net.hub() as uow:
        opened = lookback.open_lookback(
            uow, qa(net, at=LATER), "operator", "olivia", "Operator retrained after an audit"
        )
    before = counts(net, _site)

    def dispose() -> review.ReviewView:
        with net.hub() as uow:
            return lookback.dispose(
                uow, qa(net, at=LATER), opened.id, batch_id, "notify",
                Credentials(PASSWORD), first_signing_in_session=False, reason="Patient infused",
            )  # fmt: skip

    with pytest.raises(PhysicianNotificationPending, match="treating physician"):
        dispose()
    assert counts(net, _site) == before  # nothing written
    told = {"result": "sterility_final", "physician": "Dr Ada Haem", "how": "phone",
            "told_at": "2026-01-16T09:05:00Z"}  # fmt: skip
    with net.hub() as uow:
        review.notify_physician_at_hub(
            uow, qa(net, at=LATER), batch_id, told, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    disposed = dispose()
    assert disposed.review.new_entries[-1].body["kind"] == "lookback_disposition"
    with net.hub() as uow:  # still provisional (out of specification): the queue says why
        (row,) = [r for r in review.qa_queue(uow, qa(net, at=LATER)).rows if r.id == batch_id]
    assert row.after_release == ("Provisional: awaiting Vector copy number",)


def test_the_qa_queue_says_why_a_released_batch_is_still_there(
    net: Network, tmp_path: Path
) -> None:
    site, batch_id = released(net, tmp_path)

    def row() -> review.QueueRow:
        with net.hub() as uow:
            rows = review.qa_queue(uow, qa(net, at=LATER)).rows
        return next(r for r in rows if r.id == batch_id)

    assert row().after_release == (
        "Provisional: awaiting Sterility (14-day culture), Vector copy number",
    )
    at_spoke(site, batch_id, result="vcn", value="2.1", reference="PCR-77")
    send(net, site, batch_id, after=view(net, batch_id).batch.state.last_seq, at=LATER)
    assert row().after_release == ("Provisional: awaiting Sterility (14-day culture)",)
    at_hub(net, batch_id, **GROWTH)
    assert row().after_release == (
        "Result out of specification after release: Sterility (14-day culture) — notify the "
        "treating physician",
    )


def test_the_network_page_counts_a_result_out_of_specification_as_it_lists_it(
    net: Network, tmp_path: Path
) -> None:
    """Walk 17: "Open deviations at the spokes" read 0 beside the listed out-of-spec result
    (entered at the hub it has no ledger deviation; entered at the spoke it was counted apart)."""

    def shown() -> tuple[int, int, int]:
        with net.hub() as uow:
            view = network.network(uow, qa(net, at=LATER))
        (spoke,) = [s for s in view.spokes if s.spoke.code == SPOKE]
        return len(view.alerts), spoke.open_deviations, sum(s.open_deviations for s in view.spokes)

    _site, batch_id = released(net, tmp_path)
    assert shown() == (0, 0, 0)
    at_hub(net, batch_id, **GROWTH)
    assert shown() == (1, 1, 1)
