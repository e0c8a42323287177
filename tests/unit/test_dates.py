"""Dates and times typed at a site (mes.core.dates): read in the site's order on the 24-hour
clock, in one go as an operator types them; whatever could be read two ways is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mes.core.clock import as_utc
from mes.core.dates import (
    DateNotUnderstood,
    DateOrder,
    date_order,
    date_time_pattern,
    local_date_time_text,
    parse_local_date,
    parse_local_date_time,
)
from mes.core.limits import InvalidValue, parse_value

LONDON = "Europe/London"
NEW_YORK = "America/New_York"
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "typed",
    [
        "05122026 1430",
        "05/12/2026 14:30",
        "5/12/2026 14:30",
        "05.12.2026 14.30",
        "05-12-2026 14:30",
        "05/12/2026, 14:30",
        "051220261430",
        "  05/12/2026   14:30 ",
        "2026-12-05 14:30",
        "2026-12-05T14:30",
        "2026-12-05T14:30Z",
        "2026-12-05T15:30+01:00",
    ],
)
def test_a_date_and_time_typed_in_one_go_in_london_is_the_fifth_of_december(typed):
    moment = parse_local_date_time(typed, LONDON)
    assert as_utc(moment) == datetime(2026, 12, 5, 14, 30, tzinfo=UTC)


def test_in_the_united_states_the_month_comes_first():
    assert date_order(NEW_YORK) is DateOrder.MONTH_FIRST
    assert date_time_pattern(NEW_YORK) == "MM/DD/YYYY HH:MM"
    moment = parse_local_date_time("12/05/2026 14:30", NEW_YORK)
    assert (moment.month, moment.day, moment.hour) == (12, 5, 14)
    assert date_time_pattern(LONDON) == "DD/MM/YYYY HH:MM"


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("5122026 1430", "more than one way"),  # 5/12 or 51/2? the digits do not say
        ("512026 1430", "more than one way"),
        ("05/12/26 14:30", "not written in full"),  # 1926 or 2026?
        ("05122026 230", "no time of day"),  # 2:30 or 23:0?
        ("05/12/2026 2:30 pm", "12-hour clock"),
        ("05/12/2026 2:30pm", "12-hour clock"),
        ("05/12/2026", "no time of day"),
        ("31/02/2026 10:00", "not a date of the calendar"),
        ("13/13/2026 10:00", "not a date of the calendar"),
        ("05/12/2026 24:00", "not a time of day"),
        ("yesterday", "not a date"),
        ("2026/12/05 10:00", "not a date"),
        ("29/03/2026 01:30", "does not exist in site time"),  # the clocks go forward at 01:00
        ("25/10/2026 01:30", "happened twice in site time"),  # the clocks go back at 02:00
    ],
)
def test_what_could_be_read_two_ways_is_refused_with_what_to_type(typed, why):
    with pytest.raises(DateNotUnderstood) as refused:
        parse_local_date_time(typed, LONDON, label="End of collection")
    assert why in refused.value.message
    assert refused.value.message.startswith("End of collection: ")
    assert "Enter" in refused.value.what_to_do


def test_a_date_alone_is_read_the_same_way():
    assert parse_local_date("05122026", LONDON) == date(2026, 12, 5)
    assert parse_local_date("2026-12-05", LONDON) == date(2026, 12, 5)
    with pytest.raises(DateNotUnderstood):
        parse_local_date("05/12/26", LONDON)


def test_a_moment_is_shown_as_it_is_typed_so_it_reads_back_the_same():
    moment = datetime(2026, 7, 5, 13, 30, tzinfo=UTC)  # 14:30 summer time in London
    text = local_date_time_text(moment, LONDON)
    assert text == "05/07/2026 14:30"
    assert as_utc(parse_local_date_time(text, LONDON)) == moment


def test_a_recorded_date_and_time_is_read_by_the_same_parser_and_kept_in_utc():
    spec = {"label": "End of collection", "type": "datetime"}
    assert parse_value(spec, "05122026 1430", at=NOW, time_zone=LONDON) == (
        "2026-12-05T14:30:00.000000Z"
    )
    with pytest.raises(InvalidValue, match="more than one way"):
        parse_value(spec, "5122026 1430", at=NOW, time_zone=LONDON)
    with pytest.raises(InvalidValue, match="in the future"):
        parse_value(spec, "07/12/2026 14:30", at=NOW, time_zone=LONDON)
