"""The write-side invariant (ledger.domain.validation) for corrections (voids
and retractions, their targets and dependents) and for late events, judged
on the re-sorted timeline."""

from __future__ import annotations

from ledger.domain import events as ev
from ledger.domain.validation import (
    check_incident_timeline,
)
from tests.support.validation_incident import (
    HISTORY,
    opened,
)

# --- corrections ----------------------------------------------------------------


def test_incident_voided() -> None:
    inc = opened()
    void = inc.add(ev.Voided("logged in error"), 10, "cust")
    inc.reject(ev.Responded(), 5, rule="incident_voided")  # even dated before the void
    inc.reject(ev.Voided(), 11, "cust", rule="incident_voided")
    inc.add(ev.Retracted(void.event_id), 12, "cust")  # restores the incident
    inc.add(ev.Responded(), 13)
    inc.add(ev.Voided(), 14, "cust")


def test_retraction_target_rules() -> None:
    inc = opened()
    other = opened(incident_id="INC-2")
    inc.reject(ev.Retracted("nope"), 1, "cust", rule="unknown_target")
    inc.reject(ev.Retracted(other.stored[0].event_id), 1, "cust", rule="unknown_target")
    inc.reject(ev.Retracted(inc.stored[0].event_id), 1, "cust", rule="cannot_retract_opened")
    responded = inc.add(ev.Responded(), 1)
    retraction = inc.add(ev.Retracted(responded.event_id), 2, "pa")
    inc.reject(ev.Retracted(responded.event_id), 3, "pa", rule="already_retracted")
    inc.reject(ev.Retracted(retraction.event_id), 3, "pa", rule="cannot_retract_retraction")


def test_target_has_dependents() -> None:
    inc = opened()
    pause = inc.add(ev.ClockPaused(), 1, "cust")
    inc.add(ev.ClockResumed(), 2, "cust")
    message = inc.reject(ev.Retracted(pause.event_id), 3, "cust", rule="target_has_dependents")
    assert message == (f"retracting clock_paused at position {pause.position} would make "
                       f"clock_resumed at position {pause.position + 1} invalid: "
                       "clock_resumed while not paused")
    handoff = inc.add(ev.HandedOff("pb"), 3)
    rejection = inc.add(ev.HandoffRejected(), 4, "pb")
    inc.reject(ev.Retracted(handoff.event_id), 5, "pa", rule="target_has_dependents")
    inc.add(ev.Retracted(rejection.event_id), 5, "pb")  # removes the misroute, pb holds
    inc.reject(ev.HandedOff("pc"), 6, "pa", rule="not_custody_holder")
    resolved = inc.add(ev.Resolved(), 6)
    inc.add(ev.Closed(), 7, "cust")
    inc.reject(ev.Retracted(resolved.event_id), 8, "pa", rule="target_has_dependents")


def test_retracting_the_first_response_keeps_the_second() -> None:
    inc = opened()
    first = inc.add(ev.Responded(), 1)
    inc.add(ev.Responded(), 2)
    inc.add(ev.Retracted(first.event_id), 3, "pa")


# --- late events: judged on the re-sorted timeline ------------------------------------


def test_late_events_are_accepted_when_the_resorted_timeline_stays_valid() -> None:
    inc = opened()
    inc.add(ev.HandedOff("pb"), 10, "pa")
    inc.add(ev.Resolved(), 30, "pb")
    inc.add(ev.HandedOff("pa"), 20, "pb")  # late: pb held custody at minute 20
    inc.add(ev.ClockPaused(), 12, "cust")  # late pause/resume pair between stored events
    inc.add(ev.ClockResumed(), 15, "cust")
    inc.add(ev.PriorityChanged("P1"), 5, "cust")
    inc.add(ev.Closed(), 40, "cust")
    inc.add(ev.Responded(), 8, "pb")  # dated before closed (and before resolved)
    check_incident_timeline(HISTORY, inc.stored)


def test_late_events_are_rejected_when_they_break_a_stored_event() -> None:
    inc = opened()
    handoff = inc.add(ev.HandedOff("pb"), 10, "pa")
    message = inc.reject(ev.HandedOff("pc"), 5, "pa", rule="not_custody_holder")
    assert message == (f"handed_off dated 2026-10-01T09:05:00Z would make handed_off at "
                       f"position {handoff.position} invalid: handed_off by 'pa', "
                       "custody holder is 'pc'")
    inc.reject(ev.HandedOff("pb"), 11, "pa", rule="not_custody_holder")
    pause = inc.add(ev.ClockPaused(), 20, "cust")
    message = inc.reject(ev.ClockPaused(), 15, "cust", rule="already_paused")
    assert f"clock_paused at position {pause.position} invalid" in message
    responded = inc.add(ev.Responded(), 30, "pb")
    message = inc.reject(ev.Resolved(), 25, "pb", rule="responded_after_resolved")
    assert f"responded at position {responded.position}" in message
    inc.add(ev.Resolved(), 35, "pb")
    inc.add(ev.Closed(), 40, "cust")
    inc.reject(ev.ClockResumed(), 45, "cust", rule="after_closed")
    inc.add(ev.ClockResumed(), 38, "cust")


def test_ties_are_broken_by_position_and_the_candidate_sorts_last() -> None:
    inc = opened()
    inc.add(ev.ClockPaused(), 5, "cust")
    inc.add(ev.ClockResumed(), 5, "cust")  # same instant, arrives later: after the pause
    inc.add(ev.ClockPaused(), 5, "cust")
    inc.reject(ev.ClockPaused(), 5, "cust", rule="already_paused")
