"""Reports: SLA figures for a period or an incident, at an evaluation instant
and a knowledge cut (spec sections 5-9).

A report only ever reads events stored up to its knowledge cut, so the same
(request, cut) gives the same bytes forever.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.adapters.eventstore import EventStore, incident_stream
from ledger.application.agreements import history_from_events
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory
from ledger.domain.errors import InvalidArgument, NotFound, OutOfRange
from ledger.domain.sla.api import compute_incident_view, compute_period_report

_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, slots=True)
class Cut:
    position: int | None = None
    recorded_at: int | None = None


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class ReportService:
    def __init__(self, store: EventStore, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    def resolve_cut(self, cut: Cut | None) -> tuple[int, Any]:
        """(position, as_recorded_at for the report) of a knowledge cut."""
        last = self.store.max_position()
        if cut is None or (cut.position is None and cut.recorded_at is None):
            return last, None
        if cut.position is not None:
            if cut.position < 0:
                raise InvalidArgument("as_recorded_at.position", "must not be negative")
            if cut.position > last:
                raise OutOfRange(f"knowledge cut {cut.position} is beyond the end of the log ({last})")
            return cut.position, cut.position
        assert cut.recorded_at is not None
        if cut.recorded_at > self.clock():
            raise OutOfRange("knowledge cut instant is in the future of the ledger's clock")
        from ledger.domain.instants import format_instant

        return self.store.position_recorded_by(cut.recorded_at), format_instant(cut.recorded_at)

    def _agreement_events(self, principal: Principal, agreement_id: str,
                          upto: int) -> tuple[AgreementHistory, dict[str, list[ev.LedgerEvent]]]:
        events = self.store.read_agreement(agreement_id, upto)
        own = [e for e in events if not e.incident_id]
        history = history_from_events(agreement_id, own)
        if history is None or not principal.may_see(history.parties()):
            raise NotFound("agreement", agreement_id)
        incidents: dict[str, list[ev.LedgerEvent]] = {}
        for event in events:
            if event.incident_id:
                incidents.setdefault(event.incident_id, []).append(event)
        return history, incidents

    def period_report(self, principal: Principal, agreement_id: str, period: str,
                      evaluated_at: int | None, cut: Cut | None) -> dict[str, Any]:
        if not _PERIOD.fullmatch(period or ""):
            raise InvalidArgument("period", f"must be YYYY-MM, got {period!r}")
        upto, as_recorded = self.resolve_cut(cut)
        history, incidents = self._agreement_events(principal, agreement_id, upto)
        when = self.clock() if evaluated_at is None else evaluated_at
        return compute_period_report(history, incidents, period, when, upto, as_recorded)

    def incident_view(self, principal: Principal, incident_id: str, evaluated_at: int | None,
                      cut: Cut | None) -> dict[str, Any]:
        upto, _ = self.resolve_cut(cut)
        stream = [e for e in self._incident_stream(incident_id) if e.position <= upto]
        if not stream:
            raise NotFound("incident", incident_id)
        agreement_id = stream[0].agreement_id
        own = [e for e in self.store.read_agreement(agreement_id, upto) if not e.incident_id]
        history = history_from_events(agreement_id, own)
        if history is None or not principal.may_see(history.parties()):
            raise NotFound("incident", incident_id)
        when = self.clock() if evaluated_at is None else evaluated_at
        return compute_incident_view(history, stream, when, upto)

    def clocks_at_risk(self, principal: Principal, agreement_id: str | None,
                       evaluated_at: int | None) -> list[dict[str, Any]]:
        """Running clocks (pending outcome) ordered by due_at, for live operations."""
        when = self.clock() if evaluated_at is None else evaluated_at
        upto = self.store.max_position()
        if agreement_id:
            agreements = [agreement_id]
        else:
            agreements = [n.split(":", 1)[1] for n in self.store.stream_names("agreement:")]
        out: list[dict[str, Any]] = []
        for agreement in agreements:
            try:
                history, incidents = self._agreement_events(principal, agreement, upto)
            except NotFound:
                if agreement_id:
                    raise
                continue
            for incident_id in sorted(incidents):
                view = compute_incident_view(history, incidents[incident_id], when, upto)
                for level_id, clock in (view.get("service_levels") or {}).items():
                    if clock.get("outcome") == "pending" and clock.get("due_at"):
                        custody = (view.get("custody") or [{}])[-1].get("org", "")
                        out.append({"incident_id": incident_id, "agreement_id": agreement,
                                    "service_level_id": level_id, "due_at": clock["due_at"],
                                    "custody": custody, "elapsed_seconds": clock["elapsed_seconds"],
                                    "threshold_seconds": clock["threshold_seconds"]})
        out.sort(key=lambda c: (c["due_at"], c["incident_id"], c["service_level_id"]))
        return out

    def _incident_stream(self, incident_id: str) -> list[ev.LedgerEvent]:
        return self.store.load_stream(incident_stream(incident_id))
