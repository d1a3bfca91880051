"""An agreement's history (terms versions, maintenance windows) folded from
the events of its own stream."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, MaintenanceWindow, TermsVersion


def history_from_events(agreement_id: str, events: Sequence[ev.LedgerEvent],
                        upto: int | None = None) -> AgreementHistory | None:
    """Fold an agreement stream (in position order) into its history; with
    `upto`, as the stream stood at that ledger position."""
    versions: list[TermsVersion] = []
    windows: list[MaintenanceWindow] = []
    registered: ev.AgreementRegistered | None = None
    for event in events:
        if upto is not None and event.position > upto:
            continue
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
