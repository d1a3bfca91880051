"""Business-time arithmetic: worked examples, DST edges, holidays, merging and
degenerate calendars (properties against a naive reference:
test_calendar_properties.py)."""

from __future__ import annotations

from datetime import date, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from ledger.domain.agreements import CALENDAR_24X7, Calendar, WeeklyInterval
from ledger.domain.calendars import business_add, business_elapsed, working_intervals
from ledger.domain.instants import (
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    MICROS_PER_MINUTE,
    MICROS_PER_SECOND,
    parse_instant,
)

H, M, S = MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def at(text: str) -> int:
    return parse_instant(text)


def cal(zone: str, *weekly: tuple[int, str, str], holidays: tuple[date, ...] = ()) -> Calendar:
    def minute(hhmm: str) -> int:
        hours, minutes = hhmm.split(":")
        return int(hours) * 60 + int(minutes)

    return Calendar(
        id="test",
        timezone=zone,
        weekly=tuple(WeeklyInterval(d, minute(s), minute(e)) for d, s, e in weekly),
        holidays=holidays,
    )


OFFICE = cal("Europe/London", *((d, "08:00", "18:00") for d in range(5)))


# --- worked examples (spec scenario) ---------------------------------------


def test_worked_example_monday_to_tuesday() -> None:
    a, b = at("2026-10-05T09:12:00+01:00"), at("2026-10-06T09:42:00+01:00")
    assert business_elapsed(OFFICE, a, b) == 630 * M == 37_800 * S
    assert business_add(OFFICE, a, 37_800 * S) == b


def test_october_2026_office_time() -> None:
    a, b = at("2026-09-30T23:00:00Z"), at("2026-11-01T00:00:00Z")
    assert business_elapsed(OFFICE, a, b) == 22 * 10 * H == 792_000 * S
    assert len(working_intervals(OFFICE, a, b)) == 22


def test_add_lands_at_end_of_interval_not_start_of_next() -> None:
    monday_8 = at("2026-10-05T08:00:00+01:00")
    assert business_add(OFFICE, monday_8, 10 * H) == at("2026-10-05T18:00:00+01:00")
    assert business_add(OFFICE, monday_8, 10 * H + 1) == at("2026-10-06T08:00:00.000001+01:00")


def test_add_from_outside_working_time() -> None:
    saturday = at("2026-10-03T12:00:00+01:00")
    assert business_add(OFFICE, saturday, 0) == saturday
    assert business_add(OFFICE, saturday, 1) == at("2026-10-05T08:00:00.000001+01:00")
    assert business_add(OFFICE, saturday, 50 * H) == at("2026-10-09T18:00:00+01:00")


def test_office_week_across_the_autumn_change() -> None:
    # Fri 23 Oct BST, Mon 26 Oct GMT: the weekend change shifts UTC by an hour.
    assert working_intervals(OFFICE, at("2026-10-23T00:00:00Z"), at("2026-10-27T00:00:00Z")) == [
        (at("2026-10-23T07:00:00Z"), at("2026-10-23T17:00:00Z")),
        (at("2026-10-26T08:00:00Z"), at("2026-10-26T18:00:00Z")),
    ]


# --- DST days ---------------------------------------------------------------

DST_DAYS = [
    ("Europe/London", date(2026, 3, 29), 3 * H, 23 * H),
    ("Europe/London", date(2026, 10, 25), 5 * H, 25 * H),
    ("America/New_York", date(2026, 3, 8), 3 * H, 23 * H),
    ("America/New_York", date(2026, 11, 1), 5 * H, 25 * H),
    ("Australia/Sydney", date(2026, 4, 5), 5 * H, 25 * H),
    ("Australia/Sydney", date(2026, 10, 4), 3 * H, 23 * H),
]


def local_day_bounds(zone: str, day: date) -> tuple[int, int]:
    """Generous UTC bounds around a local date."""
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    base = int(start.timestamp()) * S
    return base - MICROS_PER_DAY, base + 2 * MICROS_PER_DAY


@pytest.mark.parametrize(("zone", "day", "early", "whole"), DST_DAYS)
def test_dst_day_lengths(zone: str, day: date, early: int, whole: int) -> None:
    a, b = local_day_bounds(zone, day)
    assert business_elapsed(cal(zone, (day.weekday(), "00:00", "04:00")), a, b) == early
    assert business_elapsed(cal(zone, (day.weekday(), "00:00", "24:00")), a, b) == whole


