"""Property tests: the engine against a deliberately naive re-implementation.

Random valid timelines are drawn on a one-minute grid; the reference walks
every minute, asks "what is the state of the incident during this minute?"
and counts. It shares no code with the engine (no intervals, no calendars
module), so agreement on thousands of histories is evidence that the fold,
the interval algebra and the sweep implement the rules, not the example.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.instants import from_datetime, parse_instant
from ledger.domain.sla import (
    facts_from_dict,
    facts_to_dict,
    facts_valid_at,
    fold_incident,
    period_bounds,
    period_of,
)
from ledger.domain.sla.api import compute_downtime_timeline
from tests.support.sla_book import Book, level
from tests.support.sla_timelines import (
    BASE,
    MINUTE,
    OFFICE,
    PROVIDERS,
    THRESHOLDS,
    Step,
    at,
    office_minute,
    timelines,
    write,
)

# --- the reference -----------------------------------------------------------


@dataclass
class Minute:
    """The state of an incident during one minute [m, m+1)."""

    response_runs: bool
    resolution_runs: bool
    paused: bool
    charged: str
    outage: Fraction


def reference_minutes(steps: list[Step], t: int) -> tuple[list[Minute], dict[str, Any]]:
    known = [s for s in steps if s.minute <= t]
    # Misroutes: [handoff, rejection) is charged to the sender.
    misroutes: list[tuple[int, int, str]] = []
    latest: tuple[int, str] | None = None
    for s in known:
        if s.kind == "handed_off":
            latest = (s.minute, s.actor)
        elif s.kind == "handoff_rejected" and latest is not None:
            misroutes.append((latest[0], s.minute, latest[1]))
            latest = None
    final: dict[str, Any] = {"priority": known[0].fields["priority"], "root_cause": None}
    for s in known:
        if s.kind == "priority_changed":
            final["priority"] = s.fields["priority"]
        if s.kind in ("resolved", "root_cause_assigned") and s.fields.get("root_cause"):
            final["root_cause"] = s.fields["root_cause"]
    minutes = [_minute(known, misroutes, m) for m in range(t)]
    # The state at T itself (events dated exactly T included).
    at_t = _minute(known, misroutes, t)
    final["response_running"] = at_t.response_runs
    final["resolution_running"] = at_t.resolution_runs
    final["paused"] = at_t.paused
    return minutes, final


def _minute(known: list[Step], misroutes: list[tuple[int, int, str]], m: int) -> Minute:
    responded = resolved = paused = False
    weight = Fraction(0)
    for s in known:
        if s.minute > m:
            break
        responded = responded or s.kind in ("responded", "resolved")
        if s.kind == "resolved":
            resolved = True
        elif s.kind == "reopened":
            resolved = False
        elif s.kind == "clock_paused":
            paused = True
        elif s.kind == "clock_resumed":
            paused = False
        elif s.kind == "outage_started":
            weight = Fraction(Decimal(s.fields["impact"]))
        elif s.kind == "outage_ended":
            weight = Fraction(0)
    charged = next((snd for a, b, snd in misroutes if a <= m < b), _holder_at(known, m))
    return Minute(not responded, not resolved, paused, charged, weight)


def _holder_at(known: list[Step], m: int) -> str:
    holder = str(known[0].fields["custody"])
    previous: list[str] = []
    for s in known:
        if s.minute > m:
            break
        if s.kind == "handed_off":
            previous.append(holder)
            holder = str(s.fields["to"])
        elif s.kind == "handoff_rejected":
            holder = previous.pop()
    return holder


def reference_clock(minutes: list[Minute], level_id: str, final: dict[str, Any],  # noqa: C901  the reference model of a clock, kept whole to be read against the spec
                    t: int) -> dict[str, Any]:
    root_cause = final["root_cause"]
    def counts(m: int) -> bool:
        return office_minute(m) if level_id in OFFICE else True

    runs = [(mm.response_runs if "response" in level_id else mm.resolution_runs)
            for mm in minutes]
    elapsed = wait = 0
    accountable: dict[str, int] = {}
    crossing = None
    threshold = THRESHOLDS[level_id]
    for m, (mm, running) in enumerate(zip(minutes, runs, strict=True)):
        if not running or not counts(m):
            continue
        if mm.paused:
            wait += 1
            continue
        elapsed += 1
        accountable[mm.charged] = accountable.get(mm.charged, 0) + 1
        if elapsed == threshold and crossing is None:
            crossing = m + 1
    still_running = final["response_running" if "response" in level_id else "resolution_running"]
    paused_now = final["paused"]
    if root_cause == "customer":
        outcome = "excused"
    elif elapsed > threshold:
        outcome = "missed"
    else:
        outcome = "pending" if still_running else "met"
    due = None
    if still_running and not paused_now:
        if crossing is not None:
            due = crossing
        else:
            need, m = threshold - elapsed, t
            while need:
                if counts(m):
                    need -= 1
                m += 1
            due = m
    return {"elapsed": elapsed, "wait": wait, "accountable": accountable,
            "outcome": outcome, "due": due, "stopped": not still_running}


def _seconds(minutes: int | Fraction) -> str:
    value = Fraction(minutes) * 60
    assert value.denominator == 1 or (value * 10**6).denominator == 1
    micros = int(value * 10**6)
    return f"{micros // 10**6}.{micros % 10**6:06d}"


# --- properties ----------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(steps=timelines(), t_extra=st.integers(0, 3000), t_frac=st.floats(0, 1))
def test_clocks_match_minute_reference(steps: list[Step], t_extra: int, t_frac: float) -> None:
    # T anywhere from just after opening to well after the last event.
    t = max(1, round((steps[-1].minute + t_extra) * t_frac))
    book = Book()
    write(book, "I", steps)
    view = book.view("I", at(t))
    minutes, final = reference_minutes(steps, t)
    assert view["priority"] == final["priority"]
    assert view["root_cause"] == final["root_cause"]
    assert set(view["service_levels"]) == {
        f"{final['priority'].lower()}-response", f"{final['priority'].lower()}-resolution"}
    for level_id, clock in view["service_levels"].items():
        ref = reference_clock(minutes, level_id, final, t)
        assert clock["elapsed_seconds"] == _seconds(ref["elapsed"]), level_id
        assert clock["customer_wait_seconds"] == _seconds(ref["wait"]), level_id
        assert clock["accountable_seconds"] == {
            o: _seconds(n) for o, n in sorted(ref["accountable"].items())}, level_id
        assert clock["outcome"] == ref["outcome"], level_id
        assert clock["stopped"] == ref["stopped"], level_id
        assert clock["due_at"] == (None if ref["due"] is None else at(ref["due"])), level_id
        if clock["outcome"] == "missed":
            total = sum(ref["accountable"].values())
            assert clock["shares"] == {
                o: view_ratio(Fraction(n, total)) for o, n in sorted(ref["accountable"].items())
            }


def view_ratio(x: Fraction) -> str:
    scaled = x * 10**12
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        floor += 1
    return f"{floor // 10**12}.{floor % 10**12:012d}"


@settings(max_examples=150, deadline=None)
@given(incidents=st.lists(st.tuples(timelines(max_steps=8), st.integers(-600, 3000)),
                          min_size=1, max_size=3),
       t=st.integers(1, 8000))
def test_availability_matches_minute_reference(
    incidents: list[tuple[list[Step], int]], t: int
) -> None:
    """Downtime and its owner, minute by minute, across overlapping outages
    of several incidents (24x7, period March 2026, T inside it)."""
    book = Book()
    expected: dict[str, Fraction] = {}
    states: list[tuple[int, str, list[Minute], str | None]] = []
    for n, (steps, shift) in enumerate(incidents):
        incident = f"I{n}"
        write(book, incident, steps, shift)
        local_t = t - shift
        if local_t < 0:
            continue  # not yet opened at T
        minutes, final = reference_minutes(steps, local_t)
        states.append((shift, incident, minutes, final["root_cause"]))
    period_start = parse_instant("2026-03-01T00:00:00Z")
    first_minute = (period_start - from_datetime(BASE)) // MINUTE
    for m in range(max(first_minute, min((s for s, *_ in states), default=0)), t):
        open_now = []
        for shift, incident, minutes, rc in states:
            local = m - shift
            if rc == "customer" or not 0 <= local < len(minutes):
                continue
            if minutes[local].outage > 0:
                open_now.append((-minutes[local].outage, shift, incident,
                                 rc if rc in PROVIDERS else minutes[local].charged))
        if open_now:
            weight, _, _, org = min(open_now)
            expected[org] = expected.get(org, Fraction(0)) - weight
    report = book.report(at=at(t))
    sl = level(report, "net-availability")
    assert sl["downtime_by_provider_seconds"] == {
        org: _seconds(v) for org, v in sorted(expected.items()) if v > 0}
    assert sl["downtime_seconds"] == _seconds(sum(expected.values(), Fraction(0)))
    # The statement's timeline: ordered, disjoint slices adding up to the same
    # downtime per provider.
    slices = compute_downtime_timeline(book.history, book.events, "2026-03", parse_instant(at(t)),
                                       book.position)["net-availability"]
    by_org: dict[str, Decimal] = {}
    for earlier, later in itertools.pairwise(slices):
        assert parse_instant(earlier["to"]) <= parse_instant(later["from"])
    for piece in slices:
        assert parse_instant(piece["from"]) < parse_instant(piece["to"])
        by_org[piece["org"]] = by_org.get(piece["org"], Decimal(0)) + Decimal(piece["downtime_seconds"])
    assert {o: Decimal(v) for o, v in sl["downtime_by_provider_seconds"].items()} == \
        {o: v for o, v in by_org.items() if v}


@settings(max_examples=200, deadline=None)
@given(steps=timelines(), t=st.integers(0, 6000), probe=st.integers(0, 6000))
def test_folded_facts_are_exact_across_their_validity_range(
    steps: list[Step], t: int, probe: int
) -> None:
    book = Book()
    write(book, "I", steps)
    events = book.events["I"]
    facts = fold_incident(events, parse_instant(at(t)), book.history)
    assert facts_from_dict(json.loads(json.dumps(facts_to_dict(facts)))) == facts
    other = fold_incident(events, parse_instant(at(probe)), book.history)
    if facts_valid_at(facts, parse_instant(at(probe))):
        assert other == facts
    else:
        assert (other.valid_from, other.valid_until) != (facts.valid_from, facts.valid_until)


ZONES = ["UTC", "Europe/London", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata",
         "America/Havana", "Pacific/Apia"]


@given(zone=st.sampled_from(ZONES),
       instant=st.integers(parse_instant("2000-01-01T00:00:00Z"),
                           parse_instant("2040-01-01T00:00:00Z")))
def test_period_of_agrees_with_period_bounds(zone: str, instant: int) -> None:
    period = period_of(zone, instant)
    start, end = period_bounds(zone, period)
    assert start <= instant < end
    # Consecutive periods tile time.
    year, month = int(period[:4]), int(period[5:])
    nxt = f"{year + month // 12:04d}-{month % 12 + 1:02d}"
    assert period_bounds(zone, nxt)[0] == end
