"""The live board's rules in words: when a spoke is overdue, how far the hub's copy lags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mes.core.network_board import (
    EXPECTED_CONTACT,
    EXPECTED_CONTACT_WORDS,
    contact_words,
    lag_words,
    lagging,
    overdue,
    timer_words,
)

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_an_active_spoke_is_overdue_past_the_expected_contact_interval():
    assert timedelta(minutes=1) == EXPECTED_CONTACT
    assert "not heard from for over 60 s is flagged" in EXPECTED_CONTACT_WORDS
    assert not overdue("active", NOW - timedelta(seconds=60), NOW)
    assert overdue("active", NOW - timedelta(seconds=61), NOW)
    assert overdue("active", None, NOW)  # enrolled, never heard from since
    for status in ("awaiting_enrollment", "suspended", "revoked"):
        assert not overdue(status, None, NOW)
        assert not overdue(status, NOW - timedelta(days=3), NOW)


def test_last_contact_in_words():
    assert contact_words("active", NOW - timedelta(seconds=4), NOW) == "4 s ago"
    assert contact_words("active", NOW - timedelta(minutes=12), NOW) == "no contact: 12 min ago"
    assert contact_words("suspended", NOW - timedelta(minutes=12), NOW) == "12 min ago"
    assert contact_words("active", NOW, NOW) == "just now"
    assert contact_words("active", None, NOW) == "never since it enrolled"
    assert contact_words("awaiting_enrollment", None, NOW) == "not expected"


def test_the_hubs_copy_lags_by_the_time_from_recording_to_receipt():
    assert lag_words(NOW, NOW + timedelta(minutes=3)) == "received 3 min after it was recorded"
    assert lag_words(NOW, NOW + timedelta(milliseconds=400)) == (
        "received within a second of being recorded"
    )
    assert lag_words(NOW, NOW - timedelta(seconds=20)) == (
        "received 20 s before it was recorded (the spoke's clock is ahead)"
    )
    assert lag_words(NOW, None) == "not received yet"
    assert not lagging(NOW, NOW + timedelta(seconds=60))
    assert lagging(NOW, NOW + timedelta(seconds=61))
    assert not lagging(NOW, None)


def test_the_next_timer_in_words():
    assert timer_words(None, NOW) == "none"
    assert timer_words(NOW + timedelta(minutes=12), NOW) == "in 12 min"
    assert timer_words(NOW - timedelta(hours=3), NOW) == "3 h ago"
    assert timer_words(NOW, NOW) == "now"
