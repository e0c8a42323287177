"""The hub's read models: kept by ingest and QA's review in the same transaction, equal to a
rebuild from the chains, and the QA queue read from them as it was read from the records.

Batches of a recipe with critical values (viability a CQA, the total a CPP calculation) and a
receipt milestone are made at spoke SPK1 through its real services and pushed to the hub in
chunks, as in ``test_batch_release``; both databases.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from batch_helpers import COUNTER, LOT, TEST_RECIPE, Spoke
from sqlalchemy import select, update
from support import NOW, PASSWORD, user_ctx
from sync_sites import CLI, SPOKE, Network, net  # noqa: F401  (the fixture)

from mes.core.batch import Action
from mes.core.clock import utc_text
from mes.core.errors import InvalidInput, NotAuthorised
from mes.core.review import Category, Decision, QaState
from mes.services import batches, ingest, outbox, review
from mes.services.esign import Credentials
from mes.services.read_models import read_model_differences, rebuild_read_models
from mes.store import read_models
from mes.store.models import BatchMilestone, BatchSummary, BatchValue, ParameterResult

HOURS = timedelta(hours=1)
QA_AT = NOW + timedelta(days=1)
RECEIVED = datetime(2026, 11, 21, 7, 30, tzinfo=NOW.tzinfo)  # at the spoke, before the count

CRITICAL_RECIPE = (
    TEST_RECIPE.replace(
        "                action_low: 70\n",
        "                action_low: 70\n                criticality: cqa\n",
    )
    .replace(
        "                action_low: 100\n",
        "                action_low: 100\n                criticality: cpp\n",
    )
    .replace(
        "              volume: {label: Bag volume, type: number, unit: mL, decimals: 0}\n",
        "              volume: {label: Bag volume, type: number, unit: mL, decimals: 0}\n"
        "              received:\n"
        "                label: Received at the spoke\n"
        "                type: datetime\n"
        "                required: false\n"
        "                milestone: receipt\n",
    )
)


def connected(net: Network) -> Spoke:  # noqa: F811
    """The critical recipe effective at the hub, published to SPK1, SPK1 enrolled and set up."""
    net.publish(net.approve(CRITICAL_RECIPE))
    net.enroll()
    return Spoke(net.spoke_uow, net.hub_key).set_up(CRITICAL_RECIPE)


def begin(site: Spoke, patient: str, at: datetime = NOW) -> str:
    """A batch for ``patient`` with its bag checked (verified by Sam at once: a rubber stamp)."""
    from recipe_driver import din_barcode, din_for

    serial = int(patient.rsplit("-", 1)[1])
    din = din_for(serial, at.year)
    batch_id = site.start(at=at, din=din, patient_id=patient).state.id
    site.start_phase(batch_id, "check_bag", at=at)
    result = site.record(
        batch_id, "check_bag", at=at, values={"bag_intact": "yes"}, equipment={0: "SCN-01"},
        identity={"bag_din": din_barcode(din), "bag_patient": patient},
    )  # fmt: skip
    assert not result.field_errors, result.field_errors
    site.sign(batch_id, "check_bag", at=at)
    site.sign(batch_id, "check_bag", Action.VERIFY, who="sam", at=at)
    return batch_id


def count(site: Spoke, batch_id: str, at: datetime = NOW, viability: str = "92.0") -> None:
    """The count, with the bag's receipt time (the receipt milestone); performed."""
    site.start_phase(batch_id, "count_cells", at=at)
    result = site.record(
        batch_id, "count_cells", at=at,
        values={"volume": "200", "viability": viability, "viable_conc": "5.00",
                "received": RECEIVED.strftime("%Y-%m-%dT%H:%MZ")},
        equipment={0: COUNTER}, lots={"MAT-SYRINGE": LOT},
        comments={"viability": "Low viability reported to QA"},
    )  # fmt: skip
    assert not result.field_errors, result.field_errors
    site.sign(batch_id, "count_cells", at=at)


