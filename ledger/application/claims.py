"""What awaits a partner's answer: the claims of section 11 as they stand at
an evaluation instant, for `sla-ledger disputes`, the claims about to be
deemed accepted, and the open-claims metric.

Latest knowledge only (a claim list is a live question): from the SLA read
model when it is caught up, else by replaying the agreement's events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.application.reports import ReportService
from ledger.domain.access import Principal
from ledger.domain.errors import InvalidArgument, NotFound
from ledger.domain.sla.api import cut_history, fold_all
from ledger.domain.sla.claim_list import ListedClaim, by_deemed_instant, by_incident
from ledger.domain.sla.facts import IncidentFacts
from ledger.domain.sla.period import period_of

_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True, slots=True)
class ClaimQuery:
    """Which claims to list. By default those not in effect at T."""

    agreement_id: str | None = None
    period: str | None = None
    # Only claims still awaiting this org's answer.
    awaiting: str | None = None
    event_id: str | None = None
    # Only open claims deemed accepted before T + deemed_within, soonest first.
    deemed_within: int | None = None
    include_in_effect: bool = False


class ClaimService:
    def __init__(self, reports: ReportService) -> None:
        self.reports = reports

    def claims(self, principal: Principal, query: ClaimQuery,
               evaluated_at: int | None) -> list[ListedClaim]:
        if query.deemed_within is not None and query.deemed_within < 0:
            raise InvalidArgument("deemed_within", "must not be negative")
        if query.period is not None and not _PERIOD.fullmatch(query.period):
            raise InvalidArgument("period", f"must be YYYY-MM, got {query.period!r}")
        when = self.reports.clock() if evaluated_at is None else evaluated_at
        out: list[ListedClaim] = []
        for agreement_id in self._agreements(principal, query.agreement_id):
            for facts, zone in self._facts(principal, agreement_id, query.period, when):
                out += _listed(facts, zone, query, when)
        out.sort(key=by_incident if query.deemed_within is None else by_deemed_instant)
        return out

    def _agreements(self, principal: Principal, agreement_id: str | None) -> list[str]:
        reports = self.reports
        if agreement_id:
            if "\x00" in agreement_id:  # never stored; PostgreSQL refuses it in a query
                raise NotFound("agreement", agreement_id)
            reports._visible_to(principal, agreement_id)(reports._history(agreement_id, 2**62))
            return [agreement_id]
        names = reports.store.stream_names("agreement:")
        visible = []
        for name in names:
            history = reports._history(name.split(":", 1)[1], 2**62)
            if history is not None and principal.may_see(history.parties()):
                visible.append(history.agreement_id)
        return visible

    def _facts(self, principal: Principal, agreement_id: str, period: str | None,
               when: int) -> list[tuple[IncidentFacts, str]]:
        reports = self.reports
        model = reports._model(None)
        if model is not None:
            position, facts = model.claim_facts(agreement_id, period, when)
            history = reports._history(agreement_id, position)
        else:
            position = reports.store.max_position()
            history, incidents = reports._agreement_events(principal, agreement_id, position)
            facts = fold_all(cut_history(history, position), incidents, when, position)
        if history is None:
            return []
        out = []
        for f in facts:
            zone = (history.terms_at(f.opened_at) or history.current).timezone
            if period is None or period_of(zone, f.opened_at) == period:
                out.append((f, zone))
        return out


def _listed(facts: IncidentFacts, zone: str, query: ClaimQuery, when: int) -> list[ListedClaim]:
    if not facts.counts:
        return []  # a voided incident has no figures a claim could change
    out = []
    for claim in facts.claims:
        if query.event_id is not None:
            if claim.event_id != query.event_id:
                continue
        elif claim.in_effect and not query.include_in_effect:
            continue
        if query.awaiting is not None and not (
            not claim.in_effect and query.awaiting in claim.awaiting
            and query.awaiting not in claim.disputed_by
        ):
            continue
        deemed = claim.deemed_at
        if query.deemed_within is not None and not (
            claim.state == "open" and deemed is not None and deemed < when + query.deemed_within
        ):
            continue
        out.append(ListedClaim.of(facts.agreement_id, facts.incident_id,
                                  period_of(zone, facts.opened_at), claim))
    return out
