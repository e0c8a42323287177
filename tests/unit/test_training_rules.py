"""Training records (21 CFR 11.10(i)): qualified on the site's calendar date, from the
qualification date through the expiry date; the newest record for a procedure wins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mes.core.errors import InvalidInput
from mes.core.training import TrainingRecord, check_training_dates, is_qualified

SOP = "SOP-CT-014 Aseptic gowning"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def record(
    qualified_on: date = date(2026, 11, 1),
    expires_on: date | None = None,
    *,
    withdrawn: bool = False,
    recorded_at: datetime = T0,
    procedure: str = SOP,
) -> TrainingRecord:
    return TrainingRecord(procedure, qualified_on, expires_on, withdrawn, recorded_at)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_without_a_record_nobody_is_qualified():
    assert not is_qualified([], SOP, at(date(2026, 11, 21)))


def test_a_record_for_another_procedure_does_not_qualify():
    records = [record(procedure="SOP-CT-015 Cell counting")]
    assert not is_qualified(records, SOP, at(date(2026, 11, 21)))


def test_a_qualification_without_expiry_holds_indefinitely():
    assert is_qualified([record()], SOP, at(date(2046, 1, 1)))


def test_before_the_qualification_date_the_user_is_not_yet_qualified():
    records = [record(qualified_on=date(2026, 11, 22))]
    assert not is_qualified(records, SOP, at(date(2026, 11, 21), 23, 59))
    assert is_qualified(records, SOP, at(date(2026, 11, 22), 0, 0))


def test_the_qualification_holds_through_its_expiry_date_inclusive():
    records = [record(expires_on=date(2026, 11, 30))]
    assert is_qualified(records, SOP, at(date(2026, 11, 30), 23, 59))


def test_after_the_expiry_date_the_user_is_no_longer_qualified():
    records = [record(expires_on=date(2026, 11, 30))]
    assert not is_qualified(records, SOP, at(date(2026, 12, 1), 0, 0))


def test_a_withdrawal_recorded_after_the_qualification_wins():
    records = [
        record(recorded_at=T0),
        record(withdrawn=True, recorded_at=T0 + timedelta(days=5)),
    ]
    assert not is_qualified(records, SOP, at(date(2026, 11, 21)))


def test_the_newest_record_wins_whatever_the_order_it_is_given_in():
    records = [
        record(withdrawn=True, recorded_at=T0 + timedelta(days=5)),
        record(recorded_at=T0),
    ]
    assert not is_qualified(records, SOP, at(date(2026, 11, 21)))


def test_a_renewal_after_a_withdrawal_qualifies_again():
    records = [
        record(recorded_at=T0),
        record(withdrawn=True, recorded_at=T0 + timedelta(days=5)),
        record(qualified_on=date(2026, 11, 10), recorded_at=T0 + timedelta(days=9)),
    ]
    assert is_qualified(records, SOP, at(date(2026, 11, 21)))


def test_a_newer_record_with_an_earlier_expiry_supersedes_an_open_ended_one():
    records = [
        record(recorded_at=T0),
        record(expires_on=date(2026, 11, 15), recorded_at=T0 + timedelta(days=1)),
    ]
    assert not is_qualified(records, SOP, at(date(2026, 11, 21)))


def test_withdrawing_one_procedure_leaves_the_others():
    other = "SOP-CT-015 Cell counting"
    records = [
        record(recorded_at=T0),
        record(procedure=other, recorded_at=T0),
        record(procedure=other, withdrawn=True, recorded_at=T0 + timedelta(days=1)),
    ]
    assert is_qualified(records, SOP, at(date(2026, 11, 21)))
    assert not is_qualified(records, other, at(date(2026, 11, 21)))


@pytest.mark.parametrize(
    ("time_zone", "qualified"),
    [("UTC", True), ("Europe/London", True), ("Asia/Tokyo", False), ("Pacific/Auckland", False)],
)
def test_expiry_is_judged_on_the_sites_calendar_date(time_zone, qualified):
    # 20:00 UTC on the expiry date is already the next day in Tokyo and Auckland.
    records = [record(expires_on=date(2026, 11, 21))]
    assert is_qualified(records, SOP, at(date(2026, 11, 21), 20), time_zone) is qualified


@pytest.mark.parametrize(
    ("time_zone", "qualified"),
    [("UTC", False), ("America/Los_Angeles", True)],
)
def test_a_site_behind_utc_is_still_on_the_expiry_date_after_utc_midnight(time_zone, qualified):
    records = [record(expires_on=date(2026, 11, 21))]
    assert is_qualified(records, SOP, at(date(2026, 11, 22), 3), time_zone) is qualified


@pytest.mark.parametrize(("time_zone", "qualified"), [("UTC", False), ("Asia/Tokyo", True)])
def test_the_qualification_date_is_judged_on_the_sites_calendar_date(time_zone, qualified):
    records = [record(qualified_on=date(2026, 11, 22))]
    assert is_qualified(records, SOP, at(date(2026, 11, 21), 20), time_zone) is qualified


def test_an_expiry_before_the_qualification_date_is_refused():
    with pytest.raises(InvalidInput) as caught:
        check_training_dates(date(2026, 11, 21), date(2026, 11, 20))
    assert "before the qualification date" in caught.value.message


def test_a_qualification_may_expire_on_the_day_it_starts():
    check_training_dates(date(2026, 11, 21), date(2026, 11, 21))
    check_training_dates(date(2026, 11, 21), None)