def test_24_00_end_is_next_local_midnight_around_fall_back() -> None:
    # Sat 24 Oct 2026 22:00-24:00 BST; Sun 25 Oct 22:00-24:00 GMT.
    late = cal("Europe/London", (SAT, "22:00", "24:00"), (SUN, "22:00", "24:00"))
    a, b = at("2026-10-24T00:00:00Z"), at("2026-10-27T00:00:00Z")
    assert working_intervals(late, a, b) == [
        (at("2026-10-24T21:00:00Z"), at("2026-10-24T23:00:00Z")),
        (at("2026-10-25T22:00:00Z"), at("2026-10-26T00:00:00Z")),
    ]


def test_fall_back_fold_zero_picks_first_occurrence() -> None:
    # 01:00-01:30 on 25 Oct 2026 exists twice in London; fold=0 is the BST one.
    first = cal("Europe/London", (SUN, "01:00", "01:30"))
    a, b = at("2026-10-24T00:00:00Z"), at("2026-10-27T00:00:00Z")
    assert working_intervals(first, a, b) == [
        (at("2026-10-25T00:00:00Z"), at("2026-10-25T00:30:00Z"))
    ]
    # 01:00-02:00 spans both occurrences: 01:00 BST (00:00Z) to 02:00 GMT.
    both = cal("Europe/London", (SUN, "01:00", "02:00"))
    assert business_elapsed(both, a, b) == 2 * H


# London springs forward on 29 Mar 2026 at 01:00 GMT: wall 01:00-02:00 does
# not exist, and fold=0 maps a wall time in it with the GMT offset.
SPRING_A, SPRING_B = at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("01:30", "02:00", []),  # 01:30Z .. 01:00Z: end not after start
        ("01:00", "02:00", []),  # 01:00Z .. 01:00Z
        ("01:45", "02:30", []),  # 01:45Z .. 01:30Z
        ("01:00", "01:30", [("01:00", "01:30")]),  # both in the gap, GMT offset
        ("01:15", "02:30", [("01:15", "01:30")]),
        ("00:30", "02:00", [("00:30", "01:00")]),
        ("02:00", "03:00", [("01:00", "02:00")]),
    ],
)
def test_spring_forward_gap(start: str, end: str, expected: list[tuple[str, str]]) -> None:
    got = working_intervals(cal("Europe/London", (SUN, start, end)), SPRING_A, SPRING_B)
    assert got == [(at(f"2026-03-29T{s}:00Z"), at(f"2026-03-29T{e}:00Z")) for s, e in expected]


def test_locally_disjoint_intervals_overlapping_in_utc_count_once() -> None:
    # 01:00-01:45 -> 01:00Z-01:45Z and 02:00-03:00 -> 01:00Z-02:00Z on the
    # spring-forward day: working time is a set of instants, so 1 h, not 1 h 45.
    gap = cal("Europe/London", (SUN, "01:00", "01:45"), (SUN, "02:00", "03:00"))
    assert working_intervals(gap, SPRING_A, SPRING_B) == [
        (at("2026-03-29T01:00:00Z"), at("2026-03-29T02:00:00Z"))
    ]
    assert business_elapsed(gap, SPRING_A, SPRING_B) == H


def test_half_hour_zone() -> None:
    india = cal("Asia/Kolkata", (WED, "09:00", "17:00"))
    a, b = at("2026-07-01T00:00:00+05:30"), at("2026-07-02T00:00:00+05:30")
    assert working_intervals(india, a, b) == [
        (at("2026-07-01T03:30:00Z"), at("2026-07-01T11:30:00Z"))
    ]


# --- holidays, merging, degenerate calendars --------------------------------


def test_holiday_removes_that_local_date_only() -> None:
    holiday = date(2026, 10, 5)
    office = cal("Europe/London", *((d, "08:00", "18:00") for d in range(5)), holidays=(holiday,))
    a, b = at("2026-10-04T00:00:00Z"), at("2026-10-08T00:00:00Z")
    assert business_elapsed(office, a, b) == 20 * H
    assert business_add(office, at("2026-10-05T09:00:00+01:00"), H) == at(
        "2026-10-06T09:00:00+01:00"
    )


