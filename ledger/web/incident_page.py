"""An incident's stored events as the console lists them: in occurred_at
order (the timeline the rules read), each marked retracted or late."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.domain import events as ev
from ledger.domain.codec import event_to_dict
from ledger.domain.timeline import effective_timeline, timeline_key

_SHOWN_APART = {"event_id", "incident_id", "type", "occurred_at", "actor", "agreement", "position",
                "recorded_at", "submitted_by"}


def incident_timeline(events: Sequence[ev.LedgerEvent]) -> list[dict[str, Any]]:
    """Late: stored after an event that happened later than it did, so it
    arrived out of order and moved figures already shown."""
    retracted = effective_timeline(events).retracted_ids
    ordered = sorted(events, key=timeline_key)
    out: list[dict[str, Any]] = []
    for event in ordered:
        raw = event_to_dict(event)
        overtaken_by = sorted(
            o.position for o in events
            if o.occurred_at > event.occurred_at and o.position < event.position)
        out.append({
            "event_id": event.event_id, "type": event.type, "actor": event.actor,
            "occurred_at": raw["occurred_at"], "recorded_at": raw["recorded_at"],
            "position": event.position, "submitted_by": event.submitted_by,
            "retracted": event.event_id in retracted,
            "late": bool(overtaken_by), "overtaken_by": overtaken_by,
            "details": {k: v for k, v in raw.items() if k not in _SHOWN_APART},
        })
    return out
