"""sla-semantics.md sections 7-9, one small hand-made history per rule and per
10.x reading that moves a figure: attainment and availability, credits, the
knowledge cut. Expected numbers are worked out by hand in the comments, never
read back from the engine (the Book and its default agreement:
tests.support.sla_book). 2026-03-02 is a Monday.
"""

from __future__ import annotations

import pytest

from tests.support.sla_book import Book, H, level, levels_default, secs

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
