"""Business-time arithmetic checked by properties against a deliberately naive
reference (no blocks, no bisect, no caching): random weekly calendars over the
DST changes of 2026-2027 (worked examples and DST edges: test_calendars.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.agreements import CALENDAR_24X7, Calendar, WeeklyInterval
from ledger.domain.calendars import business_add, business_elapsed, working_intervals
from ledger.domain.instants import (
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    MICROS_PER_MINUTE,
    MICROS_PER_SECOND,
    parse_instant,
    to_datetime,
)

M, S = MICROS_PER_MINUTE, MICROS_PER_SECOND


# --- properties against a naive reference -----------------------------------


def reference_intervals(c: Calendar, a: int, b: int) -> list[tuple[int, int]]:  # noqa: C901  the reference model: the spec's calendar rules applied literally, kept whole to be read against the spec
    """The spec's rules applied literally, one local date at a time."""
    if b <= a:
        return []
    if c.always:
        return [(a, b)]
    zone = ZoneInfo(c.timezone)

    def wall(day: date, minute: int) -> int:
        day += timedelta(days=minute // 1440)  # "24:00" is the next midnight
        hour, minute = divmod(minute % 1440, 60)
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone, fold=0)
        return int(moment.timestamp()) * S

    pieces: list[tuple[int, int]] = []
    day = to_datetime(a).date() - timedelta(days=2)
    while day <= to_datetime(b).date() + timedelta(days=2):
        if day not in c.holidays:
            local: list[list[int]] = []
            for iv in sorted(
                (w.start_minute, w.end_minute) for w in c.weekly if w.weekday == day.weekday()
            ):
                if local and iv[0] <= local[-1][1]:
                    local[-1][1] = max(local[-1][1], iv[1])
                else:
                    local.append(list(iv))
            for start, end in local:
                s_utc, e_utc = wall(day, start), wall(day, end)
                if e_utc > s_utc:
                    pieces.append((max(s_utc, a), min(e_utc, b)))
        day += timedelta(days=1)
    union: list[tuple[int, int]] = []
    for start, end in sorted(p for p in pieces if p[1] > p[0]):
        if union and start <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], end))
        else:
            union.append((start, end))
    return union


ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
# DST changes of 2026-2027 in the zones above, as UTC instants.
CHANGES = [
    parse_instant(t)
    for t in [
        "2026-03-29T01:00:00Z",
        "2026-10-25T01:00:00Z",
        "2027-03-28T01:00:00Z",
        "2027-10-31T01:00:00Z",
        "2026-03-08T07:00:00Z",
        "2026-11-01T06:00:00Z",
        "2027-03-14T07:00:00Z",
        "2027-11-07T06:00:00Z",
        "2026-04-04T16:00:00Z",
        "2026-10-03T16:00:00Z",
        "2027-04-03T16:00:00Z",
        "2027-10-02T16:00:00Z",
    ]
]


@st.composite
def weekly_intervals(draw: st.DrawFn) -> WeeklyInterval:
    # Quarter-hour and exact-hour boundaries hit DST edges far more often.
    step = draw(st.sampled_from([1, 15, 60]))
    start = draw(st.integers(0, 1439 // step)) * step
    end = draw(
        st.one_of(
            st.just(1440), st.integers(start // step + 1, 1440 // step).map(lambda n: n * step)
        )
    )
    return WeeklyInterval(draw(st.integers(0, 6)), start, min(end, 1440))


calendars = st.builds(
    Calendar,
    id=st.just("random"),
    timezone=st.sampled_from(ZONES),
    weekly=st.lists(weekly_intervals(), max_size=6).map(tuple),
    holidays=st.lists(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=8).map(tuple),
)
working_calendars = calendars.filter(lambda c: bool(c.weekly))
instants = st.one_of(
    st.integers(parse_instant("2025-12-01T00:00:00Z"), parse_instant("2027-12-31T00:00:00Z")),
    st.builds(
        lambda base, off: base + off,
        st.sampled_from(CHANGES),
        st.integers(-4 * MICROS_PER_DAY, 4 * MICROS_PER_DAY),
    ),
)


def spans(max_days: int) -> st.SearchStrategy[int]:
    # Short spans exercise single intervals, long ones block boundaries.
    return st.one_of(st.integers(0, 2 * MICROS_PER_HOUR), st.integers(0, max_days * MICROS_PER_DAY))


PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(calendars, instants, spans(40))
def test_matches_reference(c: Calendar, a: int, span: int) -> None:
    b = a + span
    expected = reference_intervals(c, a, b)
    assert working_intervals(c, a, b) == expected
    assert business_elapsed(c, a, b) == sum(e - s for s, e in expected)


@PROPS
@given(calendars, instants, instants, instants)
def test_additive(c: Calendar, x: int, y: int, z: int) -> None:
    a, b, cc = sorted((x, y, z))
    assert business_elapsed(c, a, cc) == business_elapsed(c, a, b) + business_elapsed(c, b, cc)


@PROPS
@given(calendars, instants, instants)
def test_intervals_are_sorted_disjoint_and_inside(c: Calendar, a: int, b: int) -> None:
    got = working_intervals(c, a, b)
    assert all(a <= s < e <= b for s, e in got)
    assert all(e1 < s2 for (_, e1), (s2, _) in pairwise(got))
    assert sum(e - s for s, e in got) == business_elapsed(c, a, b)


@PROPS
@given(working_calendars, instants, st.data())
def test_add_inverts_elapsed(c: Calendar, a: int, data: st.DataObject) -> None:
    weekly_total = sum(w.end_minute - w.start_minute for w in c.weekly) * M
    d = data.draw(st.one_of(st.integers(0, 3 * weekly_total), st.integers(0, 10 * M)))
    t = business_add(c, a, d)
    assert t >= a
    assert business_elapsed(c, a, t) == d
    if d > 0:
        # Minimal (elapsed is monotone, so one microsecond earlier suffices)
        # and inside or at the end of working time.
        assert business_elapsed(c, a, t - 1) == d - 1
        assert business_elapsed(c, t - 1, t) == 1


@given(instants, instants, st.integers(0, 400 * MICROS_PER_DAY))
def test_24x7_is_wall_time(a: int, b: int, d: int) -> None:
    assert business_elapsed(CALENDAR_24X7, a, b) == max(0, b - a)
    assert business_add(CALENDAR_24X7, a, d) == a + d
    assert working_intervals(CALENDAR_24X7, a, b) == ([(a, b)] if b > a else [])


@PROPS
@given(calendars.map(lambda c: Calendar("x", "UTC", c.weekly, c.holidays)), instants, spans(20))
def test_utc_calendar_equals_weekly_minutes(c: Calendar, a: int, span: int) -> None:
    # Independent cross-check without any zone logic: count whole UTC days.
    b = a + span
    day_start = a - a % MICROS_PER_DAY
    total = 0
    while day_start < b:
        day = to_datetime(day_start).date()
        minutes: set[int] = set()
        if day not in c.holidays:
            for w in c.weekly:
                if w.weekday == day.weekday():
                    minutes.update(range(w.start_minute, w.end_minute))
        for m in minutes:
            lo, hi = day_start + m * M, day_start + (m + 1) * M
            total += max(0, min(hi, b) - max(lo, a))
        day_start += MICROS_PER_DAY
    assert business_elapsed(c, a, b) == total
