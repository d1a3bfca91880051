"""One small hand-made history per rule of sla-semantics.md sections 5-8 and
each 10.x reading that moves a figure. Expected numbers are worked out by
hand in the comments, never read back from the engine.

Default agreement: zone UTC, providers pa and pb, charge 1,000,000 minor
units, 10% at risk, policy custody; "office" is Mon-Fri 09:00-17:00 UTC.
2026-03-02 is a Monday.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from ledger.domain.agreements import AgreementHistory, MaintenanceWindow, TermsVersion
from ledger.domain.codec import event_from_dict
from ledger.domain.events import LedgerEvent
from ledger.domain.instants import parse_instant
from ledger.domain.sla import (
    compute_incident_view,
    compute_period_report,
    fold_incident,
    incident_clocks,
)
from ledger.domain.sla.clocks import ClockResult
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.terms_parsing import parse_terms

H = 3600  # seconds


def secs(n: float) -> str:
    return f"{n:.6f}"


def levels_default() -> list[dict[str, Any]]:
    return [
        {"id": "p1-response", "kind": "response", "priority": "P1", "threshold": "PT15M",
         "calendar": "24x7", "objective": "0.9", "credit_percent": "2"},
        {"id": "p1-resolution", "kind": "resolution", "priority": "P1", "threshold": "PT4H",
         "calendar": "24x7", "objective": "0.9", "credit_percent": "4"},
        {"id": "p2-response", "kind": "response", "priority": "P2", "threshold": "PT1H",
         "calendar": "office", "objective": "0.9", "credit_percent": "1"},
        {"id": "p2-resolution", "kind": "resolution", "priority": "P2", "threshold": "PT8H",
         "calendar": "office", "objective": "0.9", "credit_percent": "1"},
        {"id": "net-availability", "kind": "availability", "service": "net",
         "calendar": "24x7", "objective": "0.99", "credit_percent": "5"},
    ]


class Book:
    """A tiny ledger: events get positions 1, 2, 3... in the order written."""

    def __init__(self, **overrides: Any) -> None:
        weekdays = ("MON", "TUE", "WED", "THU", "FRI")
        self.raw_terms: dict[str, Any] = {
            "customer": "cust", "providers": ["pa", "pb"], "timezone": "UTC",
            "monthly_charge": {"currency": "GBP", "minor_units": 1_000_000},
            "at_risk_percent": "10", "policy": "custody", "services": ["net", "desk"],
            "calendars": {"office": {"timezone": "UTC", "weekly": [
                {"day": d, "start": "09:00", "end": "17:00"} for d in weekdays]}},
            "service_levels": levels_default(),
        } | overrides
        self.position = 0
        self.events: dict[str, list[LedgerEvent]] = {}
        self.windows: list[MaintenanceWindow] = []

    def add(self, incident: str, kind: str, at: str, actor: str = "pa",
            **fields: Any) -> LedgerEvent:
        self.position += 1
        raw: dict[str, Any] = {
            "event_id": f"{incident}-{self.position}", "incident_id": incident, "type": kind,
            "occurred_at": at, "actor": actor, "position": self.position, **fields,
        }
        if kind == "opened":
            raw["agreement"] = "agr"
        event = event_from_dict(raw)
        self.events.setdefault(incident, []).append(event)
        return event

    def open(self, incident: str, at: str, *, service: str = "net", priority: str = "P1",
             custody: str = "pa", impact: str | None = None) -> None:
        self.add(incident, "opened", at, actor="cust", service=service, priority=priority,
                 custody=custody)
        if impact is not None:
            self.add(incident, "outage_started", at, actor=custody, impact=impact)

    def window(self, service: str, start: str, end: str, scheduled_at: str) -> None:
        self.position += 1
        self.windows.append(MaintenanceWindow(
            f"w{self.position}", service, parse_instant(start), parse_instant(end),
            parse_instant(scheduled_at), self.position))

    @property
    def history(self) -> AgreementHistory:
        version = TermsVersion(parse_instant("2026-01-01T00:00:00Z"), parse_terms(self.raw_terms))
        return AgreementHistory("agr", (version,), tuple(self.windows))

    def view(self, incident: str, at: str) -> dict[str, Any]:
        return incident_view_dict(compute_incident_view(self.history, self.events[incident], parse_instant(at),
                                     self.position))

    def clocks(self, incident: str, at: str) -> dict[str, ClockResult]:
        t = parse_instant(at)
        facts = fold_incident(self.events[incident], t, self.history)
        terms = self.history.terms_at(facts.opened_at)
        assert terms is not None
        return {c.level_id: c for c in incident_clocks(facts, terms, t)}

    def report(self, at: str = "2026-04-10T00:00:00Z", period: str = "2026-03",
               position: int | None = None) -> dict[str, Any]:
        cut = self.position if position is None else position
        return period_report_dict(compute_period_report(self.history, self.events, period, parse_instant(at),
                                     cut, None))


def level(report: dict[str, Any], level_id: str) -> dict[str, Any]:
    return next(sl for sl in report["service_levels"] if sl["id"] == level_id)


# --- section 5: clocks -------------------------------------------------------


def test_pause_stops_clock_and_counts_as_customer_wait() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "responded", "2026-03-02T10:05:00Z")
    b.add("I", "clock_paused", "2026-03-02T11:00:00Z", actor="cust")
    b.add("I", "clock_resumed", "2026-03-02T13:00:00Z", actor="cust")
    b.add("I", "resolved", "2026-03-02T14:30:00Z")
    res = b.clocks("I", "2026-03-05T00:00:00Z")["p1-resolution"]
    # 10:00-11:00 + 13:00-14:30 running, 11:00-13:00 paused.
    assert res.elapsed == int(2.5 * H * 1e6)
    assert res.customer_wait == 2 * H * 10**6
    assert res.outcome == "met" and res.stopped
    assert res.accountable == {"pa": res.elapsed}


def test_reopen_runs_resolution_again_but_not_response() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "resolved", "2026-03-02T11:00:00Z")  # stops response too: 1h > 15m
    b.add("I", "reopened", "2026-03-02T12:00:00Z", actor="cust")
    b.add("I", "responded", "2026-03-02T12:01:00Z")  # after reopen: changes nothing
    b.add("I", "resolved", "2026-03-02T15:30:00Z")
    c = b.clocks("I", "2026-03-05T00:00:00Z")
    assert c["p1-response"].elapsed == H * 10**6 and c["p1-response"].outcome == "missed"
    # 1h + 3h30 = 4h30 > 4h
    assert c["p1-resolution"].elapsed == int(4.5 * H * 1e6)
    assert c["p1-resolution"].outcome == "missed"
    assert b.view("I", "2026-03-05T00:00:00Z")["status"] == "resolved"


def test_reopened_while_paused_stays_still_until_resumed() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "responded", "2026-03-02T10:01:00Z")
    b.add("I", "clock_paused", "2026-03-02T10:30:00Z", actor="cust")
    b.add("I", "resolved", "2026-03-02T11:00:00Z")  # ends neither the pause (10.5)
    b.add("I", "reopened", "2026-03-02T12:00:00Z", actor="cust")
    b.add("I", "clock_resumed", "2026-03-02T13:00:00Z", actor="cust")
    res = b.clocks("I", "2026-03-02T14:00:00Z")["p1-resolution"]
    # running 10:00-10:30 and 13:00-14:00; waiting 10:30-11:00 and 12:00-13:00
    assert res.elapsed == int(1.5 * H * 1e6)
    assert res.customer_wait == int(1.5 * H * 1e6)
    assert res.outcome == "pending" and not res.stopped
    # 2h30 still to go from 14:00
    assert res.due_at == parse_instant("2026-03-02T16:30:00Z")


def test_priority_change_applies_new_levels_from_opened_at() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z", priority="P2")
    b.add("I", "responded", "2026-03-02T10:10:00Z")
    b.add("I", "priority_changed", "2026-03-02T12:00:00Z", actor="cust", priority="P1")
    b.add("I", "resolved", "2026-03-02T15:00:00Z")
    before = b.clocks("I", "2026-03-02T11:00:00Z")
    assert set(before) == {"p2-response", "p2-resolution"}
    after = b.clocks("I", "2026-03-05T00:00:00Z")
    assert set(after) == {"p1-response", "p1-resolution"}
    assert after["p1-resolution"].elapsed == 5 * H * 10**6  # from opened_at, not 12:00
    report = b.report()
    assert level(report, "p1-resolution")["incidents"]["missed"] == ["I"]
    assert level(report, "p2-resolution")["incidents"]["met"] == []


def test_excused_wins_over_missed_and_pending() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "root_cause_assigned", "2026-03-02T20:00:00Z", actor="cust",
          root_cause="customer")
    c = b.clocks("I", "2026-03-03T00:00:00Z")
    assert c["p1-response"].outcome == "excused"  # would be missed
    assert c["p1-resolution"].outcome == "excused"  # elapsed 14h, still running
    assert c["p1-resolution"].shares == {}
    sl = level(b.report(), "p1-resolution")
    assert (sl["met"], sl["missed"], sl["excused"]) == (0, 0, 1)
    assert sl["attainment"] is None and sl["achieved"] is True


def test_due_at_running_paused_and_past_threshold() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "clock_paused", "2026-03-02T10:05:00Z", actor="cust")
    b.add("I", "clock_resumed", "2026-03-02T10:35:00Z", actor="cust")
    running = b.clocks("I", "2026-03-02T10:40:00Z")["p1-response"]
    # 10 min elapsed, 5 to go from 10:40
    assert running.due_at == parse_instant("2026-03-02T10:45:00Z")
    assert running.outcome == "pending"
    paused = b.clocks("I", "2026-03-02T10:20:00Z")["p1-response"]
    assert paused.due_at is None and paused.outcome == "pending" and not paused.stopped
    late = b.clocks("I", "2026-03-02T12:00:00Z")["p1-response"]
    # threshold crossed at 10:45 (the pause pushed it back 30 min)
    assert late.outcome == "missed" and late.due_at == parse_instant("2026-03-02T10:45:00Z")
    assert late.shares == {"pa": Fraction(1)}


def test_due_at_in_business_time_and_crossing_outside_working_hours() -> None:
    b = Book()
    b.open("I", "2026-03-06T16:30:00Z", priority="P2")  # Friday, office ends 17:00
    c = b.clocks("I", "2026-03-07T12:00:00Z")["p2-response"]  # Saturday
    # 30 min elapsed on Friday; 30 min more on Monday from 09:00
    assert c.elapsed == 30 * 60 * 10**6
    assert c.due_at == parse_instant("2026-03-09T09:30:00Z")
    c = b.clocks("I", "2026-03-09T09:30:00Z")["p2-response"]
    # exactly at threshold: still pending, and the crossing is now
    assert c.outcome == "pending" and c.due_at == parse_instant("2026-03-09T09:30:00Z")


def test_exactly_at_threshold_pending_then_met_or_missed() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    assert b.clocks("I", "2026-03-02T10:15:00Z")["p1-response"].outcome == "pending"
    assert b.clocks("I", "2026-03-02T10:15:00.000001Z")["p1-response"].outcome == "missed"
    b.add("I", "responded", "2026-03-02T10:15:00Z")
    assert b.clocks("I", "2026-03-03T00:00:00Z")["p1-response"].outcome == "met"


def test_paused_exactly_at_threshold_crossing_is_end_of_working_time() -> None:
    b = Book()
    b.open("I", "2026-03-06T16:00:00Z", priority="P2")
    # Saturday: elapsed 1h == threshold, clock running (not paused, not stopped)
    c = b.clocks("I", "2026-03-07T10:00:00Z")["p2-response"]
    assert c.outcome == "pending"
    assert c.due_at == parse_instant("2026-03-06T17:00:00Z")


def test_events_after_t_do_not_count_but_retractions_do() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    responded = b.add("I", "responded", "2026-03-02T10:05:00Z")
    b.add("I", "resolved", "2026-03-02T11:00:00Z", root_cause="customer")
    at = "2026-03-02T10:30:00Z"
    c = b.clocks("I", at)
    assert c["p1-response"].outcome == "met" and c["p1-resolution"].outcome == "pending"
    # A retraction dated after T still corrects the record (10.8).
    b.add("I", "retracted", "2026-03-03T09:00:00Z", actor="cust",
          target_event_id=responded.event_id)
    c = b.clocks("I", at)
    assert c["p1-response"].outcome == "missed" and c["p1-response"].elapsed == 30 * 60 * 10**6


def test_late_event_sorts_by_occurred_at_then_position() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "responded", "2026-03-02T10:20:00Z")
    b.add("I", "responded", "2026-03-02T10:10:00Z")  # arrives later, happened earlier
    assert b.clocks("I", "2026-03-03T00:00:00Z")["p1-response"].elapsed == 10 * 60 * 10**6


# --- section 6: custody and accountability -------------------------------


def test_misroute_is_charged_to_the_sender() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    b.add("I", "handoff_rejected", "2026-03-02T11:30:00Z", actor="pb")
    b.add("I", "handed_off", "2026-03-02T12:00:00Z", to="pb")
    b.add("I", "resolved", "2026-03-02T15:00:00Z", actor="pb")
    res = b.clocks("I", "2026-03-03T00:00:00Z")["p1-resolution"]
    assert res.accountable == {"pa": 2 * H * 10**6, "pb": 3 * H * 10**6}
    assert res.shares == {"pa": Fraction(2, 5), "pb": Fraction(3, 5)}
    view = b.view("I", "2026-03-03T00:00:00Z")
    assert view["custody"] == [
        {"org": "pa", "from": "2026-03-02T10:00:00Z", "to": "2026-03-02T12:00:00Z"},
        {"org": "pb", "from": "2026-03-02T12:00:00Z", "to": None},
    ]
    assert [(h["org"], h["misrouted"]) for h in view["holders"]] == [
        ("pa", False), ("pb", True), ("pa", False), ("pb", False)]


def test_rejection_after_t_is_not_yet_a_misroute() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    b.add("I", "handoff_rejected", "2026-03-02T13:00:00Z", actor="pb")
    res = b.clocks("I", "2026-03-02T12:00:00Z")["p1-resolution"]
    assert res.accountable == {"pa": H * 10**6, "pb": H * 10**6}


def test_retracted_handoff_recomputes_custody() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    handoff = b.add("I", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    b.add("I", "resolved", "2026-03-02T15:00:00Z")
    b.add("I", "retracted", "2026-03-02T16:00:00Z", actor="pa",
          target_event_id=handoff.event_id)
    res = b.clocks("I", "2026-03-03T00:00:00Z")["p1-resolution"]
    assert res.accountable == {"pa": 5 * H * 10**6}
    assert b.view("I", "2026-03-03T00:00:00Z")["custody"] == [
        {"org": "pa", "from": "2026-03-02T10:00:00Z", "to": None}]


def test_retracted_rejection_removes_the_misroute_charge() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    rejection = b.add("I", "handoff_rejected", "2026-03-02T12:00:00Z", actor="pb")
    b.add("I", "resolved", "2026-03-02T15:00:00Z")
    b.add("I", "retracted", "2026-03-02T16:00:00Z", actor="pb",
          target_event_id=rejection.event_id)
    res = b.clocks("I", "2026-03-03T00:00:00Z")["p1-resolution"]
    assert res.accountable == {"pa": H * 10**6, "pb": 4 * H * 10**6}
    assert not any(h["misrouted"] for h in b.view("I", "2026-03-03T00:00:00Z")["holders"])


def test_paused_time_is_not_accountable() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    b.add("I", "clock_paused", "2026-03-02T11:00:00Z", actor="cust")
    b.add("I", "clock_resumed", "2026-03-02T20:00:00Z", actor="cust")
    b.add("I", "resolved", "2026-03-02T21:00:00Z", actor="pb")
    res = b.clocks("I", "2026-03-03T00:00:00Z")["p1-resolution"]
    assert res.accountable == {"pa": H * 10**6, "pb": H * 10**6}
    assert res.customer_wait == 9 * H * 10**6


@pytest.mark.parametrize(("policy", "root_cause", "expected"), [
    ("root_cause", "pb", {"pb": Fraction(1)}),
    ("root_cause", "third_party", {"pa": Fraction(1, 5), "pb": Fraction(4, 5)}),
    ("custody", "pb", {"pa": Fraction(1, 5), "pb": Fraction(4, 5)}),
    ("root_cause", "pa", {"pa": Fraction(1)}),
])
def test_share_policies(policy: str, root_cause: str, expected: dict[str, Fraction]) -> None:
    b = Book(policy=policy)
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    resolved = b.add("I", "resolved", "2026-03-02T15:00:00Z", actor="pb", root_cause=root_cause)
    if root_cause == "pa":
        # pb blames pa: a claim that counts once pa accepts it (11.2).
        b.add("I", "claim_accepted", "2026-03-02T16:00:00Z", actor="pa",
              target_event_id=resolved.event_id)
    assert b.clocks("I", "2026-03-03T00:00:00Z")["p1-resolution"].shares == expected


def test_latest_root_cause_wins() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    resolved = b.add("I", "resolved", "2026-03-02T11:00:00Z", root_cause="customer")
    b.add("I", "claim_accepted", "2026-03-02T11:00:00Z", actor="cust",
          target_event_id=resolved.event_id)
    blamed = b.add("I", "root_cause_assigned", "2026-03-02T12:00:00Z", actor="cust",
                   root_cause="pb")
    b.add("I", "claim_accepted", "2026-03-02T12:00:00Z", actor="pb",
          target_event_id=blamed.event_id)
    view = b.view("I", "2026-03-03T00:00:00Z")
    assert view["root_cause"] == "pb" and view["excused"] is False
    early = b.view("I", "2026-03-02T11:30:00Z")
    assert early["root_cause"] == "customer" and early["excused"] is True


# --- voided and not-yet-opened incidents ------------------------------------


def test_voided_incident_disappears_and_retracted_void_restores_it() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z", impact="1")
    b.add("I", "outage_ended", "2026-03-02T20:00:00Z")
    void = b.add("I", "voided", "2026-03-02T10:30:00Z", actor="cust", reason="duplicate")
    view = b.view("I", "2026-03-03T00:00:00Z")
    assert view["voided"] is True and view["service_levels"] == {}
    assert list(view) == ["incident_id", "agreement", "evaluated_at", "recorded_position",
                          "exists", "voided", "service", "opened_at", "period",
                          "service_levels"]
    report = b.report()
    assert level(report, "p1-response")["incidents"]["missed"] == []
    assert level(report, "net-availability")["downtime_seconds"] == secs(0)
    b.add("I", "retracted", "2026-03-02T11:00:00Z", actor="cust", target_event_id=void.event_id)
    report = b.report()
    assert level(report, "p1-response")["incidents"]["missed"] == ["I"]
    assert level(report, "net-availability")["downtime_seconds"] == secs(10 * H)


def test_incident_opened_after_t_does_not_exist() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z", impact="1")
    view = b.view("I", "2026-03-02T09:00:00Z")
    assert view["exists"] is False and view["service_levels"] == {}
    report = b.report(at="2026-03-02T09:00:00Z")
    assert level(report, "p1-response")["incidents"]["pending"] == []


# --- section 7: attainment and availability --------------------------------


def test_attainment_counts_met_and_missed_only() -> None:
    b = Book()
    for i, minutes in enumerate((5, 10, 20)):
        b.open(f"I{i}", "2026-03-02T10:00:00Z")
        b.add(f"I{i}", "responded", f"2026-03-02T10:{minutes:02d}:00Z")
    b.open("PEND", "2026-03-31T23:55:00Z")
    report = b.report(at="2026-03-31T23:59:00Z")
    sl = level(report, "p1-response")
    assert (sl["met"], sl["missed"], sl["pending"]) == (2, 1, 1)
    assert sl["attainment"] == "0.666666666667" and sl["achieved"] is False
    assert sl["shares"] == {"pa": "1.000000000000"}


def test_incident_belongs_to_the_period_of_its_opened_at_in_agreement_zone() -> None:
    b = Book(timezone="Europe/London")
    # 2026-03-31T23:30Z is 00:30 BST on 1 April: an April incident.
    b.open("I", "2026-03-31T23:30:00Z")
    assert b.view("I", "2026-04-02T00:00:00Z")["period"] == "2026-04"
    report = b.report(period="2026-04")
    assert report["period_start"] == "2026-03-31T23:00:00Z"
    assert level(report, "p1-response")["incidents"]["missed"] == ["I"]
    assert level(b.report(period="2026-03"), "p1-response")["incidents"]["missed"] == []


def test_outage_from_previous_period_counts_for_its_overlap() -> None:
    b = Book()
    b.open("OLD", "2026-02-28T22:00:00Z", impact="0.5")
    b.add("OLD", "outage_ended", "2026-03-01T02:00:00Z")
    sl = level(b.report(), "net-availability")
    assert sl["downtime_seconds"] == secs(H)  # 2h in March at 0.5
    assert sl["scheduled_seconds"] == secs(31 * 24 * H)
    assert sl["availability"] == "0.998655913978"  # 1 - 3600/2678400


def test_overlapping_outages_highest_weight_owns() -> None:
    b = Book()
    b.open("A", "2026-03-02T10:00:00Z", impact="0.5", custody="pa")
    b.open("B", "2026-03-02T11:00:00Z", impact="0.8", custody="pb")
    b.add("B", "outage_ended", "2026-03-02T12:00:00Z", actor="pb")
    b.add("A", "outage_ended", "2026-03-02T13:00:00Z")
    sl = level(b.report(), "net-availability")
    # A owns 10-11 and 12-13 at 0.5, B owns 11-12 at 0.8
    assert sl["downtime_seconds"] == secs(1800 + 2880 + 1800)
    assert sl["downtime_by_provider_seconds"] == {"pa": secs(3600), "pb": secs(2880)}


@pytest.mark.parametrize(("second_opened", "owner"), [
    ("2026-03-02T09:00:00Z", "pb"),  # B opened earlier (outage started later)
    ("2026-03-02T10:00:00Z", "pa"),  # same opened_at: smaller incident id, A
])
def test_equal_weight_tie_breaks(second_opened: str, owner: str) -> None:
    b = Book()
    b.open("A", "2026-03-02T10:00:00Z", impact="0.5", custody="pa")
    b.open("B", second_opened, custody="pb")
    b.add("B", "outage_started", "2026-03-02T10:00:00Z", actor="pb", impact="0.5")
    for inc in ("A", "B"):
        b.add(inc, "outage_ended", "2026-03-02T11:00:00Z")
    sl = level(b.report(), "net-availability")
    assert sl["downtime_by_provider_seconds"] == {owner: secs(1800)}
    assert sl["shares"] == {owner: "1.000000000000"}


def test_downtime_charged_to_root_cause_provider_else_charged_holder() -> None:
    b = Book()
    b.open("A", "2026-03-02T10:00:00Z", impact="1", custody="pa")
    b.add("A", "handed_off", "2026-03-02T11:00:00Z", to="pb")
    b.add("A", "handoff_rejected", "2026-03-02T11:30:00Z", actor="pb")
    b.add("A", "handed_off", "2026-03-02T12:00:00Z", to="pb")
    b.add("A", "outage_ended", "2026-03-02T13:00:00Z", actor="pb")
    sl = level(b.report(), "net-availability")
    # misrouted 11:00-11:30 goes to the sender pa
    assert sl["downtime_by_provider_seconds"] == {"pa": secs(2 * H), "pb": secs(H)}
    blamed = b.add("A", "root_cause_assigned", "2026-03-02T14:00:00Z", actor="cust",
                   root_cause="pb")
    b.add("A", "claim_accepted", "2026-03-02T14:00:00Z", actor="pb",
          target_event_id=blamed.event_id)
    sl = level(b.report(), "net-availability")
    assert sl["downtime_by_provider_seconds"] == {"pb": secs(3 * H)}
    b.add("A", "root_cause_assigned", "2026-03-02T15:00:00Z", actor="cust",
          root_cause="customer")
    assert level(b.report(), "net-availability")["downtime_seconds"] == secs(0)


def test_outage_open_at_t_runs_until_t() -> None:
    b = Book()
    b.open("A", "2026-03-02T10:00:00Z", impact="0.25")
    sl = level(b.report(at="2026-03-02T14:00:00Z"), "net-availability")
    assert sl["downtime_seconds"] == secs(H)
    assert sl["scheduled_seconds"] == secs((24 + 14) * H)
    assert b.view("A", "2026-03-02T14:00:00Z")["outages"] == [
        {"from": "2026-03-02T10:00:00Z", "to": None, "impact": "0.250000000000"}]


@pytest.mark.parametrize(("notice", "scheduled_at", "excluded"), [
    ("P2D", "2026-03-08T10:00:00Z", True),   # exactly the notice: qualifies
    ("P2D", "2026-03-08T10:00:01Z", False),  # one second short
    (None, "2026-03-10T10:00:00Z", True),    # no notice: 0, booked at the start
])
def test_maintenance_notice(notice: str | None, scheduled_at: str, excluded: bool) -> None:
    b = Book(**({"maintenance_notice": notice} if notice else {}))
    b.window("net", "2026-03-10T10:00:00Z", "2026-03-10T12:00:00Z", scheduled_at)
    b.open("A", "2026-03-10T11:00:00Z", impact="1")
    b.add("A", "outage_ended", "2026-03-10T13:00:00Z")
    sl = level(b.report(), "net-availability")
    month = 31 * 24 * H
    assert sl["scheduled_seconds"] == secs(month - 2 * H if excluded else month)
    assert sl["downtime_seconds"] == secs(H if excluded else 2 * H)
    assert [w["excluded"] for w in sl["maintenance_windows"]] == [excluded]


def test_overlapping_windows_merge_and_stay_with_their_service() -> None:
    b = Book()
    b.window("net", "2026-03-10T10:00:00Z", "2026-03-10T12:00:00Z", "2026-03-01T00:00:00Z")
    b.window("net", "2026-03-10T11:00:00Z", "2026-03-10T14:00:00Z", "2026-03-01T00:00:00Z")
    b.window("desk", "2026-03-11T10:00:00Z", "2026-03-11T12:00:00Z", "2026-03-01T00:00:00Z")
    sl = level(b.report(), "net-availability")
    assert sl["scheduled_seconds"] == secs(31 * 24 * H - 4 * H)
    assert len(sl["maintenance_windows"]) == 2


def test_zero_scheduled_time_gives_null_attainment_counted_achieved() -> None:
    b = Book()
    sl = level(b.report(at="2026-03-01T00:00:00Z"), "net-availability")
    assert sl["scheduled_seconds"] == secs(0)
    assert sl["attainment"] is None and sl["availability"] is None and sl["achieved"] is True


def test_availability_in_business_calendar() -> None:
    levels = [*levels_default(),
              {"id": "desk-availability", "kind": "availability", "service": "desk",
               "calendar": "office", "objective": "0.9", "credit_percent": "1"}]
    b = Book(service_levels=levels)
    # Friday 16:00 to Monday 10:00: office time Fri 16-17 and Mon 09-10.
    b.open("D", "2026-03-06T16:00:00Z", service="desk", priority="P3", impact="0.5")
    b.add("D", "outage_ended", "2026-03-09T10:00:00Z")
    sl = level(b.report(), "desk-availability")
    assert sl["scheduled_seconds"] == secs(22 * 8 * H)  # 22 weekdays in March 2026
    assert sl["downtime_seconds"] == secs(H)


# --- section 8: credits -------------------------------------------------------


def _missed_p1_resolution(b: Book, incident: str, custody: str = "pa") -> None:
    b.open(incident, "2026-03-02T10:00:00Z", custody=custody)
    b.add(incident, "responded", "2026-03-02T10:01:00Z", actor=custody)
    b.add(incident, "resolved", "2026-03-02T20:00:00Z", actor=custody)


def test_credit_without_cap_and_split_lists_every_provider() -> None:
    b = Book()
    _missed_p1_resolution(b, "I")
    report = b.report()
    sl = level(report, "p1-resolution")
    assert sl["credit"] == {"currency": "GBP", "minor_units": 40_000}
    assert sl["credit_split"] == {"pa": 40_000, "pb": 0}
    assert sl["shares"] == {"pa": "1.000000000000"}
    assert level(report, "p1-response")["credit_split"] == {"pa": 0, "pb": 0}
    assert report["credits_total"]["minor_units"] == 40_000
    assert report["credits_by_provider"] == {"pa": 40_000, "pb": 0}


def test_cap_not_applied_when_equal() -> None:
    b = Book(at_risk_percent="6")
    _missed_p1_resolution(b, "I")  # 4% resolution
    b.open("J", "2026-03-03T10:00:00Z")  # response missed: 2%
    b.add("J", "responded", "2026-03-03T11:00:00Z")
    b.add("J", "resolved", "2026-03-03T11:30:00Z")
    report = b.report()
    assert report["credits_uncapped"]["minor_units"] == 60_000
    assert report["credit_cap"]["minor_units"] == 60_000
    assert level(report, "p1-resolution")["credit"]["minor_units"] == 40_000
    assert level(report, "p1-response")["credit"]["minor_units"] == 20_000


def test_cap_split_by_largest_remainder_ties_to_smallest_level_id() -> None:
    levels = levels_default()
    for sl in levels:
        if sl["id"] in ("p1-response", "p1-resolution"):
            sl["credit_percent"] = "3"
    b = Book(at_risk_percent="0.0005", service_levels=levels,
             monthly_charge={"currency": "GBP", "minor_units": 1_000_001})
    _missed_p1_resolution(b, "I")
    b.open("J", "2026-03-03T10:00:00Z")
    b.add("J", "responded", "2026-03-03T11:00:00Z")
    b.add("J", "resolved", "2026-03-03T11:30:00Z")
    report = b.report()
    # credits 30000.03 -> 30000 each; cap 5.000005 -> 5; 2.5 each, and the
    # tie goes to the smaller id: "p1-resolution" < "p1-response" ('o' < 'p').
    assert report["credit_cap"]["minor_units"] == 5
    assert level(report, "p1-resolution")["credit"]["minor_units"] == 3
    assert level(report, "p1-response")["credit"]["minor_units"] == 2
    assert report["credits_total"]["minor_units"] == 5


def test_period_shares_are_unweighted_mean_and_split_by_largest_remainder() -> None:
    b = Book()
    _missed_p1_resolution(b, "I", custody="pa")  # pa 100%
    b.open("J", "2026-03-04T10:00:00Z")
    b.add("J", "responded", "2026-03-04T10:01:00Z")
    b.add("J", "handed_off", "2026-03-04T11:00:00Z", to="pb")
    b.add("J", "resolved", "2026-03-04T15:00:00Z", actor="pb")  # pa 1/5, pb 4/5
    sl = level(b.report(), "p1-resolution")
    # mean: pa (1 + 1/5)/2 = 3/5, pb 2/5; 40000 split 24000/16000
    assert sl["shares"] == {"pa": "0.600000000000", "pb": "0.400000000000"}
    assert sl["credit_split"] == {"pa": 24_000, "pb": 16_000}


def test_half_even_rounding_of_credit() -> None:
    # 2% of 1,250,025 = 25,000.5 -> 25,000 (even)
    b = Book(monthly_charge={"currency": "GBP", "minor_units": 1_250_025})
    b.open("J", "2026-03-03T10:00:00Z")
    b.add("J", "responded", "2026-03-03T11:00:00Z")
    b.add("J", "resolved", "2026-03-03T11:30:00Z")
    assert level(b.report(), "p1-response")["credit"]["minor_units"] == 25_000


# --- section 9: knowledge cut --------------------------------------------------


def test_knowledge_cut_ignores_later_positions() -> None:
    b = Book()
    b.open("I", "2026-03-02T10:00:00Z")
    b.add("I", "resolved", "2026-03-02T11:00:00Z")
    cut = b.position
    late = b.add("I", "responded", "2026-03-02T10:05:00Z")
    assert level(b.report(), "p1-response")["met"] == 1
    report = b.report(position=cut)
    assert level(report, "p1-response")["missed"] == 1
    assert report["recorded_position"] == cut
    assert late.position == cut + 1


def test_calendar_without_working_time_has_no_due_instant() -> None:
    levels = levels_default()
    for sl in levels:
        if sl["calendar"] == "office":
            sl["calendar"] = "never"
    b = Book(service_levels=levels,
             calendars={"never": {"timezone": "UTC", "weekly": []}})
    b.open("I", "2026-03-02T10:00:00Z", priority="P2")
    clock = b.clocks("I", "2026-03-02T12:00:00Z")["p2-response"]
    assert clock.elapsed == 0 and clock.due_at is None and clock.outcome == "pending"
    assert level(b.report(), "p2-response")["pending"] == 1


def test_period_before_the_agreement_is_out_of_range() -> None:
    from ledger.domain.errors import OutOfRange

    with pytest.raises(OutOfRange):
        Book().report(period="2025-12")
    # A month the agreement starts in takes the terms it started with.
    assert Book().report(period="2026-01")["period_start"] == "2026-01-01T00:00:00Z"