def test_holiday_on_a_day_ending_at_24_00_keeps_next_day() -> None:
    nights = cal(
        "UTC", (MON, "20:00", "24:00"), (TUE, "00:00", "04:00"), holidays=(date(2026, 10, 5),)
    )
    a, b = at("2026-10-05T00:00:00Z"), at("2026-10-07T00:00:00Z")
    assert working_intervals(nights, a, b) == [
        (at("2026-10-06T00:00:00Z"), at("2026-10-06T04:00:00Z"))
    ]


@pytest.mark.parametrize(
    ("weekly", "hours"),
    [
        ([("08:00", "12:00"), ("10:00", "14:00")], 6),
        ([("08:00", "12:00"), ("12:00", "14:00")], 6),
        ([("08:00", "18:00"), ("09:00", "10:00")], 10),
        ([("08:00", "12:00"), ("08:00", "12:00")], 4),
        ([("13:00", "14:00"), ("08:00", "09:00")], 2),
    ],
)
def test_overlapping_intervals_are_merged(weekly: list[tuple[str, str]], hours: int) -> None:
    merged = cal("Europe/London", *((MON, s, e) for s, e in weekly))
    a, b = at("2026-10-05T00:00:00+01:00"), at("2026-10-06T00:00:00+01:00")
    assert business_elapsed(merged, a, b) == hours * H
    assert sum(e - s for s, e in working_intervals(merged, a, b)) == hours * H


def test_touching_days_come_back_as_one_interval() -> None:
    nonstop = cal("UTC", (MON, "00:00", "24:00"), (TUE, "00:00", "24:00"))
    a, b = at("2026-10-04T00:00:00Z"), at("2026-10-08T00:00:00Z")
    assert working_intervals(nonstop, a, b) == [
        (at("2026-10-05T00:00:00Z"), at("2026-10-07T00:00:00Z"))
    ]


def test_calendar_without_working_time() -> None:
    empty = cal("Europe/London")
    a = at("2026-10-05T00:00:00Z")
    assert business_elapsed(empty, a, a + 400 * MICROS_PER_DAY) == 0
    assert working_intervals(empty, a, a + 400 * MICROS_PER_DAY) == []
    assert business_add(empty, a, 0) == a
    with pytest.raises(ValueError, match="no working time"):
        business_add(empty, a, 1)


def test_negative_duration_and_empty_spans() -> None:
    a = at("2026-10-05T09:00:00Z")
    with pytest.raises(ValueError):
        business_add(OFFICE, a, -1)
    assert business_elapsed(OFFICE, a, a) == 0
    assert business_elapsed(OFFICE, a, a - H) == 0
    assert working_intervals(OFFICE, a, a - H) == []


@pytest.mark.parametrize(
    "bad",
    [
        Calendar("x", "Europe/London", (WeeklyInterval(7, 0, 60),)),
        Calendar("x", "Europe/London", (WeeklyInterval(0, 60, 60),)),
        Calendar("x", "Europe/London", (WeeklyInterval(0, 0, 1441),)),
        Calendar("x", "Mars/Olympus_Mons", (WeeklyInterval(0, 0, 60),)),
    ],
)
def test_invalid_calendars_are_refused(bad: Calendar) -> None:
    with pytest.raises(ValueError):
        business_elapsed(bad, 0, MICROS_PER_DAY * 8)


def test_24x7() -> None:
    a = at("2026-03-29T00:30:00Z")
    assert business_elapsed(CALENDAR_24X7, a, a + 5 * H) == 5 * H
    assert business_add(CALENDAR_24X7, a, 5 * H) == a + 5 * H
    assert working_intervals(CALENDAR_24X7, a, a + 1) == [(a, a + 1)]
    assert working_intervals(CALENDAR_24X7, a, a) == []


def test_long_span_equals_sum_of_months() -> None:
    bounds = [at(f"{y}-{m:02d}-01T00:00:00Z") for y in (2026, 2027) for m in range(1, 13)]
    total = business_elapsed(OFFICE, bounds[0], bounds[-1])
    assert total == sum(business_elapsed(OFFICE, x, y) for x, y in pairwise(bounds))
    assert business_add(OFFICE, bounds[0], total) <= bounds[-1]