def finish(site: Spoke, batch_id: str, at: datetime = NOW) -> None:
    """Culture and harvest 3 h after the count at ``at``; Sam signs the batch complete."""
    later = at + 3 * HOURS
    site.do_culture_and_harvest(batch_id, at=later)
    with site.uow() as uow:
        batches.complete_batch(
            uow, site.ctx("sam", later), batch_id, Credentials(PASSWORD, "sam"),
            first_signing_in_session=True,
        )  # fmt: skip


def send(net: Network, site: Spoke, batch_id: str, after: int = 0, size: int = 500,  # noqa: F811
         at: datetime = NOW + 6 * HOURS) -> int:  # fmt: skip
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, at, batch_id, after, size)
    with net.hub() as uow:
        ingest.ingest_chunk(uow, at, SPOKE, token)
    return last


def qa(net: Network, at: datetime = QA_AT) -> Any:  # noqa: F811
    return user_ctx(net.hub_ids["quinn"], at=at, terminal="QA office")


def summary(net: Network, batch_id: str) -> BatchSummary:  # noqa: F811
    with net.hub() as uow:
        row = uow.session.get(BatchSummary, batch_id)
        assert row is not None
        uow.session.expunge(row)
        return row


def values(net: Network, batch_id: str) -> dict[str, tuple]:  # noqa: F811
    with net.hub() as uow:
        return {
            r.parameter: (r.value, r.criticality, r.unit, r.label, r.recorded_at, r.demo)
            for r in uow.session.execute(
                select(ParameterResult).where(ParameterResult.batch_id == batch_id)
            ).scalars()
        }


def milestones(net: Network, batch_id: str) -> dict[str, tuple[str, str]]:  # noqa: F811
    with net.hub() as uow:
        return {
            r.milestone: (r.at, r.source)
            for r in uow.session.execute(
                select(BatchMilestone).where(BatchMilestone.batch_id == batch_id)
            ).scalars()
        }


def differences(net: Network) -> list[str]:  # noqa: F811
    with net.hub() as uow:
        return read_model_differences(uow, qa(net))


def stored(net: Network) -> read_models.Rows:  # noqa: F811
    with net.hub() as uow:
        return read_models.stored(uow.session)


