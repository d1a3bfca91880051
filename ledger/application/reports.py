"""Reports: SLA figures for a period or an incident, at an evaluation instant
and a knowledge cut (spec sections 5-9).

Two ways to one answer. Period reports are answered from the SLA read
models, which are bitemporal: the latest knowledge once they have applied
every event acknowledged before the question (read-your-writes), and a
knowledge cut from the rows as recorded at that position. Replaying the
events stored up to the cut is the reference (the same (request, cut) gives
the same bytes forever) and answers whatever the model cannot. Both go
through the same pure engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ledger.application.ports import EventStore, SlaReadModel
from ledger.application.scoping import visible_agreement_of
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory
from ledger.domain.codec import event_to_dict
from ledger.domain.errors import InvalidArgument, NotFound, OutOfRange
from ledger.domain.history import history_from_events
from ledger.domain.instants import format_instant
from ledger.domain.sla.api import (
    clocks_at_risk,
    compute_clocks_at_risk,
    compute_downtime_timeline,
    compute_incident_view,
    compute_period_report,
    cut_history,
)
from ledger.domain.sla.incident_view import IncidentView, incident_view
from ledger.domain.sla.report import ClockAtRisk, PeriodReport
from ledger.domain.sla.report_json import period_report_dict
from ledger.domain.sla.restatement import report_changes
from ledger.domain.streams import agreement_stream, incident_stream

_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, slots=True)
class Cut:
    position: int | None = None
    recorded_at: int | None = None

    @property
    def latest(self) -> bool:
        return self.position is None and self.recorded_at is None


def _without_ids(report: PeriodReport) -> PeriodReport:
    return replace(report, service_levels=tuple(
        replace(level, incidents=None) for level in report.service_levels))


class ReportService:
    def __init__(self, store: EventStore, clock: Callable[[], int],
                 read_model: SlaReadModel | None = None,
                 verify: Callable[[list[ev.LedgerEvent]], None] | None = None) -> None:
        """Without a read model every report replays. ``verify`` checks events
        a replay read against their leaves (ledger.application.integrity)."""
        self.verify = verify
        self.store = store
        self.clock = clock
        self.read_model = read_model

    def resolve_cut(self, cut: Cut | None) -> tuple[int, Any]:
        """(position, as_recorded_at for the report) of a knowledge cut."""
        last = self.store.max_position()
        if cut is None or cut.latest:
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
        return self.store.position_recorded_by(cut.recorded_at), format_instant(cut.recorded_at)

    def _model(self, cut: Cut | None) -> SlaReadModel | None:
        """The read model, if it can answer this question now."""
        if self.read_model is None or not (cut is None or cut.latest):
            return None
        # Lagging too far: replay rather than answer from stale rows.
        return self.read_model if self.read_model.caught_up() else None

    @staticmethod
    def _visible_to(principal: Principal, agreement_id: str,
                    ) -> Callable[[AgreementHistory | None], AgreementHistory]:
        def check(history: AgreementHistory | None) -> AgreementHistory:
            if history is None or not principal.may_see(history.parties()):
                raise NotFound("agreement", agreement_id)
            return history
        return check

    def _history(self, agreement_id: str, upto: int) -> AgreementHistory | None:
        return history_from_events(agreement_id,
                                   self.store.load_stream(agreement_stream(agreement_id)), upto)

    def _agreement_events(self, principal: Principal, agreement_id: str,
                          upto: int) -> tuple[AgreementHistory, dict[str, list[ev.LedgerEvent]]]:
        events = self.store.read_agreement(agreement_id, upto)
        if self.verify is not None:
            self.verify(events)
        own = [e for e in events if not e.incident_id]
        history = self._visible_to(principal, agreement_id)(history_from_events(agreement_id, own))
        incidents: dict[str, list[ev.LedgerEvent]] = {}
        for event in events:
            if event.incident_id:
                incidents.setdefault(event.incident_id, []).append(event)
        return history, incidents

    def period_report(self, principal: Principal, agreement_id: str, period: str,
                      evaluated_at: int | None, cut: Cut | None,
                      include_incidents: bool = True) -> PeriodReport:
        if not _PERIOD.fullmatch(period or ""):
            raise InvalidArgument("period", f"must be YYYY-MM, got {period!r}")
        when = self.clock() if evaluated_at is None else evaluated_at
        authorize = self._visible_to(principal, agreement_id)
        model = self._model(cut)
        if model is not None:
            report = model.period_report(agreement_id, period, when, keep_ids=include_incidents,
                                         authorize=authorize)
            if report is not None:
                return report
        upto, as_recorded = self.resolve_cut(cut)
        if self.read_model is not None and not (cut is None or cut.latest) \
                and self.read_model.holds(upto):
            report = self.read_model.period_report(
                agreement_id, period, when, keep_ids=include_incidents, authorize=authorize,
                position=upto, as_recorded_at=as_recorded)
            if report is not None:
                return report
        history, incidents = self._agreement_events(principal, agreement_id, upto)
        report = compute_period_report(history, incidents, period, when, upto, as_recorded)
        return report if include_incidents else _without_ids(report)

    def parties(self, principal: Principal, agreement_id: str, upto: int) -> tuple[str, ...]:
        """(customer, *providers) of the agreement's latest terms at `upto`."""
        history = self._visible_to(principal, agreement_id)(self._history(agreement_id, upto))
        return history.current.parties()

    def downtime_timeline(self, principal: Principal, agreement_id: str, period: str,
                          evaluated_at: int | None, cut: Cut | None) -> dict[str, list[dict[str, Any]]]:
        """The slices of downtime each availability level's figures add up to
        (replayed: statements ask it once, at the report's position)."""
        if not _PERIOD.fullmatch(period or ""):
            raise InvalidArgument("period", f"must be YYYY-MM, got {period!r}")
        when = self.clock() if evaluated_at is None else evaluated_at
        upto, _ = self.resolve_cut(cut)
        history, incidents = self._agreement_events(principal, agreement_id, upto)
        return compute_downtime_timeline(history, incidents, period, when, upto)

    def incident_view(self, principal: Principal, incident_id: str, evaluated_at: int | None,
                      cut: Cut | None, agreement_id: str = "") -> IncidentView:
        when = self.clock() if evaluated_at is None else evaluated_at
        agreement_id = self._incident_agreement(principal, incident_id, agreement_id)
        model = self._model(cut)
        if model is not None:
            found = model.incident_facts(incident_id, when, agreement_id)
            if found is None:
                raise NotFound("incident", incident_id)
            position, facts = found
            history = self._history(facts.agreement_id, position)
            if history is None or not principal.may_see(history.parties()):
                raise NotFound("incident", incident_id)
            return incident_view(cut_history(history, position), facts, when, position)
        upto, _ = self.resolve_cut(cut)
        stream = [e for e in self.store.load_stream(incident_stream(agreement_id, incident_id))
                  if e.position <= upto]
        if not stream:
            raise NotFound("incident", incident_id)
        history = self._history(stream[0].agreement_id, upto)
        if history is None or not principal.may_see(history.parties()):
            raise NotFound("incident", incident_id)
        return compute_incident_view(history, stream, when, upto)

    def _incident_agreement(self, principal: Principal, incident_id: str, agreement_id: str) -> str:
        """Reading 28: the agreement given, or the only one the caller may see
        holding the id; whatever the caller cannot see is NOT_FOUND."""
        candidates = {agreement_id} if agreement_id else \
            self.store.incident_agreements([incident_id]).get(incident_id, set())
        head = self.store.max_position()
        return visible_agreement_of(principal, "incident", incident_id, candidates,
                                    lambda a: self._history(a, head))

    def clocks_at_risk(self, principal: Principal, agreement_id: str | None,
                       evaluated_at: int | None) -> list[ClockAtRisk]:
        """Running clocks (pending outcome) ordered by due_at, for live operations."""
        when = self.clock() if evaluated_at is None else evaluated_at
        if agreement_id:
            self._visible_to(principal, agreement_id)(self._history(agreement_id, 2**62))
        model = self._model(None)
        out: list[ClockAtRisk] = []
        if model is not None:
            position, running = model.running(agreement_id or None, when)
            histories: dict[str, AgreementHistory | None] = {}
            for facts in running:
                if facts.agreement_id not in histories:
                    histories[facts.agreement_id] = self._history(facts.agreement_id, position)
                history = histories[facts.agreement_id]
                if history is not None and principal.may_see(history.parties()):
                    out += clocks_at_risk(cut_history(history, position), facts, when)
        else:
            upto = self.store.max_position()
            names = ([agreement_id] if agreement_id else
                     [n.split(":", 1)[1] for n in self.store.stream_names("agreement:")])
            for agreement in names:
                try:
                    history, incidents = self._agreement_events(principal, agreement, upto)
                except NotFound:
                    continue
                for incident_id in sorted(incidents):
                    out += compute_clocks_at_risk(history, incidents[incident_id], when, upto)
        out.sort(key=lambda c: (c.due_at, c.incident_id, c.service_level_id))
        return out

    def restatement(self, principal: Principal, agreement_id: str, period: str,
                    evaluated_at: int | None, from_cut: Cut, to_cut: Cut | None) -> dict[str, Any]:
        """What changed in a period report between two knowledge cuts: the
        events that arrived in between and every figure that moved."""
        if from_cut.latest:
            raise InvalidArgument("from", "a restatement needs the earlier knowledge cut")
        when = self.clock() if evaluated_at is None else evaluated_at
        end = to_cut if to_cut is not None and not to_cut.latest else Cut(position=self.store.max_position())
        # The changes are between the figures as reported: compare the renderings.
        before = period_report_dict(
            self.period_report(principal, agreement_id, period, when, from_cut, False))
        after = period_report_dict(
            self.period_report(principal, agreement_id, period, when, end, False))
        start, stop = before["recorded_position"], after["recorded_position"]
        if start > stop:
            raise InvalidArgument("from", f"the earlier cut ({start}) is after the later one ({stop})")
        between = self.store.read_agreement(agreement_id, stop, after=start)
        if self.verify is not None:
            self.verify(between)
        # Only incidents with events between the cuts can change outcome,
        # unless the terms changed: compare the ids of those alone.
        moved = {e.incident_id for e in between if e.incident_id}
        ids = []
        if self.read_model is not None and all(e.incident_id for e in between):
            ids = [found for found in (
                self.read_model.outcome_ids(agreement_id, period, when, start, moved),
                self.read_model.outcome_ids(agreement_id, period, when, stop, moved))
                if found is not None]
        if len(ids) == 2:
            for report, by_level in zip((before, after), ids, strict=True):
                for level in report["service_levels"]:
                    if level["kind"] in ("response", "resolution"):
                        level["incidents"] = by_level.get(level["id"], {})
        else:
            before = period_report_dict(
                self.period_report(principal, agreement_id, period, when, from_cut))
            after = period_report_dict(
                self.period_report(principal, agreement_id, period, when, end))
        arrived = [event_to_dict(e) for e in between]
        return {
            "agreement": agreement_id, "period": period, "evaluated_at": after["evaluated_at"],
            "from_position": start, "to_position": stop,
            "events": arrived, "changes": report_changes(before, after),
        }
