"""The write-side invariant (ledger.domain.validation) over random event
sequences: whatever it accepts forms a valid timeline, and the re-sorted
timeline does not depend on the order events arrive in."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain import events as ev
from ledger.domain.claims import Authority, void_in_effect
from ledger.domain.errors import NotFound, TimelineViolation
from ledger.domain.timeline import effective_timeline, timeline_key
from ledger.domain.validation import (
    check_incident_timeline,
)
from tests.support.validation_incident import HISTORY, NOW, TERMS, Incident, opened

# --- properties ---------------------------------------------------------------------

ACTORS = ("cust", "pa", "pb", "pc", "cust", "pa", "pb", "pc", "stranger")
TARGETS = ("pa", "pb", "pc", "cust")
CAUSES = ("pa", "pb", "customer", "third_party", "cust")
# Weighted so that incidents live long enough to meet every rule: a standing
# void or a close ends most scripts, so those are rare.
KINDS = (
    *("responded", "handed_off", "handed_off", "handoff_rejected", "clock_paused") * 6,
    *("clock_resumed", "outage_started", "outage_ended", "resolved", "retracted") * 6,
    *("reopened", "priority_changed", "root_cause_assigned", "closed") * 3,
    "voided", "opened",
)
steps = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 15), st.sampled_from(ACTORS),
              st.integers(0, 1000)),
    min_size=10, max_size=60,
)


def _payload(kind: str, aux: int, earlier: list[str]) -> ev.Payload:  # noqa: PLR0911  one case per event type
    if kind == "opened":
        return ev.Opened("net", "P2", TARGETS[aux % 3])
    if kind == "handed_off":
        return ev.HandedOff(TARGETS[aux % 4])
    if kind == "priority_changed":
        return ev.PriorityChanged(f"P{aux % 4 + 1}")
    if kind == "resolved":
        return ev.Resolved(root_cause=None if aux % 2 else CAUSES[aux % 5])
    if kind == "root_cause_assigned":
        return ev.RootCauseAssigned(CAUSES[aux % 5])
    if kind == "retracted":
        # Mostly recent targets; "nope" names no event at all.
        return ev.Retracted(earlier[-1 - aux % len(earlier)] if aux % 9 else "nope")
    return ev.PAYLOAD_TYPES[kind]()  # type: ignore[call-arg]


def _accepts_fully(events: list[ev.LedgerEvent]) -> bool:
    try:
        check_incident_timeline(HISTORY, events)
    except TimelineViolation:
        return False
    return True


def _run(inc: Incident, script: list[tuple[str, int, str, int]]) -> None:
    """Append a random script; after every attempt, the incremental verdict
    must equal a fresh full validation of the would-be stored set."""
    for kind, minute, actor, aux in script:
        earlier = [e.event_id for e in inc.stored]
        event = inc.make(_payload(kind, aux, earlier), minute, actor)
        candidate = replace(event, position=len(inc.stored) + 1)
        try:
            inc.check(event)
        except (TimelineViolation, NotFound):
            assert not _accepts_fully([*inc.stored, candidate]), (kind, minute, actor)
            continue
        assert _accepts_fully([*inc.stored, candidate]), (kind, minute, actor)
        inc.stored.append(candidate)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, opened_at=st.integers(0, 3), data=st.data())
def test_accepted_events_always_form_a_valid_timeline(
    script: list[tuple[str, int, str, int]], opened_at: int, data: st.DataObject
) -> None:
    inc = Incident()
    _run(inc, [("opened", opened_at, "cust", 0), *script])
    accepted = inc.stored

    # 1. Late arrivals never produce anything that in-order arrival could not:
    # the effective timeline, appended afresh in timeline order, is accepted
    # event by event (validity is prefix-closed and judged on dates only).
    # A provider's void awaits the customer, who never answers here: it is
    # an ordinary event (11.6); only a void in effect must go last.
    effective = effective_timeline(accepted)
    standing = void_in_effect(effective, Authority.of(TERMS), NOW)
    pending_voids = [v for v in effective.voids if v is not standing]
    in_order = Incident()
    for event in sorted([*effective.entries, *pending_voids], key=timeline_key):
        in_order.check(replace(event, position=0))
        in_order.stored.append(replace(event, position=len(in_order.stored) + 1))
    if standing is not None:  # the standing void goes last, as it must
        in_order.check(replace(standing, position=0))

    # 2. Any other arrival order of the accepted events is accepted by a fresh
    # full validation, provided it keeps what arrival order means: opened
    # first, a retraction after its target, nothing between a void and its
    # retraction (a standing void last), and events with the same occurred_at
    # in their original order (positions break those ties).
    order = _random_arrival_order(accepted, data)
    renumbered = [replace(e, position=i + 1) for i, e in enumerate(order)]
    assert [e.event_id for e in sorted(renumbered, key=timeline_key)] == [
        e.event_id for e in sorted(accepted, key=timeline_key)]
    check_incident_timeline(HISTORY, renumbered)


def _random_arrival_order(events: list[ev.LedgerEvent], data: st.DataObject) -> list[ev.LedgerEvent]:  # noqa: C901  one pass over the ordering constraints between events (opened first, retractions after their targets)
    by_id = {e.event_id: e for e in events}
    retraction_of: dict[str, ev.LedgerEvent] = {}
    needs: dict[str, set[str]] = {}
    for event in events:
        preds = {e.event_id for e in events if e.position < event.position
                 and (isinstance(e.payload, ev.Opened) or e.occurred_at == event.occurred_at)}
        if isinstance(event.payload, ev.Retracted):
            preds.add(event.payload.target_event_id)
            retraction_of[event.payload.target_event_id] = event
        needs[event.event_id] = preds
    for event in events:  # a standing void (the customer's: 11.2) arrives last
        if (isinstance(event.payload, ev.Voided) and event.event_id not in retraction_of
                and event.actor == TERMS.customer):
            needs[event.event_id] = {e.event_id for e in events} - {event.event_id}
    void_retractions = {r.event_id for target, r in retraction_of.items()
                        if isinstance(by_id[target].payload, ev.Voided)}
    order: list[ev.LedgerEvent] = []
    placed: set[str] = set()
    pending = [e.event_id for e in events]
    while pending:
        ready = []
        for event_id in pending:
            block = [event_id]
            if isinstance(by_id[event_id].payload, ev.Voided) and event_id in retraction_of:
                block.append(retraction_of[event_id].event_id)  # void and its retraction glued
            elif event_id in void_retractions:
                continue  # placed only together with its void
            inside = set(block)
            if all(needs[b] <= placed | inside for b in block):
                ready.append(block)
        block = data.draw(st.sampled_from(ready))
        for event_id in block:
            order.append(by_id[event_id])
            placed.add(event_id)
            pending.remove(event_id)
    return order


def test_the_literal_permutation_invariant_fails_on_ties() -> None:
    """Why property 2 keeps same-instant events in order: positions break
    ties, so swapping the arrival of a pause and a resume dated at the same
    instant swaps them in the timeline too."""
    inc = opened()
    inc.add(ev.ClockPaused(), 5, "cust")
    inc.add(ev.ClockResumed(), 5, "cust")
    check_incident_timeline(HISTORY, inc.stored)
    opened_event, pause, resume = inc.stored
    swapped = [opened_event, replace(resume, position=2), replace(pause, position=3)]
    with pytest.raises(TimelineViolation) as info:
        check_incident_timeline(HISTORY, swapped)
    assert info.value.rule == "not_paused"
