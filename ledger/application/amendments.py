"""Reading 28's last rule: an amendment dated before events already stored
for its agreement is refused when it would make a stored timeline invalid.

Every incident with an event at or after the amendment's ``effective_from``
is re-validated event by event, in the order the events were stored (each
against the ones before it, as when it arrived), under the amended terms.
Only an event valid under the terms in force now and invalid under the
amended ones counts: rules that changed since an event was stored do not
block an amendment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ledger.application.ports import EventStore
from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory
from ledger.domain.errors import DomainError, TimelineViolation, quote
from ledger.domain.history import history_from_events
from ledger.domain.validation import check_incident_event

#: Sorts the amendment after every stored event of its agreement.
_PENDING = 2**61


def check_stored_timelines(store: EventStore, current: AgreementHistory,
                    stored: Sequence[ev.LedgerEvent], amendment: ev.LedgerEvent,
                    max_skew: int) -> None:
    amended = history_from_events(amendment.agreement_id,
                                  [*stored, replace(amendment, position=_PENDING)])
    if amended is None:
        return
    incidents: dict[str, list[ev.LedgerEvent]] = {}
    for event in store.read_agreement(amendment.agreement_id):
        if event.incident_id:
            incidents.setdefault(event.incident_id, []).append(event)
    for incident_id, events in sorted(incidents.items()):
        if max(e.occurred_at for e in events) < amendment.occurred_at:
            continue  # nothing of it falls under the amended terms
        for index, event in enumerate(events):
            before = events[:index]
            try:
                check_incident_event(amended, before, event, now=event.recorded_at,
                                     max_skew=max_skew)
            except DomainError as exc:
                try:
                    check_incident_event(current, before, event, now=event.recorded_at,
                                         max_skew=max_skew)
                except DomainError:
                    continue  # not valid under today's rules either: not this amendment's doing
                raise TimelineViolation(
                    "amendment_invalidates_timeline",
                    f"the amendment would make the stored timeline of incident {quote(incident_id)} "
                    f"invalid at position {event.position}: {exc}") from None
