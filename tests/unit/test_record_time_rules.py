"""Times that cannot be true, found in a batch's record and refused at its release (no database).

mes.core.chronology judges the recorded times: an entry dated after the hub received it (beyond
the allowed clock skew), an entry dated before an earlier entry of its chain; mes.core.review
makes each a blocking finding in words, and refuses a release dated before any entry it releases.
Batches are built in memory with the unit fixtures, as in test_review_rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from batch_fixtures import T0
from test_review_rules import (
    HUB,
    HUB_KEY,
    QA_AT,
    SETTINGS,
    clean_batch,
    decide,
    mark,
    open_review,
    refuses,
    with_deviation,
)

from mes.core.batch import Batch
from mes.core.chronology import dated_ahead, dated_backwards, duration
from mes.core.clock import utc_text
from mes.core.errors import InvalidInput
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.review import (
    Category,
    Decision,
    ReleasePrecedesRecord,
    ReleaseRefused,
    Review,
    find_exceptions,
    release_blockers,
)

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SPOKE_KEY = SiteKey.generate()


def redated(entries: list[SealedEntry], times: dict[int, datetime]) -> list[SealedEntry]:
    """The chain re-sealed with the times given for some seqs (as a forger with the key would)."""
    out: list[SealedEntry] = []
    for entry in entries:
        body = dict(entry.body)
        if entry.seq in times:
            body["at"] = utc_text(times[entry.seq])
        body["prev"] = out[-1].hash if out else GENESIS
        out.append(seal(body, SPOKE_KEY))
    return out


def received_at(batch: Batch, at: datetime) -> dict[int, datetime]:
    """Every entry of the batch received by the hub at ``at``."""
    return {e.seq: at for e in batch.new_entries}


def review_of(batch: Batch, record: list[SealedEntry], received: dict[int, datetime]) -> Review:
    return Review(
        batch, [], record=record, key=HUB_KEY, site=HUB, settings=SETTINGS, received=received
    )


def test_a_record_dated_two_weeks_after_the_hub_received_it_is_one_blocking_finding_in_words():
    batch = clean_batch()  # recorded T0 … T0 + 4 h by the spoke's clock
    received = received_at(batch, T0 - 14 * DAY)  # the hub had it two weeks before those times
    found = find_exceptions(batch, batch.new_entries, SETTINGS, received=received)
    clock = [f for f in found if f.category is Category.CLOCK]
    last = batch.new_entries[-1].seq
    assert len(clock) == 1 and clock[0].blocking and found[0] is clock[0]
    assert clock[0].title == f"Entries 1–{last} dated after the hub received them"
    assert clock[0].detail.startswith(
        f"Entries 1–{last} are dated after the hub received them, up to 14 days: entry {last} is "
        "dated 2026-11-21 13:00 UTC, 14 days after the hub received it (2026-11-07 09:00 UTC); at "
        "most 300 s of clock difference is allowed. Nobody records an event before it happens"
    )
    review = review_of(batch, batch.new_entries, received)
    blockers = release_blockers(batch, review.state, review.findings)
    assert blockers == [f"{clock[0].title}: {clock[0].detail}"]
    error = refuses(review, InvalidInput, mark, review, clock[0].key)
    assert error.what_to_do == "Reject the batch once the spoke's clock is investigated."
    # Long after those times, the record is still one whose times were false when it arrived.
    refused = refuses(review, ReleaseRefused, decide, review, Decision.RELEASED, at=T0 + 30 * DAY)
    assert "dated after the hub received them" in refused.message
    decide(review, Decision.REJECTED, "The spoke's clock was two weeks out", at=T0 + 30 * DAY)
    assert review.state.decision is Decision.REJECTED


def test_one_entry_dated_ahead_of_its_receipt_is_named_alone():
    batch = clean_batch()
    ahead = batch.new_entries[4].seq
    record = redated(batch.new_entries, {ahead: T0 + 13 * DAY + HOUR * 5})
    received = {e.seq: T0 + 6 * HOUR for e in record}
    found = [
        f
        for f in find_exceptions(batch, record, SETTINGS, received=received)
        if f.key.startswith("clock-ahead")
    ]
    assert [(f.title, f.seq) for f in found] == [
        (f"Entry {ahead} dated after the hub received it", ahead)
    ]
    assert found[0].detail.startswith(
        f"Entry {ahead} is dated 2026-12-04 14:00 UTC, 13 days after the hub received it "
        "(2026-11-21 15:00 UTC);"
    )


def test_entries_within_the_allowed_clock_skew_of_their_receipt_are_not_findings():
    batch = clean_batch()
    last_at = T0 + 4 * HOUR  # the completion
    just = received_at(batch, last_at - timedelta(seconds=SETTINGS.clock_skew_seconds))
    assert dated_ahead(batch.new_entries, just, SETTINGS.clock_skew_seconds) == []
    beyond = received_at(batch, last_at - timedelta(seconds=SETTINGS.clock_skew_seconds + 1))
    found = dated_ahead(batch.new_entries, beyond, SETTINGS.clock_skew_seconds)
    assert [p.last_seq for p in found] == [batch.new_entries[-1].seq]
    assert (
        found[0]
        .ahead_sentence(300)
        .endswith(
            "301 s after the hub received it (2026-11-21 12:54 UTC); at most 300 s of clock "
            "difference is allowed."
        )
    )


def test_entries_dated_before_an_earlier_entry_beyond_the_skew_are_a_blocking_finding_naming_them():
    batch = with_deviation()
    seqs = [e.seq for e in batch.new_entries]
    jump, back = seqs[5], seqs[6:9]
    # One entry dated a day ahead: the three after it are dated before it (the spoke's own
    # ledger never does this: it holds a clock that steps back at the last time).
    record = redated(batch.new_entries, {jump: T0 + DAY})
    found = [f for f in find_exceptions(batch, record, SETTINGS) if f.category is Category.CLOCK]
    later = seqs[-1]
    assert [(f.key, f.title, f.blocking) for f in found] == [
        (f"clock-backwards:{back[0]}", f"Entries {back[0]}–{later} dated before entry {jump}", True)
    ]
    assert found[0].detail.startswith(
        f"Entries {back[0]}–{later} are dated before entry {jump} (2026-11-22 09:00 UTC): entry "
        f"{back[0]} is dated 2026-11-21 09:"
    )
    assert "at most 300 s of clock difference is allowed" in found[0].detail
    review = review_of(batch, record, {})
    blockers = release_blockers(batch, review.state, review.findings)
    assert f"{found[0].title}: {found[0].detail}" in blockers


def test_a_chain_cannot_walk_back_in_steps_each_within_the_tolerance():
    batch = clean_batch()
    start = T0 + DAY
    steps = {e.seq: start - i * timedelta(seconds=200) for i, e in enumerate(batch.new_entries)}
    record = redated(batch.new_entries, steps)
    found = dated_backwards(record, 300)
    assert [(p.first_seq, p.last_seq, p.reference_seq) for p in found] == [(3, record[-1].seq, 1)]


def test_a_release_dated_before_an_entry_of_the_record_is_refused_with_what_to_do():
    batch = clean_batch()  # its last entry, the completion, is dated T0 + 4 h
    review = open_review(batch)
    error = refuses(
        review, ReleasePrecedesRecord, decide, review, Decision.RELEASED, at=T0 + 3 * HOUR
    )
    last = batch.new_entries[-1].seq
    assert error.message == (
        f"Batch SPK1-2026-0001 cannot be released at 2026-11-21 12:00 UTC: entry {last} of its "
        "record is dated 2026-11-21 13:00 UTC, later than the release: a release comes after "
        "everything it releases."
    )
    assert error.what_to_do.startswith("Check the hub's clock (NTP)")
    decide(review, Decision.RELEASED, at=QA_AT)
    assert review.state.decision is Decision.RELEASED


def test_a_release_dated_before_an_entry_of_its_own_review_is_refused():
    batch = with_deviation()
    review = open_review(batch)
    key = next(f.key for f in review.findings if f.category is Category.COMMENT)
    mark(review, key, at=QA_AT + DAY)  # the hub's clock was a day ahead, then set right
    error = refuses(
        review, ReleasePrecedesRecord, review.decision_record, Decision.RELEASED, None, at=QA_AT
    )
    assert "entry 1 of its review at the hub is dated 2026-11-23 09:00 UTC" in error.message


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (45, "45 s"),
        (119, "119 s"),
        (599, "599 s"),
        (900, "15 min"),
        (5 * 3600 + 180, "5 h 3 min"),
        (13 * 86400 + 9, "13 days"),
    ],
)
def test_lengths_of_time_read_in_the_largest_unit_that_reads_well(seconds, words):
    assert duration(timedelta(seconds=seconds)) == words


def test_the_review_clock_tolerance_is_the_sync_skew_unless_configured(tmp_path):
    from mes.settings import load_settings, render_config

    config = render_config(
        role="hub", site_code="HUB", site_name="Hub", time_zone="UTC", database_url=None
    )
    (tmp_path / "mes.toml").write_text(config, encoding="utf-8")
    (tmp_path / "secret_key").write_text("x" * 64, encoding="ascii")
    for path in (tmp_path / "mes.toml", tmp_path / "secret_key"):
        path.chmod(0o600)
    tmp_path.chmod(0o700)
    assert load_settings(tmp_path, env={}).review_clock_tolerance_seconds is None
    configured = load_settings(tmp_path, env={"MES_REVIEW_CLOCK_TOLERANCE_SECONDS": "600"})
    assert configured.review_clock_tolerance_seconds == 600
