"""Readings 10.19-10.27 and 10.29 (docs/sla-semantics.md), each with the case
it accepts and the case it refuses or that differs. Reading 18 (amendments)
has its own module, test_amendments.py."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.application.ledger_service import content_hash
from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, TermsVersion
from ledger.domain.calendars import business_elapsed
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import InvalidArgument, OutOfRange, TimelineViolation
from ledger.domain.instants import MICROS_PER_MINUTE, parse_instant
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.terms_parsing import parse_calendar, parse_terms
from ledger.domain.validation import check_incident_event, check_maintenance_event
from tests.support.sla_book import Book, level

MIN = MICROS_PER_MINUTE
NOW = parse_instant("2026-11-05T00:00:00Z")


# --- 10.19 a priority change to the same priority -----------------------------


def test_19_same_priority_changes_nothing() -> None:
    plain, resent = Book(), Book()
    for b in (plain, resent):
        b.open("I", "2026-03-02T10:00:00Z", priority="P2")
        b.add("I", "responded", "2026-03-02T10:30:00Z")
    resent.add("I", "priority_changed", "2026-03-02T10:10:00Z", actor="cust", priority="P2")
    at = "2026-03-03T00:00:00Z"
    assert resent.view("I", at)["service_levels"] == plain.view("I", at)["service_levels"]
    assert resent.view("I", at)["priority"] == "P2"
    # A real change still applies the new priority's levels.
    resent.add("I", "priority_changed", "2026-03-02T10:20:00Z", actor="cust", priority="P1")
    assert set(resent.view("I", at)["service_levels"]) == {"p1-response", "p1-resolution"}


# --- 10.20 intervals that hold no time; open intervals -------------------------


def test_20_zero_length_custody_is_left_out_and_open_ends_are_null() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z", custody="pa")
    b.add("I", "handed_off", "2026-03-02T10:00:00Z", actor="pa", to="pb")  # at opened
    b.add("I", "outage_started", "2026-03-02T11:00:00Z", actor="pb")
    b.add("I", "outage_ended", "2026-03-02T11:00:00Z", actor="pb")  # holds no time
    b.add("I", "outage_started", "2026-03-02T12:00:00Z", actor="pb", impact="0.5")
    view = b.view("I", "2026-03-02T13:00:00Z")
    assert view["custody"] == [{"org": "pb", "from": "2026-03-02T10:00:00Z", "to": None}]
    assert [h["org"] for h in view["holders"]] == ["pb"]
    assert view["outages"] == [{"from": "2026-03-02T12:00:00Z", "to": None,
                                "impact": "0.500000000000"}]
    # An interval with time is listed, closed at its end.
    b.add("I", "handed_off", "2026-03-02T12:30:00Z", actor="pb", to="pa")
    view = b.view("I", "2026-03-02T13:00:00Z")
    assert view["custody"] == [
        {"org": "pb", "from": "2026-03-02T10:00:00Z", "to": "2026-03-02T12:30:00Z"},
        {"org": "pa", "from": "2026-03-02T12:30:00Z", "to": None},
    ]


def test_20_two_handoffs_at_one_instant_leave_one_unbroken_stretch() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z", custody="pa")
    b.add("I", "handed_off", "2026-03-02T10:30:00Z", actor="pa", to="pb")
    b.add("I", "handed_off", "2026-03-02T10:30:00Z", actor="pb", to="pa")
    view = b.view("I", "2026-03-02T11:00:00Z")
    assert view["custody"] == [{"org": "pa", "from": "2026-03-02T10:00:00Z", "to": None}]


# --- 10.21 decimal strings ---------------------------------------------------


def _outage(impact: Any) -> dict[str, Any]:
    raw = {"event_id": "e", "incident_id": "I", "type": "outage_started",
           "occurred_at": "2026-03-02T10:00:00Z", "actor": "pa"}
    return raw if impact is None else raw | {"impact": impact}


@pytest.mark.parametrize("text", ["1", "0.5", "0.9995", "1.0"])
def test_21_decimal_strings_are_accepted(text: str) -> None:
    payload = event_from_dict(_outage(text)).payload
    assert isinstance(payload, ev.OutageStarted) and payload.impact == Decimal(text)


@pytest.mark.parametrize("value", [".5", "5.", "+1", "5e-1", "0.5 ", "1_0", 0.5, 1, True, "NaN"])
def test_21_other_forms_and_json_numbers_are_refused(value: Any) -> None:
    with pytest.raises(InvalidArgument) as info:
        event_from_dict(_outage(value))
    assert info.value.field == "event.impact"


@pytest.mark.parametrize("key", ["objective", "credit_percent"])
@pytest.mark.parametrize("value", ["0.95", ".95", "95e-2", 0.95])
def test_21_ratios_and_percents_of_terms(key: str, value: Any) -> None:
    raw = Book().raw_terms
    raw["service_levels"][0][key] = value
    if isinstance(value, str) and value[0].isdigit() and "e" not in value:
        parse_terms(raw)
        return
    with pytest.raises(InvalidArgument) as info:
        parse_terms(raw)
    assert info.value.field == f"agreement.service_levels[0].{key}"


def test_21_at_risk_percent_as_a_number_is_refused() -> None:
    raw = Book().raw_terms
    parse_terms(raw | {"at_risk_percent": "12.5"})
    with pytest.raises(InvalidArgument):
        parse_terms(raw | {"at_risk_percent": 12})


# --- 10.22 maintenance windows -----------------------------------------------


def _window(start: str, actor: str = "pa") -> ev.LedgerEvent:
    begin = parse_instant(start)
    return ev.LedgerEvent("w", "agr", "", parse_instant("2025-12-01T00:00:00Z"), actor,
                          ev.MaintenanceScheduled("net", begin, begin + 60 * MIN))


def test_22_window_from_effective_from_by_a_party() -> None:
    history = Book().history  # in force from 2026-01-01
    check_maintenance_event(history, _window("2026-01-01T00:00:00Z"), now=NOW, max_skew=0)
    with pytest.raises(TimelineViolation) as info:
        check_maintenance_event(history, _window("2025-12-31T23:59:59Z"), now=NOW, max_skew=0)
    assert info.value.rule == "before_effective_from"
    with pytest.raises(TimelineViolation) as info:
        check_maintenance_event(history, _window("2026-02-01T00:00:00Z", actor="outsider"),
                                now=NOW, max_skew=0)
    assert info.value.rule == "not_a_party"


# --- 10.23 periods before the agreement --------------------------------------


def test_23_periods_before_effective_from_are_out_of_range_naming_the_first() -> None:
    b = Book()  # UTC, in force from 2026-01-01T00:00Z: December ends exactly there
    for period in ("2025-12", "2024-06"):
        with pytest.raises(OutOfRange) as info:
            b.report(period=period)
        assert "first period is 2026-01" in str(info.value)
    assert b.report(period="2026-01")["period"] == "2026-01"


def test_23_first_period_schedules_availability_from_effective_from() -> None:
    b = Book()
    b.raw_terms["service_levels"][-1]["calendar"] = "24x7"
    terms = parse_terms(b.raw_terms)
    mid_month = parse_instant("2026-01-11T00:00:00Z")
    history = AgreementHistory("agr", (TermsVersion(mid_month, terms),))
    from ledger.domain.sla import compute_period_report

    report = period_report_dict(compute_period_report(history, {}, "2026-01", parse_instant("2026-02-05T00:00:00Z"),
                                   0, None))
    availability = level(report, "net-availability")
    assert availability["scheduled_seconds"] == f"{21 * 86400}.000000"  # 11th..31st
    later = period_report_dict(compute_period_report(history, {}, "2026-02", parse_instant("2026-03-05T00:00:00Z"),
                                  0, None))
    assert level(later, "net-availability")["scheduled_seconds"] == f"{28 * 86400}.000000"


# --- 10.24 weekly intervals merged in local time, then mapped ---------------------


def test_24_touching_intervals_are_merged_before_mapping_across_a_dst_gap() -> None:
    # London springs forward on Sunday 2026-03-29 at 01:00 GMT (01:00-02:00 local
    # does not exist). Merged, 00:30-02:00 local maps to [00:30Z, 01:00Z): 30 min.
    # Mapped piece by piece, 00:30-01:30 would give [00:30Z, 01:30Z), 60 min.
    cal = parse_calendar("c", {"timezone": "Europe/London", "weekly": [
        {"day": "SUN", "start": "00:30", "end": "01:30"},
        {"day": "SUN", "start": "01:30", "end": "02:00"}]}, "c")
    day = parse_instant("2026-03-29T00:00:00Z")
    assert business_elapsed(cal, day, day + 24 * 60 * MIN) == 30 * MIN
    # Across midnight too: Saturday to 24:00 and Sunday from 00:00 are one stretch.
    cal = parse_calendar("c", {"timezone": "Europe/London", "weekly": [
        {"day": "SAT", "start": "23:00", "end": "24:00"},
        {"day": "SUN", "start": "00:00", "end": "02:00"}]}, "c")
    assert business_elapsed(cal, day - 60 * MIN, day + 24 * 60 * MIN) == 120 * MIN
    # An ordinary Sunday: both pieces count in full.
    week_later = day + 7 * 24 * 60 * MIN
    assert business_elapsed(cal, week_later - 180 * MIN, week_later + 24 * 60 * MIN) == 180 * MIN


# --- 10.25 month bounds across a time-zone amendment ------------------------------


def _zone_history(new_zone: str) -> AgreementHistory:
    b = Book(timezone="Europe/London")
    first = parse_terms(b.raw_terms)
    moved = replace(first, timezone=new_zone)
    return AgreementHistory("agr", (
        TermsVersion(parse_instant("2026-09-01T00:00:00+01:00"), first, "reg", 1),
        TermsVersion(parse_instant("2026-10-15T00:00:00Z"), moved, "amend", 2)))


def test_25_a_month_ends_in_the_zone_it_started_in() -> None:
    from ledger.domain.sla.period import incident_period, period_terms

    history = _zone_history("America/New_York")
    _, start, end = period_terms(history, "2026-10")
    assert (start, end) == (parse_instant("2026-10-01T00:00:00+01:00"),
                            parse_instant("2026-11-01T00:00:00Z"))  # London midnight
    terms, start, end = period_terms(history, "2026-11")
    assert terms.timezone == "America/New_York"
    assert (start, end) == (parse_instant("2026-11-01T00:00:00Z"),
                            parse_instant("2026-12-01T00:00:00-05:00"))
    # 02:00Z on 1 November is still 31 October in New York, yet November's.
    assert incident_period(history, parse_instant("2026-11-01T02:00:00Z")) == "2026-11"
    assert incident_period(history, parse_instant("2026-10-31T23:59:59Z")) == "2026-10"
    _, start, _ = period_terms(history, "2026-12")
    assert start == parse_instant("2026-12-01T00:00:00-05:00")


def test_25_incident_view_names_the_month_whose_report_counts_it() -> None:
    from ledger.domain.sla import compute_incident_view, compute_period_report
    from ledger.domain.sla.incident_json import incident_view_dict

    history = _zone_history("Asia/Tokyo")
    b = Book()
    # Tokyo's November ends at 2026-11-30T15:00Z: this one is December's.
    b.open("I", "2026-11-30T16:00:00Z")
    b.open("J", "2026-11-30T14:00:00Z")
    t = parse_instant("2026-12-10T00:00:00Z")
    for incident, period in (("I", "2026-12"), ("J", "2026-11")):
        view = incident_view_dict(compute_incident_view(history, b.events[incident], t, b.position))
        assert view["period"] == period
        report = period_report_dict(compute_period_report(history, b.events, period, t, b.position, None))
        assert level(report, "p1-response")["incidents"]["missed"] == [incident]


# --- 10.26 a service on response and resolution levels -----------------------------


def test_26_level_with_a_service_applies_to_that_service_only() -> None:
    levels = [{"id": "desk-p1", "kind": "resolution", "priority": "P1", "threshold": "PT1H",
               "service": "desk", "objective": "0.9", "credit_percent": "1"},
              {"id": "any-p1", "kind": "response", "priority": "P1", "threshold": "PT1H",
               "objective": "0.9", "credit_percent": "1"}]
    b = Book(service_levels=levels)
    b.open("N", "2026-03-02T10:00:00Z", service="net")
    b.open("D", "2026-03-02T10:00:00Z", service="desk")
    at = "2026-03-03T00:00:00Z"
    assert set(b.view("N", at)["service_levels"]) == {"any-p1"}
    assert set(b.view("D", at)["service_levels"]) == {"desk-p1", "any-p1"}
    report = b.report()
    assert level(report, "desk-p1")["incidents"]["missed"] == ["D"]
    assert level(report, "desk-p1")["service"] == "desk"
    assert level(report, "any-p1")["incidents"]["missed"] == ["D", "N"]
    with pytest.raises(InvalidArgument) as info:
        parse_terms(b.raw_terms | {"service_levels": [levels[0] | {"service": "phone"}]})
    assert info.value.field == "agreement.service_levels[0].service"


# --- 10.27 due_at once the threshold is reached ----------------------------------


def test_27_due_at_of_a_reached_threshold_does_not_move_with_t() -> None:
    b = Book()
    b.open("I", "2026-03-06T16:00:00Z", priority="P2")  # Friday; office ends 17:00
    reached = parse_instant("2026-03-06T17:00:00Z")
    for at in ("2026-03-06T17:00:00Z", "2026-03-07T10:00:00Z", "2026-03-08T23:00:00Z"):
        clock = b.clocks("I", at)["p2-response"]
        assert clock.elapsed == clock.threshold and clock.outcome == "pending"
        assert clock.due_at == reached
    # Not yet reached: due_at is ahead of T, where the clock would reach it.
    ahead = b.clocks("I", "2026-03-06T16:30:00Z")["p2-response"]
    assert ahead.due_at == reached


# --- 10.29 identical content compares values; parties at opened_at ------------------


def _stored_shape(**fields: Any) -> ev.LedgerEvent:
    raw = {"event_id": "e1", "incident_id": "I", "type": "outage_started",
           "occurred_at": "2026-03-02T10:00:00Z", "actor": "pa"} | fields
    return event_from_dict(raw)


def test_29_identical_content_compares_values() -> None:
    base = content_hash(_stored_shape(impact="1"))
    assert content_hash(_stored_shape()) == base  # absent impact is "1"
    assert content_hash(_stored_shape(impact="1.00")) == base
    assert content_hash(_stored_shape(occurred_at="2026-03-02T11:00:00+01:00")) == base
    assert content_hash(event_from_dict(dict(reversed(list(
        {"event_id": "e1", "incident_id": "I", "type": "outage_started",
         "occurred_at": "2026-03-02T10:00:00Z", "actor": "pa"}.items()))))) == base
    assert content_hash(_stored_shape(impact="0.5")) != base
    assert content_hash(_stored_shape(occurred_at="2026-03-02T10:00:00.000001Z")) != base


def test_29_parties_are_those_of_the_terms_at_opened_at() -> None:
    b = Book()
    first = parse_terms(b.raw_terms)
    without_pb = replace(first, providers=("pa",))
    history = AgreementHistory("agr", (
        TermsVersion(parse_instant("2026-01-01T00:00:00Z"), first, "reg", 1),
        TermsVersion(parse_instant("2026-03-01T00:00:00Z"), without_pb, "amend", 2)))
    b.open("OLD", "2026-02-27T10:00:00Z")
    b.open("NEW", "2026-03-02T10:00:00Z")
    for incident in ("OLD", "NEW"):
        stored = [replace(e, agreement_id="agr") for e in b.events[incident]]
        event = event_from_dict({"event_id": f"{incident}-r", "incident_id": incident,
                                 "type": "responded", "occurred_at": "2026-03-03T10:00:00Z",
                                 "actor": "pb"})
        if incident == "OLD":
            check_incident_event(history, stored, event, now=NOW, max_skew=0)
        else:
            with pytest.raises(TimelineViolation) as info:
                check_incident_event(history, stored, event, now=NOW, max_skew=0)
            assert info.value.rule == "not_a_party"
    # A maintenance window: the terms at its start.
    check_maintenance_event(history, _window("2026-02-20T00:00:00Z", actor="pb"),
                            now=NOW, max_skew=0)
    with pytest.raises(TimelineViolation) as info:
        check_maintenance_event(history, _window("2026-03-05T00:00:00Z", actor="pb"),
                                now=NOW, max_skew=0)
    assert info.value.rule == "not_a_party"


ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Tokyo", "Pacific/Chatham",
         "America/Santiago", "Australia/Lord_Howe")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ZONES),
       st.lists(st.tuples(st.integers(0, 400), st.sampled_from(ZONES)), max_size=4),
       st.lists(st.integers(0, 460 * 24), min_size=1, max_size=8))
def test_25_months_tile_time_and_hold_each_instant_once(
        first_zone: str, changes: list[tuple[int, str]], hours: list[int]) -> None:
    """Property: across any zone amendments the periods are contiguous, each
    ends at local midnight on the next first in the zone of the terms at its
    start, and incident_period agrees with period_terms' bounds."""
    from ledger.domain.sla.period import (
        incident_period,
        period_bounds,
        period_of,
        period_terms,
        shift_period,
    )

    base = parse_terms(Book(timezone=first_zone).raw_terms)
    start = parse_instant("2026-01-10T07:00:00Z")
    versions = [TermsVersion(start, base, "reg", 1)] + [
        TermsVersion(start + day * 24 * 60 * MIN + 13 * 60 * MIN, replace(base, timezone=zone),
                     f"a{n}", n + 2) for n, (day, zone) in enumerate(changes)]
    history = AgreementHistory("agr", tuple(versions))
    period = period_of(first_zone, start)
    previous_end = None
    for _ in range(16):
        terms, begin, end = period_terms(history, period)
        if previous_end is not None:
            assert begin == previous_end
        assert terms == history.terms_at(max(begin, start))
        assert period_terms(history, period)[1:] == (begin, end)
        assert end == period_bounds(terms.timezone, shift_period(period, 1))[0]
        previous_end = end
        period = shift_period(period, 1)
    for hour in hours:
        instant = start + hour * 60 * MIN
        name = incident_period(history, instant)
        _, begin, end = period_terms(history, name)
        assert begin <= instant < end
