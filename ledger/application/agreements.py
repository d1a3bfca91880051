"""Agreement histories from their streams."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory, MaintenanceWindow, TermsVersion


def history_from_events(agreement_id: str, events: Sequence[ev.LedgerEvent]) -> AgreementHistory | None:
    """Fold an agreement stream (in position order) into its history."""
    versions: list[TermsVersion] = []
    windows: list[MaintenanceWindow] = []
    for event in events:
        payload = event.payload
        if isinstance(payload, ev.AgreementRegistered | ev.AgreementAmended):
            versions.append(
                TermsVersion(payload.effective_from, payload.terms, event.event_id, event.position)
            )
        elif isinstance(payload, ev.MaintenanceScheduled):
            windows.append(
                MaintenanceWindow(event.event_id, payload.service, payload.start, payload.end,
                                  event.occurred_at, event.position)
            )
    if not versions:
        return None
    return AgreementHistory(agreement_id, tuple(versions), tuple(windows))
