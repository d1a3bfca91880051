"""sla-semantics.md sections 5-6, one small hand-made history per rule and per
10.x reading that moves a figure: clocks, custody and accountability, voided
and not-yet-opened incidents (sections 7-9: test_sla_attainment_credits.py).
Expected numbers are worked out by hand in the comments, never read back from
the engine.

Default agreement (the Book, tests.support.sla_book): zone UTC, providers pa
and pb, charge 1,000,000 minor units, 10% at risk, policy custody; "office"
is Mon-Fri 09:00-17:00 UTC. 2026-03-02 is a Monday.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from ledger.domain.instants import parse_instant
from tests.support.sla_book import Book, H, level, secs

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
