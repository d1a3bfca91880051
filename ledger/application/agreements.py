"""Agreement histories from their streams."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.adapters.eventstore import EventStore, agreement_stream
from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, MaintenanceWindow, TermsVersion


def history_from_events(agreement_id: str, events: Sequence[ev.LedgerEvent]) -> AgreementHistory | None:
    """Fold an agreement stream (in position order) into its history."""
    versions: list[TermsVersion] = []
    windows: list[MaintenanceWindow] = []
    registered: ev.AgreementRegistered | None = None
    for event in events:
        payload = event.payload
        if isinstance(payload, ev.AgreementRegistered):
            registered = payload
            versions.append(
                TermsVersion(payload.effective_from, payload.terms, event.event_id, event.position)
            )
        elif isinstance(payload, ev.AgreementAmended) and registered is not None:
            # The history applies the changes, in effective_from order.
            versions.append(TermsVersion(payload.effective_from, registered.terms,
                                         event.event_id, event.position, payload.changes))
        elif isinstance(payload, ev.MaintenanceScheduled):
            windows.append(
                MaintenanceWindow(event.event_id, payload.service, payload.start, payload.end,
                                  event.occurred_at, event.position)
            )
    if not versions:
        return None
    return AgreementHistory(agreement_id, tuple(versions), tuple(windows))


def load_history(store: EventStore, agreement_id: str, upto: int) -> AgreementHistory | None:
    """The agreement as its own stream knows it at ledger position `upto`."""
    events = [e for e in store.load_stream(agreement_stream(agreement_id)) if e.position <= upto]
    return history_from_events(agreement_id, events)
