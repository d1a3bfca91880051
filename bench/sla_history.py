"""Generated histories for the SLA benchmarks, written straight into an
event store (the ledger's own append path, without per-event validation:
the timelines are valid by construction, and validation is not what these
benchmarks measure).

Incidents open at random through each month of the agreement's calendar;
their events (about ten each: response, handoffs between three providers,
pauses, outages, resolution, closure) are stored interleaved in the order
they happen, chunk by chunk, so each chunk's stragglers arrive late. One
incident in a hundred is never resolved, so every month has running clocks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.adapters.eventstore import EventStore
from ledger.application.ledger_service import LedgerService, content_hash
from ledger.application.ports import StreamWrite
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.agreements import AgreementTerms
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.streams import stream_for
from ledger.domain.terms_parsing import parse_terms

DEMO = Path(__file__).resolve().parents[1] / "ledger" / "demo" / "herts-2026-10.json"
PROVIDERS = ("bt", "hp", "kc")
MINUTE = 60 * 10**6
OPEN_SHARE = 0.01  # incidents never resolved


def bench_terms(agreement_id: str) -> AgreementTerms:
    """The worked scenario's terms, with a third provider."""
    raw: dict[str, Any] = json.loads(DEMO.read_text())["agreements"][0]
    return parse_terms({**raw, "id": agreement_id, "providers": list(PROVIDERS)})


def register(store: EventStore, agreement_id: str, effective_from: str) -> None:
    LedgerService(store, lambda: parse_instant("2027-12-31T00:00:00Z")).register_agreement(
        LOCAL_ADMIN, f"register:{agreement_id}", agreement_id, parse_instant(effective_from),
        bench_terms(agreement_id))


def _incident(rng: random.Random, agreement_id: str, n: int, t: int,
              full: bool) -> list[dict[str, Any]]:
    holder = rng.choice(PROVIDERS)
    service = rng.choice(("converged-network", "desktop"))
    steps: list[dict[str, Any]] = [{
        "type": "opened", "agreement": agreement_id, "service": service,
        "priority": rng.choice(("P1", "P2", "P3")), "custody": holder, "actor": "herts"}]
    times = [t]

    def step(minutes: int, **event: Any) -> None:
        times.append(times[-1] + minutes * MINUTE)
        steps.append(event)

    step(rng.choice((3, 10, 25, 50)), type="responded", actor=holder)
    if full:
        outage = service == "converged-network" and rng.random() < 0.05
        if outage:
            step(1, type="outage_started", impact=rng.choice(("0.5", "1")), actor=holder)
        for _ in range(rng.choice((1, 2, 2, 3))):
            other = rng.choice([p for p in PROVIDERS if p != holder])
            step(rng.choice((20, 60, 120)), type="handed_off", to=other, actor=holder)
            holder = other
        if rng.random() < 0.3:
            step(rng.choice((30, 90)), type="clock_paused", actor="herts")
            step(rng.choice((60, 240)), type="clock_resumed", actor="herts")
        if outage:
            step(rng.choice((30, 120, 400)), type="outage_ended", actor=holder)
    if rng.random() < OPEN_SHARE:
        pass  # still open at month end: its clocks run (and mostly miss)
    else:
        step(rng.choice((30, 120, 300, 900)), type="resolved", actor=holder)
        step(rng.choice((60, 600)), type="closed", actor="herts")
    return [{"event_id": f"{agreement_id}-{n}-{i}", "incident_id": f"{agreement_id}-INC-{n}",
             "occurred_at": format_instant(when), **event}
            for i, (event, when) in enumerate(zip(steps, times, strict=True))]


def generate(store: EventStore, agreement_id: str, start: str, months: int, incidents: int,
             *, full: bool = True, seed: int = 7, chunk: int = 4000,
             batch: int = 1000) -> Iterator[int]:
    """Appends the history; yields the log position after each chunk."""
    rng = random.Random(seed)
    first = parse_instant(start)
    span = months * 30 * 24 * 60
    opened = sorted(rng.randrange(span) for _ in range(incidents))
    for base in range(0, incidents, chunk):
        events = [e for n in range(base, min(base + chunk, incidents))
                  for e in _incident(rng, agreement_id, n, first + opened[n] * MINUTE, full)]
        events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
        versions: dict[str, int] = {}
        for at in range(0, len(events), batch):
            writes = []
            for raw in events[at:at + batch]:
                event = event_from_dict(raw)
                name = f"incident:{event.incident_id}"
                version = versions.get(name, 0)
                versions[name] = version + 1
                # agreement id filled as the ledger does before storing
                event = event if event.agreement_id else _with_agreement(event, agreement_id)
                writes.append(StreamWrite(name, stream_for(name), version, (event,),
                                          (content_hash(event),)))
            store.append(writes, parse_instant("2027-12-31T00:00:00Z"))
        yield store.max_position()


def _with_agreement(event: Any, agreement_id: str) -> Any:
    from dataclasses import replace

    return replace(event, agreement_id=agreement_id)
