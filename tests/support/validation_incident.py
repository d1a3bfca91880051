"""One incident whose events are stored only through the write-side validator
(ledger.domain.validation), on a small agreement: customer cust, providers
pa, pb and pc, services net and desk, in force from 2026-09-01; events are
placed in minutes after T0 (2026-10-01 09:00 UTC) and checked at NOW, 30 days
later, with 5 minutes of allowed clock skew."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import pytest

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, AgreementTerms, Money, TermsVersion
from ledger.domain.errors import TimelineViolation
from ledger.domain.instants import MICROS_PER_DAY, MICROS_PER_MINUTE, parse_instant
from ledger.domain.validation import (
    RULE_IDS,
    check_incident_event,
)

MIN, DAY = MICROS_PER_MINUTE, MICROS_PER_DAY
EFFECTIVE = parse_instant("2026-09-01T00:00:00Z")
T0 = parse_instant("2026-10-01T09:00:00Z")
NOW = T0 + 30 * DAY
SKEW = 5 * MIN
TERMS = AgreementTerms(
    customer="cust", providers=("pa", "pb", "pc"), timezone="UTC",
    monthly_charge=Money("GBP", 100_00), at_risk_percent=Decimal(10), policy="custody",
    services=("net", "desk"), calendars=(), service_levels=(),
)
HISTORY = AgreementHistory("agr", (TermsVersion(EFFECTIVE, TERMS),))


class Incident:
    """One incident's stored events, appended only through the validator."""

    def __init__(self, incident_id: str = "INC-1", history: AgreementHistory = HISTORY) -> None:
        self.incident_id = incident_id
        self.history = history
        self.stored: list[ev.LedgerEvent] = []
        self.positions = itertools.count(1)
        self.ids = itertools.count(1)

    def make(self, payload: ev.Payload, minute: float, actor: str, **kw: str) -> ev.LedgerEvent:
        return ev.LedgerEvent(
            event_id=kw.get("event_id", f"{self.incident_id}-e{next(self.ids)}"),
            agreement_id=kw.get("agreement", "agr" if isinstance(payload, ev.Opened) else ""),
            incident_id=self.incident_id, occurred_at=T0 + int(minute * MIN), actor=actor,
            payload=payload,
        )

    def check(self, event: ev.LedgerEvent, *, now: int = NOW) -> None:
        check_incident_event(self.history, self.stored, event, now=now, max_skew=SKEW)

    def add(self, payload: ev.Payload, minute: float, actor: str = "pa", **kw: str) -> ev.LedgerEvent:
        event = self.make(payload, minute, actor, **kw)
        self.check(event)
        stored = replace(event, position=next(self.positions))
        self.stored.append(stored)
        return stored

    def reject(self, payload: ev.Payload, minute: float, actor: str = "pa", *, rule: str,
               **kw: str) -> str:
        with pytest.raises(TimelineViolation) as info:
            self.check(self.make(payload, minute, actor, **kw))
        assert info.value.rule == rule, info.value.message
        assert rule in RULE_IDS
        return info.value.message


def opened(custody: str = "pa", incident_id: str = "INC-1") -> Incident:
    incident = Incident(incident_id)
    incident.add(ev.Opened(service="net", priority="P2", custody=custody), 0, "cust")
    return incident


def resolved_and_closed() -> Incident:
    inc = opened()
    inc.add(ev.Resolved(), 10)
    inc.add(ev.Closed(), 20, "cust")
    return inc
