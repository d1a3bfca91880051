"""An incident's timeline: its events sorted by (occurred_at, position), with
corrections applied (spec sections 1, 4 and 10.6-10.8).

`effective_timeline` is the one place that decides which events count; both
the write-side validation and the SLA engine read timelines through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.domain import events as ev

# A not-yet-stored event sorts after every stored one with the same occurred_at.
UNSTORED_POSITION = 2**62


def timeline_key(event: ev.LedgerEvent) -> tuple[int, int]:
    return (event.occurred_at, event.position or UNSTORED_POSITION)


@dataclass(frozen=True, slots=True)
class EffectiveTimeline:
    """The events that count, in timeline order."""

    entries: tuple[ev.LedgerEvent, ...]
    voided: bool
    retracted_ids: frozenset[str]
    # The unretracted voids, whatever their date: whether each one is in
    # effect is for the claim rules to say (spec 11.6).
    voids: tuple[ev.LedgerEvent, ...] = ()


def effective_timeline(
    stored: Iterable[ev.LedgerEvent], evaluated_at: int | None = None
) -> EffectiveTimeline:
    """Apply retractions and voids (whatever their date: they correct the
    record), then keep the events with occurred_at <= evaluated_at.

    A retraction of a retraction is refused on write, so one pass suffices;
    a retracted void restores the incident.
    """
    events = sorted(stored, key=timeline_key)
    retracted = frozenset(
        e.payload.target_event_id for e in events if isinstance(e.payload, ev.Retracted)
    )
    voids = tuple(
        e for e in events if isinstance(e.payload, ev.Voided) and e.event_id not in retracted
    )
    entries = tuple(
        e
        for e in events
        if e.event_id not in retracted
        and not isinstance(e.payload, ev.Retracted | ev.Voided)
        and (evaluated_at is None or e.occurred_at <= evaluated_at)
    )
    return EffectiveTimeline(
        entries=entries, voided=bool(voids), retracted_ids=retracted, voids=voids
    )


def opened_event(stored: Sequence[ev.LedgerEvent]) -> ev.LedgerEvent | None:
    for event in stored:
        if isinstance(event.payload, ev.Opened):
            return event
    return None
