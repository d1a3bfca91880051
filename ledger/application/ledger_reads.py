"""The reads of the ledger's streams, as a caller may see them: agreements
(folded from their streams), incidents and the log filtered by visibility.
A caller never learns of an agreement it is not a party to: not seeing one
answers exactly as its not existing."""

from __future__ import annotations

from collections.abc import Callable

from ledger.application.ports import EventStore
from ledger.application.scoping import visible_agreement_of
from ledger.application.stream_cache import StreamCache
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory
from ledger.domain.errors import NotFound
from ledger.domain.history import history_from_events
from ledger.domain.streams import incident_name


class LedgerReads:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.streams = StreamCache(store)

    # -- agreements ------------------------------------------------------------
    def agreement(self, agreement_id: str) -> AgreementHistory | None:
        return history_from_events(agreement_id, self.streams.get(f"agreement:{agreement_id}"))

    def visible_agreement(self, principal: Principal, agreement_id: str) -> AgreementHistory:
        history = self.agreement(agreement_id)
        # Not a party looks the same as not existing: ids of other parties'
        # agreements are not disclosed.
        if history is None or not principal.may_see(history.parties()):
            raise NotFound("agreement", agreement_id)
        return history

    def agreement_ids(self, principal: Principal) -> list[str]:
        names = self.store.stream_names("agreement:")
        ids = [n.split(":", 1)[1] for n in names]
        if principal.reads_everything:
            return ids
        out = []
        for agreement_id in ids:
            history = self.agreement(agreement_id)
            if history is not None and principal.may_see(history.parties()):
                out.append(agreement_id)
        return out

    # -- reads -----------------------------------------------------------------
    def incident_agreement(self, principal: Principal, incident_id: str,
                           agreement_id: str = "") -> str:
        """The agreement of the incident a caller names (reading 28): the one
        given, or the only one the caller may see that holds the id. Anything
        the caller cannot see is NOT_FOUND, exactly like an id that does not
        exist."""
        candidates = {agreement_id} if agreement_id else \
            self.store.incident_agreements([incident_id]).get(incident_id, set())
        return visible_agreement_of(principal, "incident", incident_id, candidates, self.agreement)

    def incident_events(self, principal: Principal, incident_id: str,
                        agreement_id: str = "") -> list[ev.LedgerEvent]:
        agreement_id = self.incident_agreement(principal, incident_id, agreement_id)
        events = self.streams.get(incident_name(agreement_id, incident_id))
        if not events:
            raise NotFound("incident", incident_id)
        return events

    def incident_ids(self, principal: Principal, agreement_id: str | None) -> list[str]:
        if agreement_id:
            self.visible_agreement(principal, agreement_id)
            names = self.store.stream_names("incident:", agreement_id)
        elif principal.reads_everything:
            names = self.store.stream_names("incident:")
        else:
            names = []
            for visible in self.agreement_ids(principal):
                names.extend(self.store.stream_names("incident:", visible))
        return sorted(n.split(":", 1)[1] for n in names)

    def visible_filter(self, principal: Principal) -> Callable[[ev.LedgerEvent], bool]:
        """A predicate for log entries the principal may see (cached per agreement)."""
        if principal.reads_everything:
            return lambda _event: True
        cache: dict[str, bool] = {}

        def visible(event: ev.LedgerEvent) -> bool:
            agreement_id = event.agreement_id
            if agreement_id not in cache:
                history = self.agreement(agreement_id)
                cache[agreement_id] = history is not None and principal.may_see(history.parties())
            return cache[agreement_id]

        return visible
