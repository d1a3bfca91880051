"""Random event histories for the worked scenario's agreement, in the order a
ledger might receive them: interleaved incidents, events arriving late
(recorded after events that happened later), retractions and voids.

Events are proposals: the ledger refuses those that would break an
incident's timeline, which is part of what the tests exercise.
"""

from __future__ import annotations

import random
from typing import Any

from ledger.domain.instants import format_instant, parse_instant

MINUTE = 60 * 10**6
START = parse_instant("2026-09-28T08:00:00Z")
SERVICES = ("converged-network", "desktop")
PROVIDERS = ("bt", "hp")


def incident_events(rng: random.Random, n: int) -> list[dict[str, Any]]:  # noqa: C901, PLR0912  a random walk over the incident's states, one branch per allowed step
    """One incident's plausible timeline, each event as a scenario dict."""
    incident = f"RND-{n:04d}"
    t = START + rng.randrange(0, 40 * 24 * 60) * MINUTE
    holder = rng.choice(PROVIDERS)
    events: list[dict[str, Any]] = [{
        "type": "opened", "agreement": "herts-converged", "service": rng.choice(SERVICES),
        "priority": rng.choice(["P1", "P2", "P3"]), "custody": holder, "actor": "herts"}]
    times = [t]
    resolved = outage = paused = False
    for _ in range(rng.randrange(1, 10)):
        t += rng.choice([1, 7, 25, 90, 300, 1000]) * MINUTE
        other = "bt" if holder == "hp" else "hp"
        kind = rng.choice(["responded", "handed_off", "resolved", "outage", "pause",
                           "priority_changed", "root_cause_assigned", "handoff_rejected"])
        if kind == "handed_off":
            event = {"type": kind, "to": other, "actor": holder}
            holder = other
        elif kind == "handoff_rejected":
            event = {"type": kind, "actor": holder}
        elif kind == "resolved":
            kind = "reopened" if resolved else "resolved"
            event = {"type": kind, "actor": "herts" if resolved else holder}
            if not resolved and rng.random() < 0.3:
                event["root_cause"] = rng.choice(["bt", "hp", "customer", "third_party"])
            resolved = not resolved
        elif kind == "outage":
            event = ({"type": "outage_ended", "actor": holder} if outage else
                     {"type": "outage_started", "impact": rng.choice(["0.5", "1"]), "actor": holder})
            outage = not outage
        elif kind == "pause":
            event = {"type": "clock_resumed" if paused else "clock_paused", "actor": "herts"}
            paused = not paused
        elif kind == "priority_changed":
            # A provider's lowering is a claim awaiting the council (11.2).
            event = {"type": kind, "priority": rng.choice(["P1", "P2", "P3"]),
                     "actor": rng.choice(["herts", holder])}
        elif kind == "root_cause_assigned":
            event = {"type": kind, "root_cause": rng.choice(["bt", "hp", "customer"]),
                     "actor": "herts"}
        else:
            event = {"type": kind, "actor": holder}
        events.append(event)
        times.append(t)
    out = []
    for index, (event, when) in enumerate(zip(events, times, strict=True)):
        out.append({"event_id": f"{incident}-{index}", "incident_id": incident,
                    "occurred_at": format_instant(when), **event})
    if rng.random() < 0.15:
        target = rng.choice(out[1:]) if len(out) > 1 else None
        if target is not None:
            out.append({"event_id": f"{incident}-retract", "incident_id": incident,
                        "type": "retracted", "target_event_id": target["event_id"],
                        "occurred_at": format_instant(times[-1] + 30 * MINUTE),
                        # Corrections are one's own (11.1): mostly by the author.
                        "actor": target["actor"] if rng.random() < 0.8 else "herts"})
    if rng.random() < 0.07:
        out.append({"event_id": f"{incident}-void", "incident_id": incident, "type": "voided",
                    "occurred_at": format_instant(times[-1] + 60 * MINUTE),
                    "actor": rng.choice(["herts", "bt"])})
    out += _answers(rng, out)
    return out


def _answers(rng: random.Random, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers to what may be claims (sla-semantics 11.3), mostly by the org
    a claim awaits, some after the agreement's ten-day dispute window."""
    out: list[dict[str, Any]] = []
    for event in events:
        cause = event.get("root_cause")
        if cause is None and event["type"] not in ("priority_changed", "voided"):
            continue
        if rng.random() < 0.5:
            continue
        awaited = cause if cause in PROVIDERS else "herts"
        kind = rng.choice(["claim_accepted", "claim_disputed"])
        delay = rng.choice([5, 600, 20_000]) * MINUTE  # 20,000 min: past the window
        answer = {"event_id": f"{event['event_id']}-{kind}", "incident_id": event["incident_id"],
                  "type": kind, "target_event_id": event["event_id"],
                  "occurred_at": format_instant(parse_instant(event["occurred_at"]) + delay),
                  "actor": awaited if rng.random() < 0.85 else rng.choice(["bt", "hp", "herts"])}
        if kind == "claim_disputed":
            answer["reason"] = "not ours"
        out.append(answer)
    return out


def random_history(seed: int, incidents: int) -> list[list[dict[str, Any]]]:
    """Batches of events in arrival order: mostly by occurred_at, about one
    event in eight held back and delivered late."""
    rng = random.Random(seed)
    events = [e for n in range(incidents) for e in incident_events(rng, n)]
    events.sort(key=lambda e: parse_instant(e["occurred_at"]))
    on_time: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    for event in events:
        (late if event["type"] != "opened" and rng.random() < 0.12 else on_time).append(event)
    for event in late:
        on_time.insert(rng.randrange(on_time.index(_opened_of(on_time, event)) + 1,
                                     len(on_time) + 1), event)
    batches: list[list[dict[str, Any]]] = []
    while on_time:
        size = rng.choice([1, 1, 2, 3, 8])
        batches.append(on_time[:size])
        on_time = on_time[size:]
    return batches


def _opened_of(events: list[dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in events if e["type"] == "opened"
                and e["incident_id"] == event["incident_id"])