def test_ingest_keeps_the_read_models_and_a_rebuild_gives_the_same_rows(net):  # noqa: F811
    site = connected(net)
    batch_id = begin(site, "DEMO-0001")
    count(site, batch_id, viability="80.0")  # outside the alert limit: an exception
    first = send(net, site, batch_id)

    row = summary(net, batch_id)
    assert (row.status, row.qa_state, row.current_phase) == ("in_progress", "at_spoke", "Test A")
    assert (row.site, row.recipe_code, row.recipe_version, row.demo) == (
        SPOKE, "BATCH-TEST", 1, True,
    )  # fmt: skip
    # The harvest may start 2 h after the count and must within 4 h: the next bound is 2 h.
    assert row.next_timer_at == utc_text(NOW + 2 * HOURS)
    assert row.newest_entry_at == utc_text(NOW)
    assert row.received_at == utc_text(NOW + 6 * HOURS)
    assert (row.started_at, row.completed_at, row.decided_at) == (utc_text(NOW), None, None)
    assert not row.blocking  # entries still to come are not an alarm
    assert values(net, batch_id) == {
        "count_cells.viability": (80.0, "cqa", "%", "Viability", utc_text(NOW), True),
        "count_cells.total": (1000.0, "cpp", "×10^6 cells", "Total viable cells",
                              utc_text(NOW), True),
    }  # fmt: skip
    assert milestones(net, batch_id) == {
        "receipt": (utc_text(RECEIVED), "recipe"),
        "manufacturing_start": (utc_text(NOW), "event"),
        "up:receipt": (utc_text(NOW), "event"),  # every phase of the receipt is done
    }
    assert differences(net) == []

    # A correction of the critical value, then the rest of the batch in a later chunk.
    with site.uow() as uow:
        batches.correct_value(
            uow, site.ctx("olivia", NOW + HOURS), batch_id, "count_cells", "viability", "91.5",
            "Transcription error: the counter printed 91.5", Credentials(PASSWORD, "olivia"),
            first_signing_in_session=True,
        )  # fmt: skip
    finish(site, batch_id)
    send(net, site, batch_id, after=first, at=NOW + 8 * HOURS)

    row = summary(net, batch_id)
    view = _view(net, batch_id)
    assert (row.status, row.qa_state, row.current_phase, row.next_timer_at) == (
        "complete", "awaiting_review", None, None,
    )  # fmt: skip
    assert row.exceptions == len(view.unreviewed) > 0
    assert row.open_deviations == len(view.open_deviations)
    assert row.received_at == utc_text(NOW + 8 * HOURS)
    assert row.completed_at == utc_text(NOW + 3 * HOURS)
    assert values(net, batch_id)["count_cells.viability"][:2] == (91.5, "cqa")
    with net.hub() as uow:  # the value as the batch's own projection holds it
        held = uow.session.get(BatchValue, (batch_id, "count_cells", "viability"))
        assert held is not None and held.value == "91.5"
    points = milestones(net, batch_id)
    assert points["manufacturing_end"] == (utc_text(NOW + 3 * HOURS), "event")
    assert points["up:culture"] == (utc_text(NOW + 3 * HOURS), "event")
    assert "hub_release" not in points
    assert differences(net) == []

    maintained = stored(net)
    with net.hub() as uow:
        rebuilt = rebuild_read_models(uow, qa(net))
    assert (rebuilt.batches, rebuilt.rows["parameter_results"]) == (1, 2)
    assert stored(net).tables == maintained.tables


def _view(net: Network, batch_id: str) -> review.ReviewView:  # noqa: F811
    with net.hub() as uow:
        return review.review_batch(uow, qa(net), batch_id)


