"""A tiny hand-made ledger for the SLA rule tests (the Book) and its default
agreement: zone UTC, providers pa and pb, charge 1,000,000 minor units, 10% at
risk, policy custody, services net and desk; "office" is Mon-Fri 09:00-17:00
UTC. Events get positions 1, 2, 3... in the order written."""

from __future__ import annotations

from typing import Any

from ledger.domain.agreements import AgreementHistory, MaintenanceWindow, TermsVersion
from ledger.domain.codec import event_from_dict
from ledger.domain.events import LedgerEvent
from ledger.domain.instants import parse_instant
from ledger.domain.sla import (
    compute_incident_view,
    compute_period_report,
    fold_incident,
    incident_clocks,
)
from ledger.domain.sla.clocks import ClockResult
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.terms_parsing import parse_terms

H = 3600  # seconds


def secs(n: float) -> str:
    return f"{n:.6f}"


def levels_default() -> list[dict[str, Any]]:
    return [
        {"id": "p1-response", "kind": "response", "priority": "P1", "threshold": "PT15M",
         "calendar": "24x7", "objective": "0.9", "credit_percent": "2"},
        {"id": "p1-resolution", "kind": "resolution", "priority": "P1", "threshold": "PT4H",
         "calendar": "24x7", "objective": "0.9", "credit_percent": "4"},
        {"id": "p2-response", "kind": "response", "priority": "P2", "threshold": "PT1H",
         "calendar": "office", "objective": "0.9", "credit_percent": "1"},
        {"id": "p2-resolution", "kind": "resolution", "priority": "P2", "threshold": "PT8H",
         "calendar": "office", "objective": "0.9", "credit_percent": "1"},
        {"id": "net-availability", "kind": "availability", "service": "net",
         "calendar": "24x7", "objective": "0.99", "credit_percent": "5"},
    ]


class Book:
    """A tiny ledger: events get positions 1, 2, 3... in the order written."""

    def __init__(self, **overrides: Any) -> None:
        weekdays = ("MON", "TUE", "WED", "THU", "FRI")
        self.raw_terms: dict[str, Any] = {
            "customer": "cust", "providers": ["pa", "pb"], "timezone": "UTC",
            "monthly_charge": {"currency": "GBP", "minor_units": 1_000_000},
            "at_risk_percent": "10", "policy": "custody", "services": ["net", "desk"],
            "calendars": {"office": {"timezone": "UTC", "weekly": [
                {"day": d, "start": "09:00", "end": "17:00"} for d in weekdays]}},
            "service_levels": levels_default(),
        } | overrides
        self.position = 0
        self.events: dict[str, list[LedgerEvent]] = {}
        self.windows: list[MaintenanceWindow] = []

    def add(self, incident: str, kind: str, at: str, actor: str = "pa",
            **fields: Any) -> LedgerEvent:
        self.position += 1
        raw: dict[str, Any] = {
            "event_id": f"{incident}-{self.position}", "incident_id": incident, "type": kind,
            "occurred_at": at, "actor": actor, "position": self.position, **fields,
        }
        if kind == "opened":
            raw["agreement"] = "agr"
        event = event_from_dict(raw)
        self.events.setdefault(incident, []).append(event)
        return event

    def open(self, incident: str, at: str, *, service: str = "net", priority: str = "P1",
             custody: str = "pa", impact: str | None = None) -> None:
        self.add(incident, "opened", at, actor="cust", service=service, priority=priority,
                 custody=custody)
        if impact is not None:
            self.add(incident, "outage_started", at, actor=custody, impact=impact)

    def window(self, service: str, start: str, end: str, scheduled_at: str) -> None:
        self.position += 1
        self.windows.append(MaintenanceWindow(
            f"w{self.position}", service, parse_instant(start), parse_instant(end),
            parse_instant(scheduled_at), self.position))

    @property
    def history(self) -> AgreementHistory:
        version = TermsVersion(parse_instant("2026-01-01T00:00:00Z"), parse_terms(self.raw_terms))
        return AgreementHistory("agr", (version,), tuple(self.windows))

    def view(self, incident: str, at: str) -> dict[str, Any]:
        return incident_view_dict(compute_incident_view(self.history, self.events[incident], parse_instant(at),
                                     self.position))

    def clocks(self, incident: str, at: str) -> dict[str, ClockResult]:
        t = parse_instant(at)
        facts = fold_incident(self.events[incident], t, self.history)
        terms = self.history.terms_at(facts.opened_at)
        assert terms is not None
        return {c.level_id: c for c in incident_clocks(facts, terms, t)}

    def report(self, at: str = "2026-04-10T00:00:00Z", period: str = "2026-03",
               position: int | None = None) -> dict[str, Any]:
        cut = self.position if position is None else position
        return period_report_dict(compute_period_report(self.history, self.events, period, parse_instant(at),
                                     cut, None))


def level(report: dict[str, Any], level_id: str) -> dict[str, Any]:
    return next(sl for sl in report["service_levels"] if sl["id"] == level_id)
