"""Listing incidents a page at a time (IncidentService.ListIncidents).

From the SLA read model when it holds every acknowledged event: one indexed
query over `sla_incident` per page, whatever the number of incidents. From
the incident streams otherwise (no read model, or it lags too far), which
reads every stream name of the agreement first.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.application.incidents import IncidentSummary, summarise
from ledger.application.ledger_service import LedgerService
from ledger.application.ports import SlaReadModel
from ledger.domain.access import Principal
from ledger.domain.sla.facts import IncidentFacts


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    agreement_id: str | None = None
    status: str | None = None  # open, resolved, closed, voided
    custody: str = ""
    opened_from: int | None = None
    opened_to: int | None = None  # exclusive
    after: str = ""  # where the previous page ended (a cursor: incident id, agreement)
    size: int = 100

    def keep(self, summary: IncidentSummary) -> bool:
        return ((self.status is None or summary.status == self.status)
                and (self.opened_from is None or summary.opened_at >= self.opened_from)
                and (self.opened_to is None or summary.opened_at < self.opened_to)
                and (not self.custody or summary.custody == self.custody))


@dataclass(frozen=True, slots=True)
class IncidentPage:
    incidents: list[IncidentSummary]
    next_after: str | None  # None: this was the last page


def summary_from_facts(facts: IncidentFacts, last_position: int) -> IncidentSummary:
    """The same summary `summarise` makes from the events, from folded facts."""
    return IncidentSummary(
        incident_id=facts.incident_id, agreement_id=facts.agreement_id, service=facts.service,
        priority=facts.priority, status="voided" if facts.voided else facts.status,
        opened_at=facts.opened_at, custody=facts.holders[-1].org if facts.holders else "",
        paused=facts.paused_at_end(), root_cause=facts.root_cause or "",
        last_position=last_position,
    )


class IncidentListing:
    def __init__(self, service: LedgerService, model: SlaReadModel | None = None) -> None:
        self.service = service
        self.model = model

    def page(self, principal: Principal, query: IncidentQuery) -> IncidentPage:
        if query.agreement_id:
            self.service.visible_agreement(principal, query.agreement_id)  # NotFound otherwise
            agreements: list[str] | None = [query.agreement_id]
        elif principal.reads_everything:
            agreements = None
        else:
            agreements = self.service.agreement_ids(principal)
        if self.model is not None and self.model.caught_up():
            return self._from_model(self.model, agreements, query)
        return self._from_streams(principal, query)

    @staticmethod
    def _from_model(model: SlaReadModel, agreements: list[str] | None,
                    query: IncidentQuery) -> IncidentPage:
        # Pages run in (incident id, agreement) order: ids are scoped by
        # agreement (reading 28), so one id may stand in several.
        found: list[IncidentSummary] = []
        after, chunk = query.after, max(query.size * 2, 100)
        while True:
            rows = model.incident_rows(agreements, after, query.opened_from, query.opened_to,
                                       chunk)
            for index, (facts, last_position) in enumerate(rows):
                after = cursor(facts.incident_id, facts.agreement_id)
                summary = summary_from_facts(facts, last_position)
                if query.keep(summary):
                    found.append(summary)
                    if len(found) == query.size:
                        more = index + 1 < len(rows) or len(rows) == chunk
                        return IncidentPage(found, after if more else None)
            if len(rows) < chunk:
                return IncidentPage(found, None)

    def _from_streams(self, principal: Principal, query: IncidentQuery) -> IncidentPage:
        agreements = [query.agreement_id] if query.agreement_id else \
            self.service.agreement_ids(principal)
        start = after_key(query.after)
        keys = sorted(key for agreement_id in agreements
                      for name in self.service.store.stream_names("incident:", agreement_id)
                      if (key := (name.split(":", 1)[1], agreement_id)) > start)
        found: list[IncidentSummary] = []
        for incident_id, agreement_id in keys:
            events = self.service.incident_events(principal, incident_id, agreement_id)
            summary = summarise(events, self.service.agreement(agreement_id))
            if query.keep(summary):
                found.append(summary)
                if len(found) == query.size:
                    more = (incident_id, agreement_id) != keys[-1]
                    return IncidentPage(found, cursor(incident_id, agreement_id) if more else None)
        return IncidentPage(found, None)


#: Ids cannot hold it (terms_parsing._ID), so a cursor splits unambiguously.
_SEPARATOR = "\x1f"


def cursor(incident_id: str, agreement_id: str) -> str:
    """Where a page ended: (incident id, agreement)."""
    return f"{incident_id}{_SEPARATOR}{agreement_id}"


def after_key(after: str) -> tuple[str, str]:
    """A cursor back as (incident id, agreement); a bare id (an older token)
    resumes at that id's first agreement."""
    incident_id, _, agreement_id = after.partition(_SEPARATOR)
    return incident_id, agreement_id
