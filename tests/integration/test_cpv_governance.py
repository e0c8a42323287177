"""CPV governance at the hub: QA freezes baselines and sets margins, signals become trends, and
QA assesses each with an e-signature kept in the hub's audit trail (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from cpv_series import CODE, KEY, add_batches, steady
from integration_helpers import attest, audit_entries
from sqlalchemy import event, select, text
from support import NOW, PASSWORD, user_ctx

from mes.core.errors import AuthenticationFailed, InvalidInput, NotAuthorised, NotFound
from mes.core.trends import NETWORK
from mes.services import cpv
from mes.services.audit import AuditFilter, read_audit_trail
from mes.services.esign import Credentials
from mes.store.models import CpvBaseline, CpvDisposition, CpvTrend

FROM, TO = date(2026, 3, 1), date(2026, 12, 31)


@pytest.fixture
def qa(create_user, make_uow) -> str:
    quinn = create_user("quinn", roles=["qa"])
    attest(make_uow, quinn, "quinn")
    return quinn


def signed(username: str = "quinn", password: str = PASSWORD) -> dict:
    return {
        "credentials": Credentials(password=password, username=username),
        "first_signing_in_session": True,
    }


def freeze(make_uow, user: str, batches: int = 12, **kwargs) -> CpvBaseline:
    with make_uow() as uow:
        return cpv.freeze_baseline(
            uow, user_ctx(user), CODE, KEY, FROM, FROM + timedelta(days=40), batches, "PPQ and after",
            **(kwargs or signed()),
        )  # fmt: skip


def view(make_uow, user: str) -> cpv.ComparabilityView:
    with make_uow() as uow:
        return cpv.comparability(uow, user_ctx(user), CODE, FROM, TO)


def test_until_qa_freezes_a_baseline_the_limits_are_provisional_and_no_trend_is_kept(make_uow, qa):
    add_batches(
        make_uow,
        steady() + [("SPK2", v) for v in (86.0, 86.5, 85.9, 86.2, 86.1, 85.8, 86.4, 86.0, 86.3)],
    )
    shown = view(make_uow, qa).parameters[0]
    assert shown.limits is not None and shown.limits.provisional
    assert shown.baseline is None
    assert any(s.scope == "SPK2" for s in shown.signals)  # shown on the page ...
    assert all(s.trend_id is None for s in shown.signals)  # ... but not kept as a trend
    with make_uow() as uow:
        assert cpv.trends_to_assess(uow, user_ctx(qa)).count == 0


def test_qa_freezes_a_baseline_signed_approved_and_a_later_one_supersedes_it(make_uow, qa):
    numbers = add_batches(make_uow, steady())
    first = freeze(make_uow, qa, batches=9)
    assert (first.batches, first.first_number, first.last_number) == (9, numbers[0], numbers[8])
    shown = view(make_uow, qa).parameters[0]
    assert not shown.limits.provisional
    assert shown.limits.centre == pytest.approx(first.centre)
    assert shown.baseline.frozen_by == "Quinn Tester (quinn)"
    entries = [e for e in audit_entries(make_uow) if e.record_type == "cpv-baseline"]
    assert [e.action for e in entries] == ["signed: approved", "CPV baseline frozen"]
    assert entries[0].new["meaning"] == "approved" and entries[0].record_id == first.id
    assert entries[1].new["batches"] == numbers[:9]
    with make_uow() as uow:  # the audit trail names it as people know it
        trail = read_audit_trail(uow, user_ctx(qa), AuditFilter(record_type="cpv-baseline"))
    assert {trail.name_of(e).text for e in trail.page.entries} == {
        f"Baseline of {CODE} harvest.viability (%), {numbers[0]} to {numbers[8]}"
    }
    second = freeze(make_uow, qa, batches=12)
    assert view(make_uow, qa).parameters[0].baseline.id == second.id
    with make_uow() as uow:  # the first is kept: a new row, never an update
        assert {b.id for b in uow.session.execute(select(CpvBaseline)).scalars()} == {
            first.id,
            second.id,
        }


def test_a_signal_on_the_frozen_baseline_becomes_a_trend_qa_assesses_with_a_signature(
    make_uow, qa, cli_ctx
):
    add_batches(make_uow, steady())
    freeze(make_uow, qa)
    shifted = add_batches(
        make_uow,
        [("SPK2", v) for v in (92.5, 86.0, 86.5, 85.9, 86.2, 86.1, 85.8, 86.4, 86.0, 86.3)],
        start=NOW.replace(month=5, day=1),
        first=100,
    )[1:]  # above the centre line, then nine below
    with make_uow() as uow:  # kept as each batch was received, before anyone looked ...
        kept = cpv.trends_to_assess(uow, user_ctx(qa)).trends
        assert ("SPK2", "N2", shifted[0]) in {(t.scope, t.rule, t.first_number) for t in kept}
    with make_uow() as uow:  # ... every one a rescan of the whole series finds
        assert cpv.scan_trends(uow, cli_ctx) == 0
    shown = view(make_uow, qa).parameters[0]
    run = next(s for s in shown.signals if s.scope == "SPK2" and s.rule.value == "N2")
    assert run.words.startswith("SPK2: 9 batches in a row below the centre line of Viability")
    assert run.numbers == tuple(shifted) and run.trend_id is not None
    assert view(make_uow, qa).parameters[0].signals == shown.signals  # kept once, not twice
    with make_uow() as uow:
        to_assess = cpv.trends_to_assess(uow, user_ctx(qa))
    assert run.trend_id in {t.id for t in to_assess.trends}
    with make_uow() as uow:
        cpv.acknowledge_trend(
            uow, user_ctx(qa), run.trend_id, "deviation", "DEV-SPK2-2026-014",
            "Harvest media lot changed at SPK2; investigated under the site's deviation.",
            **signed(),
        )  # fmt: skip
    entries = [e for e in audit_entries(make_uow) if e.record_id == run.trend_id]
    assert [e.action for e in entries] == [
        "CPV trend detected",
        "signed: acknowledged",
        "CPV trend assessed",
    ]
    assert entries[1].new["meaning"] == "acknowledged" and entries[1].actor_username == "quinn"
    assert entries[2].new["reference"] == "DEV-SPK2-2026-014"
    again = next(s for s in view(make_uow, qa).parameters[0].signals if s.trend_id == run.trend_id)
    assert (again.disposition, again.reference) == ("deviation", "DEV-SPK2-2026-014")
    assert again.decided_by == "Quinn Tester (quinn)"
    with make_uow() as uow, pytest.raises(InvalidInput, match="already assessed"):
        cpv.acknowledge_trend(uow, user_ctx(qa), run.trend_id, "no_action", None, "x", **signed())
    with make_uow() as uow:
        assert run.trend_id not in {t.id for t in cpv.trends_to_assess(uow, user_ctx(qa)).trends}
        with pytest.raises(Exception, match="append-only"):  # the database keeps it as signed
            uow.session.execute(text("UPDATE cpv_dispositions SET comment = 'edited'"))


def test_the_scan_finds_the_trends_without_the_page(make_uow, qa, cli_ctx):
    add_batches(make_uow, steady())
    freeze(make_uow, qa)
    add_batches(make_uow, [("SPK3", 99.0)], start=NOW.replace(month=5), first=200, detect=False)
    with make_uow() as uow:
        assert cpv.scan_trends(uow, cli_ctx) == 2  # beyond 3 sigma: at SPK3 and network-wide
    with make_uow() as uow:
        assert cpv.scan_trends(uow, cli_ctx) == 0
        scopes = {t.scope for t in uow.session.execute(select(CpvTrend)).scalars()}
    assert scopes == {"SPK3", NETWORK}


def test_refusals_change_nothing(make_uow, qa, create_user):
    add_batches(make_uow, steady())
    sam = create_user("sam", roles=["supervisor"])
    attest(make_uow, sam, "sam")
    with pytest.raises(NotAuthorised):
        freeze(make_uow, sam, **signed("sam"))
    with pytest.raises(AuthenticationFailed):
        freeze(make_uow, qa, **signed(password="wrong-password-123"))
    with pytest.raises(InvalidInput, match="from 8 to 500"):
        freeze(make_uow, qa, batches=3)
    with pytest.raises(InvalidInput, match="holds 12 batches"):
        freeze(make_uow, qa, batches=20)
    for margin in (0.0, -1.0, float("nan"), None):
        with make_uow() as uow, pytest.raises(InvalidInput, match="above zero"):
            cpv.set_margin(uow, user_ctx(qa), CODE, KEY, margin, "why", **signed())
    with make_uow() as uow, pytest.raises(InvalidInput, match="why"):
        cpv.set_margin(uow, user_ctx(qa), CODE, KEY, 2.0, "  ", **signed())
    with make_uow() as uow, pytest.raises(NotFound):
        cpv.set_margin(uow, user_ctx(qa), CODE, "harvest.nothing|%", 2.0, "why", **signed())
    with make_uow() as uow, pytest.raises(NotFound):
        cpv.acknowledge_trend(uow, user_ctx(qa), "no-such", "no_action", None, "c", **signed())
    with make_uow() as uow:
        assert not uow.session.execute(select(CpvBaseline)).first()
        assert not uow.session.execute(select(CpvDisposition)).first()
    assert not [e for e in audit_entries(make_uow) if e.record_type.startswith("cpv-")]


def test_a_disposition_needs_its_reference_and_a_comment(make_uow, qa):
    add_batches(make_uow, steady())
    freeze(make_uow, qa)
    add_batches(make_uow, [("SPK3", 99.0)], start=NOW.replace(month=5), first=200)
    trend_id = next(s.trend_id for s in view(make_uow, qa).parameters[0].signals if s.trend_id)
    for disposition, reference, comment, words in (
        ("capa", None, "c", "needs the CAPA reference"),
        ("deviation", " ", "c", "needs the number of the deviation the site opened"),
        ("no_action", None, "", "comment"),
        ("ignore", None, "c", "not a disposition"),
    ):
        with make_uow() as uow, pytest.raises(InvalidInput, match=words):
            cpv.acknowledge_trend(
                uow, user_ctx(qa), trend_id, disposition, reference, comment, **signed()
            )


def test_the_margin_turns_the_interval_into_an_equivalence_verdict(make_uow, qa):
    add_batches(make_uow, steady() + [("SPK2", 88.0)] * 0)
    before = view(make_uow, qa).parameters[0].equivalence
    assert all("no margin set: QA sets one" in row.words for row in before)
    with make_uow() as uow:
        cpv.set_margin(uow, user_ctx(qa), CODE, KEY, 2.0, "1.5 SD of the PPQ batches", **signed())
    after = view(make_uow, qa).parameters[0]
    assert after.margin == 2.0 and after.margin_set_by == "Quinn Tester (quinn)"
    assert {row.site for row in after.equivalence} == {"SPK1", "SPK2", "SPK3"}
    assert all(
        "margin" in row.words and "QA sets one" not in row.words for row in after.equivalence
    )
    entries = [e for e in audit_entries(make_uow) if e.record_type == "cpv-margin"]
    assert [e.action for e in entries] == ["signed: approved", "CPV equivalence margin set"]
    assert entries[1].reason == "1.5 SD of the PPQ batches"


def test_the_csv_holds_every_point_capability_equivalence_and_signal(make_uow, qa):
    numbers = add_batches(make_uow, steady())
    shown = view(make_uow, qa)
    text_csv = cpv.comparability_csv(shown)
    assert all(n in text_csv for n in numbers)
    for section in ("point,", "capability,", "equivalence,"):
        assert section in text_csv
    chart = cpv.chart_csv(shown, KEY, "SPK1").splitlines()
    assert chart[0].startswith("recipe_code,parameter,unit")
    assert len(chart) == 1 + 4  # SPK1's four batches


def test_trends_kept_at_ingest_are_those_of_the_whole_series(make_uow, qa, cli_ctx):
    """Each batch judged on the points around it finds what the whole series shows, once each."""
    add_batches(make_uow, steady())
    freeze(make_uow, qa)
    rng = np.random.default_rng(16)
    later = []
    for i in range(150):  # a shift at SPK2, a drift at SPK3, runs longer than the window
        site = ("SPK1", "SPK2", "SPK3")[i % 3]
        shift = -1.2 if site == "SPK2" and 30 <= i < 120 else 0.0
        drift = 0.02 * i if site == "SPK3" else 0.0
        later.append((site, round(91.1 + shift + drift + rng.normal(0, 0.5), 2)))
    add_batches(make_uow, later, start=NOW.replace(month=5, day=1), first=300)
    with make_uow() as uow:
        kept = {
            (t.scope, t.rule, t.first_batch_id)
            for t in uow.session.execute(select(CpvTrend)).scalars()
        }
    shown = view(make_uow, qa).parameters[0].signals
    assert len(kept) > 10
    assert kept == {(s.scope, s.rule.value, s.first_batch_id) for s in shown}
    assert all(s.trend_id is not None for s in shown)
    with make_uow() as uow:
        assert cpv.scan_trends(uow, cli_ctx) == 0


def test_without_a_frozen_baseline_ingest_reads_no_trend(make_uow, qa):
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with make_uow() as uow:
        engine = uow.session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        add_batches(make_uow, steady())
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    judged = [s for s in statements if "cpv_" in s]
    assert len(judged) == len(steady())  # the baselines of the recipe, once a batch
    assert all("cpv_baselines" in s and "cpv_trends" not in s for s in judged)


def test_a_period_starting_inside_a_kept_run_shows_the_trend_with_qa_s_disposition(make_uow, qa):
    """Review blocker: dispositions vanished when the period began inside the run."""
    add_batches(make_uow, steady())
    freeze(make_uow, qa)
    start = NOW.replace(month=5, day=1)
    run = add_batches(
        make_uow, [("SPK2", 89.0 + 0.01 * i) for i in range(12)], start=start, first=100
    )
    shown = view(make_uow, qa).parameters[0]
    spk2 = next(s for s in shown.signals if s.scope == "SPK2" and s.rule.value == "N2")
    with make_uow() as uow:
        cpv.acknowledge_trend(
            uow, user_ctx(qa), spk2.trend_id, "capa", "CAPA-2026-007", "Media lot.", **signed()
        )
    day = start.date()
    for since, until in (
        (day + timedelta(days=4), TO),
        (day + timedelta(days=3), day + timedelta(days=6)),
    ):
        with make_uow() as uow:
            part = cpv.comparability(uow, user_ctx(qa), CODE, since, until)
        signals = part.parameters[0].signals
        assert all(s.trend_id is not None for s in signals), [s.words for s in signals]
        mine = [s for s in signals if s.scope == "SPK2" and s.rule.value == "N2"]
        assert len({s.trend_id for s in signals}) == len(signals)  # each trend listed once
        assert [(s.trend_id, s.disposition, s.reference) for s in mine] == [
            (spk2.trend_id, "capa", "CAPA-2026-007")
        ]
        assert mine[0].words == spk2.words  # the words QA signed
        assert (mine[0].numbers[0], mine[0].numbers[-1]) == (spk2.numbers[0], spk2.numbers[-1])
        assert run[5] in {n for s in signals if s.scope == "SPK2" for n in s.marked}
        assert "CAPA-2026-007" in cpv.comparability_csv(part)
    with make_uow() as uow:
        kept = uow.session.execute(select(CpvTrend.rule).where(CpvTrend.scope == "SPK2")).all()
        assert sorted(r for (r,) in kept) == ["N2", "N3", "N5"]  # no duplicate trend


def test_a_run_seen_again_on_a_later_baseline_is_not_kept_twice(make_uow, qa, cli_ctx):
    add_batches(make_uow, steady())
    freeze(make_uow, qa)
    add_batches(
        make_uow,
        [("SPK2", 89.0 + 0.01 * i) for i in range(12)],
        start=NOW.replace(month=5, day=1),
        first=100,
    )
    with make_uow() as uow:
        before = len(uow.session.execute(select(CpvTrend)).all())
    freeze(make_uow, qa, batches=9)  # judged again from the same period's start: same runs
    with make_uow() as uow:
        cpv.scan_trends(uow, cli_ctx)
    with make_uow() as uow:
        trends = uow.session.execute(select(CpvTrend)).scalars().all()
    runs = [(t.scope, t.rule) for t in trends]
    assert len(runs) == len(set(runs)) and len(trends) >= before


def test_a_baseline_without_spread_is_refused_and_a_replacement_needs_a_reason(make_uow, qa):
    add_batches(make_uow, [("SPK1", 5.0)] * 9 + steady())
    with make_uow() as uow, pytest.raises(InvalidInput, match=r"all read 5 %.*need spread"):
        cpv.freeze_baseline(
            uow, user_ctx(qa), CODE, KEY, FROM, FROM + timedelta(days=60), 9, None, **signed()
        )
    first = freeze(make_uow, qa, batches=12)  # nine 5 % then some spread: frozen
    assert first.sigma > 0
    with make_uow() as uow, pytest.raises(InvalidInput, match="replaces it"):
        cpv.freeze_baseline(
            uow, user_ctx(qa), CODE, KEY, FROM, FROM + timedelta(days=60), 12, " ", **signed()
        )
    with make_uow() as uow:
        assert len(uow.session.execute(select(CpvBaseline)).all()) == 1


def test_only_complete_batches_enter_the_series_and_demo_batches_are_told(make_uow, qa):
    """Review: in-progress and aborted batches went into CPV, demo batches silently."""
    numbers = add_batches(make_uow, steady())
    with make_uow() as uow:
        uow.session.execute(
            text("UPDATE batches SET status = 'aborted' WHERE number = :n"), {"n": numbers[0]}
        )
        uow.session.execute(
            text("UPDATE batches SET status = 'in_progress' WHERE number = :n"), {"n": numbers[1]}
        )
        uow.session.execute(
            text("UPDATE parameter_results SET demo = :t WHERE number = :n"),
            {"t": True, "n": numbers[2]},
        )
        uow.commit()
    shown = view(make_uow, qa)
    listed = [p.number for p in shown.parameters[0].points]
    assert listed == numbers[2:]
    assert shown.demo_batches == 1 and shown.parameters[0].demo_batches == 1
    said = cpv.chart_summary(shown.parameters[0])
    assert "Includes 1 demo batch" in said and "Complete batches only" in said
    data = cpv.comparability_csv(shown).splitlines()
    assert data[0].endswith(",demo") and data[1].endswith(",demo")
    with make_uow() as uow:
        one = cpv.comparability(uow, user_ctx(qa), CODE, FROM, TO, only=KEY)
    assert [p.number for p in one.parameters[0].points] == numbers[2:]
