"""Every kind of stored event survives the trip through its proto message
(what ReadLog sends and `sla-ledger events` prints)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.client import convert
from ledger.domain import events as ev
from ledger.domain.agreements import TermsChanges
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import parse_instant
from ledger.domain.terms_parsing import parse_terms

DEMO = json.loads((Path(__file__).resolve().parents[2] / "ledger" / "demo" /
                   "herts-2026-10.json").read_text())


def agreement_events() -> list[ev.LedgerEvent]:
    raw: dict[str, Any] = DEMO["agreements"][0]
    terms = parse_terms(raw)
    payloads: list[ev.Payload] = [
        ev.AgreementRegistered(parse_instant(raw["effective_from"]), terms),
        ev.AgreementAmended(parse_instant("2026-10-15T00:00:00Z"), TermsChanges.complete(terms)),
        # Only what changes (10.18), a removed notice included.
        ev.AgreementAmended(parse_instant("2026-10-20T00:00:00Z"), TermsChanges((
            ("at_risk_percent", Decimal("10")), ("service_levels", terms.service_levels[:1]),
            ("maintenance_notice", None)))),
    ]
    return [ev.LedgerEvent(event_id=f"a{i}", agreement_id=raw["id"], incident_id="",
                           occurred_at=parse_instant("2026-07-01T00:00:00Z"), actor="",
                           payload=p) for i, p in enumerate(payloads)]


def file_events() -> list[ev.LedgerEvent]:
    events = [event_from_dict(raw) for raw in DEMO["events"]]
    return [e if e.agreement_id else ev.LedgerEvent(
        e.event_id, "herts-converged", e.incident_id, e.occurred_at, e.actor, e.payload)
        for e in events]


@pytest.mark.parametrize("event", agreement_events() + file_events(), ids=lambda e: e.type)
def test_event_round_trips_through_proto(event: ev.LedgerEvent) -> None:
    assert convert.event_from_proto(convert.event_to_proto(event), "event") == event