def test_each_qa_action_moves_the_summary_and_the_release_is_a_milestone(net):  # noqa: F811
    site = connected(net)
    batch_id = begin(site, "PAT-0001")
    count(site, batch_id, viability="60.0")  # outside the action limit: deviation D1
    number = site.view(batch_id).batch.state.number
    site.acknowledge(batch_id, f"{number}-D1", at=NOW + timedelta(minutes=5))
    finish(site, batch_id)
    send(net, site, batch_id)
    before = summary(net, batch_id)
    assert (before.qa_state, before.open_deviations, before.demo) == ("awaiting_review", 1, False)

    with net.hub() as uow:
        review.assess_deviation(
            uow, qa(net), batch_id, f"{number}-D1",
            {"classification": "minor", "description": "Low viability.", "impact": "None.",
             "root_cause": "Sample left standing."},
        )  # fmt: skip
    assert summary(net, batch_id).qa_state == "under_review"
    with net.hub() as uow:
        review.close_deviation(
            uow, qa(net), batch_id, f"{number}-D1", Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    assert summary(net, batch_id).open_deviations == 0
    waiting = _view(net, batch_id).unreviewed
    with net.hub() as uow:
        review.mark_reviewed(
            uow, qa(net), batch_id, waiting[0].key, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    assert summary(net, batch_id).exceptions == len(waiting) - 1
    with net.hub() as uow:
        view = review.load_review(uow, batch_id)
        seen = {f.key: f.digest for f in view.unreviewed}
    with net.hub() as uow:
        review.mark_reviewed_together(
            uow, qa(net), batch_id, seen, Credentials(PASSWORD), first_signing_in_session=False
        )
    assert summary(net, batch_id).exceptions == 0
    released_at = QA_AT + HOURS
    with net.hub() as uow:
        review.decide_batch(
            uow, qa(net, released_at), batch_id, Decision.RELEASED, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    row = summary(net, batch_id)
    assert (row.qa_state, row.decided_at) == ("released", utc_text(released_at))
    assert milestones(net, batch_id)["hub_release"] == (utc_text(released_at), "event")
    assert differences(net) == []


# --- the QA queue, read from the summaries as it was read from the records ---------------------


def queue_from_the_records(net: Network, when: Any, **filters: Any) -> list[tuple]:  # noqa: F811
    """The queue as it was computed before the read models: every batch's record replayed."""
    from mes.store.models import Batch as BatchRow
    from mes.store.models import BatchReview

    rows = []
    with net.hub() as uow:
        for batch, decision in uow.session.execute(
            select(BatchRow, BatchReview).outerjoin(
                BatchReview, BatchReview.batch_id == BatchRow.id
            )
        ).all():
            view = review.load_review(uow, batch.id, verify=False)
            state = view.qa_state
            since = batch.completed_at or batch.created_at
            age = max(0, (when.at - datetime.fromisoformat(since.replace("Z", "+00:00"))).days)
            decided = state in (QaState.RELEASED, QaState.REJECTED)
            if filters.get("site") and batch.site != filters["site"]:
                continue
            if filters.get("state") and state.value != filters["state"]:
                continue
            if filters.get("min_age_days") is not None and age < filters["min_age_days"]:
                continue
            rows.append(
                (
                    batch.id,
                    state,
                    age,
                    0 if decided else len(view.open_deviations),
                    0 if decided else len(view.unreviewed),
                    False
                    if decided
                    else any(
                        f.blocking and f.category is not Category.PENDING for f in view.findings
                    ),
                    decision.decided_by if decision else None,
                )
            )
    return rows


def test_the_qa_queue_lists_and_counts_what_the_records_say(net):  # noqa: F811
    site = connected(net)
    made = []
    for n, (viability, days) in enumerate(
        [("92.0", 0), ("80.0", 1), ("60.0", 2), ("92.0", 3), ("92.0", 4)], start=1
    ):
        at = NOW + timedelta(days=days)
        batch_id = begin(site, f"PAT-{n:04d}", at)
        count(site, batch_id, at=at, viability=viability)
        if viability == "60.0":  # its deviation, acknowledged by Sam
            number = site.view(batch_id).batch.state.number
            site.acknowledge(batch_id, f"{number}-D1", at=at + timedelta(minutes=5))
        if n != 5:  # the fifth stays at the spoke
            finish(site, batch_id, at)
        made.append(batch_id)
        send(net, site, batch_id, at=at + 6 * HOURS)
    # One released, one rejected, one under review (an exception marked), one awaiting.
    with net.hub() as uow:
        view = review.load_review(uow, made[0])
    for finding in view.unreviewed:
        with net.hub() as uow:
            review.mark_reviewed(
                uow, qa(net, NOW + timedelta(days=5)), made[0], finding.key,
                Credentials(PASSWORD), first_signing_in_session=False,
            )  # fmt: skip
    later = NOW + timedelta(days=5, hours=1)
    with net.hub() as uow:
        review.decide_batch(
            uow, qa(net, later), made[0], Decision.RELEASED, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    with net.hub() as uow:
        review.decide_batch(
            uow, qa(net, later), made[2], Decision.REJECTED, Credentials(PASSWORD),
            first_signing_in_session=False, reason="Viability below the action limit.",
        )  # fmt: skip
    with net.hub() as uow:
        first = review.load_review(uow, made[1]).unreviewed[0].key
    with net.hub() as uow:
        review.mark_reviewed(
            uow, qa(net, later), made[1], first, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    when = qa(net, NOW + timedelta(days=6))

    def queue(**filters: Any) -> review.Queue:
        with net.hub() as uow:
            return review.qa_queue(uow, when, **filters)

    for filters in (
        {},
        {"site": SPOKE},
        {"site": "SPK9"},
        {"state": "awaiting_review"},
        {"state": "released"},
        {"min_age_days": 3},
        {"min_age_days": 0},
        {"state": "at_spoke", "min_age_days": 1},
    ):
        found = queue(**filters)
        expected = queue_from_the_records(net, when, **filters)
        listed = [
            (r.id, r.qa_state, r.age_days, r.open_deviations, r.unreviewed, r.blocked,
             r.decision_by)
            for r in found.rows
        ]  # fmt: skip
        assert sorted(listed) == sorted(expected), filters
        assert found.matching == len(expected), filters
    everything = queue()
    assert everything.counts == {
        "at_spoke": 1, "awaiting_review": 1, "under_review": 1, "released": 1, "rejected": 1,
        "event": 0, "needs_attention": 2,
    }  # fmt: skip
    # Awaiting, under review, at the spoke, released, rejected; the newest first within each.
    assert [r.id for r in everything.rows] == [made[3], made[1], made[4], made[0], made[2]]
    assert [r.id for r in queue(limit=2).rows] == [made[3], made[1]]
    assert queue(limit=2).matching == 5
    assert (everything.sites, everything.products) == ([SPOKE], ["BATCH-TEST"])


def test_a_rebuild_restores_rows_lost_or_changed_and_the_check_names_them(net):  # noqa: F811
    site = connected(net)
    batch_id = begin(site, "PAT-0001")
    count(site, batch_id)
    send(net, site, batch_id)
    with net.hub() as uow:
        uow.session.execute(update(BatchSummary).values(exceptions=7, current_phase=None))
        uow.session.execute(
            BatchMilestone.__table__.delete().where(BatchMilestone.milestone == "receipt")
        )
        uow.commit()
    found = differences(net)
    assert f"batch_milestones {batch_id}/receipt: missing" in found
    [changed] = [line for line in found if line.startswith(f"batch_summaries {batch_id}")]
    assert "exceptions 7 (should be" in changed and "current_phase None" in changed
    with net.hub() as uow:
        rebuild_read_models(uow, qa(net))
    assert differences(net) == []


def test_only_administrators_and_qa_rebuild_and_only_at_the_hub(net):  # noqa: F811
    net.add_hub_people()
    with net.hub() as uow, pytest.raises(NotAuthorised):
        rebuild_read_models(uow, user_ctx(net.hub_ids["sam"]))
    with net.hub() as uow:
        assert rebuild_read_models(uow, CLI).batches == 0  # the server's command line
    with net.spoke_uow() as uow, pytest.raises(InvalidInput) as caught:
        rebuild_read_models(uow, CLI)
    assert "kept at the hub" in caught.value.message


def test_a_corrected_value_keeps_its_place_in_the_series_and_stands_on_its_correction(net):  # noqa: F811
    """A correction does not move the batch in the series (issue 16 review, 5): the charts and
    baselines order by when a value was first recorded; the row names the correction's entry."""
    from mes.store import cpv as cpv_store

    site = connected(net)
    early = begin(site, "PAT-0001")
    count(site, early, viability="90.0")
    later = begin(site, "PAT-0002", at=NOW + HOURS)
    count(site, later, at=NOW + HOURS)
    with site.uow() as uow:
        batches.correct_value(
            uow, site.ctx("olivia", NOW + 2 * HOURS), early, "count_cells", "viability", "91.5",
            "Transcription error: the counter printed 91.5", Credentials(PASSWORD, "olivia"),
            first_signing_in_session=True,
        )  # fmt: skip
    for batch_id, at in ((early, NOW), (later, NOW + HOURS)):
        finish(site, batch_id, at=at)  # CPV charts complete batches only
        send(net, site, batch_id, at=NOW + 6 * HOURS)
    with net.hub() as uow:
        row = uow.session.get(ParameterResult, (early, "count_cells", "viability"))
        assert row is not None and row.value == 91.5
        assert (row.recorded_at, row.corrected_at) == (utc_text(NOW), utc_text(NOW + 2 * HOURS))
        corrected = site.view(early).batch.state.phases["count_cells"].values["viability"]
        assert row.entry_seq == corrected.seq  # the correction's entry, not the first one
        series = cpv_store.results(
            uow.session, "BATCH-TEST", None, None, series=("count_cells.viability", "%")
        )
    # The corrected batch keeps its place before the later one (it was last after the correction).
    assert [r.batch_id for r in series] == [early, later]
    assert [r.at for r in series] == [utc_text(NOW), utc_text(NOW + HOURS)]
    assert differences(net) == []


def test_a_value_changed_behind_the_hubs_back_refuses_the_report_and_the_check_names_it(net):  # noqa: F811
    """Each value is tied to its ledger entry (issue 16 review, 8): the report's data carries
    the entry's seq and hash; a row changed by SQL refuses the report and the check names it."""
    from mes.pdf.comparability import report_data

    site = connected(net)
    batch_id = begin(site, "PAT-0001")
    count(site, batch_id)
    finish(site, batch_id)  # CPV charts complete batches only
    send(net, site, batch_id)
    number = site.view(batch_id).batch.state.number
    day = NOW.date()
    with net.hub() as uow:
        row = uow.session.get(ParameterResult, (batch_id, "count_cells", "viability"))
        assert row is not None
        seq, entry_hash = row.entry_seq, row.entry_hash
        data = report_data(uow, qa(net), "BATCH-TEST", day, day)[1].decode()
    [point] = [
        line
        for line in data.splitlines()
        if line.startswith("point,BATCH-TEST,count_cells.viability,")
    ]
    assert number in point and point.endswith(f",{seq},{entry_hash}")

    with net.hub() as uow:
        uow.session.execute(
            update(ParameterResult)
            .where(ParameterResult.parameter == "count_cells.viability")
            .values(value=ParameterResult.value + 100)
        )
        uow.commit()
    with net.hub() as uow, pytest.raises(InvalidInput) as caught:
        report_data(uow, qa(net), "BATCH-TEST", day, day)
    words = f"{caught.value.message} {caught.value.what_to_do}"
    assert f"batch {number} does not match its ledger" in words
    assert "mes network rebuild --check" in words
    [line] = [line for line in differences(net) if line.startswith("parameter_results")]
    assert f"{batch_id}/count_cells/viability" in line and "value 192.0 (should be 92.0)" in line


def test_summaries_computed_with_other_review_settings_are_named_until_a_rebuild(net):  # noqa: F811
    """A [review] change leaves the stored exception counts stale (issue 16 review, 17): the
    QA queue and ``mes network rebuild --check`` say how many, until a rebuild."""
    from dataclasses import replace

    from mes.core.review import ReviewSettings
    from mes.store.uow import UnitOfWork

    site = connected(net)
    batch_id = begin(site, "PAT-0001")
    count(site, batch_id)
    send(net, site, batch_id)
    with net.hub() as uow:
        assert review.qa_queue(uow, qa(net)).other_settings == 0
    stricter = replace(net.hub_site, review=ReviewSettings(rubber_stamp_seconds=3600))

    def hub() -> UnitOfWork:
        return UnitOfWork(net.hub_sessions, stricter)

    with hub() as uow:
        assert review.qa_queue(uow, qa(net)).other_settings == 1
        found = read_model_differences(uow, qa(net))
    assert found[0] == (
        "1 batch summary was computed with other review settings: the exception counts may be "
        "stale; run `mes network rebuild`."
    )
    with hub() as uow:
        rebuild_read_models(uow, qa(net))
    with hub() as uow:
        assert review.qa_queue(uow, qa(net)).other_settings == 0
        assert read_model_differences(uow, qa(net)) == []
