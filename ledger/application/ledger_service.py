"""The write side of the ledger: agreements registered and amended, service
events appended in groups (the reads it inherits are ledger_reads.py).

Synchronous by design: the gRPC layer runs writes on one writer thread (so
in-process appends never conflict and batches are serialised) and reads on a
pool. Conflicts with other processes sharing the database surface as
VersionConflict from the store and are retried here with fresh state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace

from ledger.application.amendments import check_stored_timelines
from ledger.application.appends import Group, key_of, stream_name
from ledger.application.incident_states import IncidentStates
from ledger.application.ledger_reads import LedgerReads
from ledger.application.ports import EventStore, StreamWrite, VersionConflict
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory, AgreementTerms, TermsChanges
from ledger.domain.codec import event_to_dict
from ledger.domain.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    quote,
)
from ledger.domain.events import AppendResult
from ledger.domain.history import history_from_events
from ledger.domain.instants import MICROS_PER_MINUTE
from ledger.domain.streams import stream_for
from ledger.domain.validation import check_amendment

__all__ = ["LedgerService", "content_hash"]

MAX_ATTEMPTS = 5
DEFAULT_SKEW = 5 * MICROS_PER_MINUTE


def content_hash(event: ev.LedgerEvent) -> str:
    body = json.dumps(event_to_dict(event, stored=False), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class LedgerService(LedgerReads):
    def __init__(
        self,
        store: EventStore,
        clock: Callable[[], int],
        *,
        max_skew: int = DEFAULT_SKEW,
        on_stored: Callable[[list[ev.LedgerEvent]], None] | None = None,
    ) -> None:
        super().__init__(store)
        self.clock = clock
        self.max_skew = max_skew
        # Folded incident states by stream version (the write path's check).
        self.incident_states = IncidentStates()
        self._histories: dict[str, tuple[int, str, AgreementHistory | None]] = {}
        self.on_stored = on_stored

    # -- agreements ------------------------------------------------------------
    def register_agreement(
        self, principal: Principal, event_id: str, agreement_id: str, effective_from: int,
        terms: AgreementTerms,
    ) -> AppendResult:
        principal.require_admin("register agreements")
        payload = ev.AgreementRegistered(effective_from, terms)
        return self._append_agreement_event(
            _agreement_event(principal, event_id, agreement_id, payload), registering=True)

    def amend_agreement(
        self, principal: Principal, event_id: str, agreement_id: str, effective_from: int,
        changes: TermsChanges | AgreementTerms,
    ) -> AppendResult:
        """Stores what the amendment names (10.18); complete terms name all."""
        principal.require_admin("amend agreements")
        if isinstance(changes, AgreementTerms):
            changes = TermsChanges.complete(changes)
        payload = ev.AgreementAmended(effective_from, changes)
        return self._append_agreement_event(
            _agreement_event(principal, event_id, agreement_id, payload), registering=False)

    def _append_agreement_event(self, event: ev.LedgerEvent, *, registering: bool) -> AppendResult:
        if not event.event_id:
            raise InvalidArgument("event_id", "is required")
        name = f"agreement:{event.agreement_id}"
        for _ in range(MAX_ATTEMPTS):
            duplicate = self._duplicate_of([event])
            if duplicate:
                return duplicate[0]
            stored = self.streams.get(name)
            if registering and stored:
                raise AlreadyExists(f"agreement {event.agreement_id!r} is already registered")
            if not registering:
                if not stored:
                    raise NotFound("agreement", event.agreement_id)
                history = history_from_events(event.agreement_id, stored)
                assert history is not None
                check_amendment(history, event)
                check_stored_timelines(self.store, history, stored, event, self.max_skew)
            write = StreamWrite(name, stream_for(name), len(stored), (event,),
                                (content_hash(event),))
            try:
                positions = self.store.append([write], self.clock())
            except VersionConflict:
                self.streams.forget([name])
                continue
            self._stored([(name, stored, [event], positions)])
            return AppendResult(event.event_id, positions[0], False)
        raise Conflict("agreement changed concurrently; retry")

    # -- service events ------------------------------------------------------
    def append(self, principal: Principal, events: Sequence[ev.LedgerEvent]) -> list[AppendResult]:
        """Append a batch atomically: every new event is stored, or none."""
        (outcome,) = self.append_group([(principal, events)])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    def validate(self, principal: Principal, events: Sequence[ev.LedgerEvent]) -> list[AppendResult]:
        """AppendEvents with validate_only: the checks and answers of an
        append of these events now (position 0 for what would be stored),
        storing nothing. Streams are read, never presumed new."""
        calls = {0: self._prepare(principal, events)}
        outcomes: list[list[AppendResult] | DomainError] = [[]]
        self._resolve_agreements(calls, outcomes)
        if isinstance(outcomes[0], DomainError):
            raise outcomes[0]
        prepared = calls[0]
        known = self.store.lookup_event_ids([key_of(e) for e in prepared]) if prepared else {}
        group = Group(self._streams_for(prepared, set(), careful=True), known, self.clock(),
                      self.max_skew, self._history, state_of=self.incident_states.state_of)
        group.check_call(0, principal, prepared, content_hash)
        return group.results(0, dict.fromkeys((key_of(e) for e in prepared), 0))

    def append_group(
        self, calls: Sequence[tuple[Principal, Sequence[ev.LedgerEvent]]],
    ) -> list[list[AppendResult] | DomainError]:
        """Check the calls in order and store the accepted ones in one
        transaction; each call is answered on its own (its results or the
        rule it broke). If the transaction fails on a database condition,
        nothing is stored and every accepted call gets its retryable error."""
        outcomes: list[list[AppendResult] | DomainError] = []
        prepared: dict[int, list[ev.LedgerEvent]] = {}
        for key, (principal, events) in enumerate(calls):
            try:
                prepared[key] = self._prepare(principal, events)
                outcomes.append([])
            except DomainError as exc:
                outcomes.append(exc)
        self._resolve_agreements(prepared, outcomes)
        for attempt in range(MAX_ATTEMPTS):
            answers: dict[int, list[AppendResult] | DomainError] = {}
            try:
                self._group_once(calls, prepared, answers, careful=attempt > 0)
            except VersionConflict:
                continue  # another process moved a stream: re-read and re-check
            except Exception as exc:
                retryable = self.store.database_error(exc)
                if retryable is None:
                    raise
                # Nothing was stored: refused calls keep their own answer,
                # the accepted ones may simply be sent again.
                for key in prepared:
                    found = answers.get(key)
                    outcomes[key] = found if isinstance(found, DomainError) else retryable
                return outcomes
            for key, outcome in answers.items():
                outcomes[key] = outcome
            return outcomes
        for key in prepared:
            outcomes[key] = Conflict("the incidents kept changing concurrently; retry")
        return outcomes

    def _duplicate_of(self, events: Sequence[ev.LedgerEvent]) -> list[AppendResult]:
        known = self.store.lookup_event_ids([key_of(e) for e in events])
        results = []
        for index, event in enumerate(events):
            if key_of(event) in known:
                digest, position = known[key_of(event)]
                if digest != content_hash(event):
                    raise AlreadyExists(
                        f"events[{index}]: event_id {event.event_id!r} is already stored at "
                        f"position {position} with different content", index)
                results.append(AppendResult(event.event_id, position, True))
        return results

    @staticmethod
    def _prepare(principal: Principal, events: Sequence[ev.LedgerEvent]) -> list[ev.LedgerEvent]:
        principal.require_writer()
        prepared: list[ev.LedgerEvent] = []
        for index, event in enumerate(events):
            try:
                actor = principal.actor_for(event.actor)
            except PermissionDenied as exc:
                raise PermissionDenied(f"events[{index}].actor: {exc}") from None
            if not event.event_id:
                raise InvalidArgument(f"events[{index}].event_id", "is required")
            if not isinstance(event.payload, (*ev.INCIDENT_EVENT_TYPES, ev.MaintenanceScheduled)):
                raise InvalidArgument(f"events[{index}]", f"{event.type} is not a service event")
            prepared.append(replace(event, actor=actor, submitted_by=principal.name, position=0))
        return prepared

    def _group_once(
        self, calls: Sequence[tuple[Principal, Sequence[ev.LedgerEvent]]],
        prepared: dict[int, list[ev.LedgerEvent]],
        outcomes: dict[int, list[AppendResult] | DomainError], *, careful: bool,
    ) -> None:
        every = [e for events in prepared.values() for e in events]
        known = self.store.lookup_event_ids([key_of(e) for e in every]) if every else {}
        cached: set[str] = set()
        base = self._streams_for(every, cached, careful=careful)
        group = Group(base, known, self.clock(), self.max_skew, self._history,
                      state_of=self.incident_states.state_of)
        for key, events in prepared.items():
            try:
                group.check_call(key, calls[key][0], events, content_hash)
            except DomainError as exc:
                outcomes[key] = exc
        if outcomes and cached:
            # A refusal must not rest on a stream another process has moved
            # (an accepted write is checked by the insert itself).
            versions = self.store.stream_versions(sorted(cached))
            moved = [n for n in cached if versions[n] != len(base[n])]
            if moved:
                self.streams.forget(moved)
                raise VersionConflict(f"{len(moved)} cached streams moved")
        writes = group.writes(list(prepared))
        positions: list[int] = []
        if writes:
            try:
                positions = self.store.append(writes, self.clock(), group.expected_versions())
            except VersionConflict:
                self.streams.forget([*group.pending, *group.read_only])
                raise
        by_event = {key_of(w.events[0]): p for w, p in zip(writes, positions, strict=True)}
        self._stored([(name, base.get(name, []), new, [by_event[key_of(e)] for e in new])
                      for name, new in group.pending.items()])
        for key in group.plans:
            outcomes[key] = group.results(key, by_event)

    def _streams_for(self, events: Sequence[ev.LedgerEvent], cached: set[str], *,
                     careful: bool) -> dict[str, list[ev.LedgerEvent]]:
        """The streams a group needs, from the cache or in one read (two if
        an incident's agreement is not cached). An incident being opened is
        presumed new without a read: if it is not, its first version is
        taken and the insert fails, and the careful retry reads it."""
        names: dict[str, bool] = {}  # name -> may be presumed empty
        for event in events:
            name = stream_name(event)
            presume = isinstance(event.payload, ev.Opened) and not careful
            names[name] = names.get(name, True) and presume
            if event.agreement_id:
                names.setdefault(f"agreement:{event.agreement_id}", False)
        base = self._cached_or_loaded(names, cached, careful)
        agreements = {f"agreement:{e.agreement_id}" for stream in base.values() for e in stream[:1]
                      if e.agreement_id} - set(base)
        if agreements:
            base.update(self._cached_or_loaded(dict.fromkeys(agreements, False), cached, careful))
        return base

    def _cached_or_loaded(self, names: dict[str, bool], cached_names: set[str],
                          careful: bool) -> dict[str, list[ev.LedgerEvent]]:
        base: dict[str, list[ev.LedgerEvent]] = {}
        missing = []
        for name, presume_empty in names.items():
            cached = None if careful else self.streams.peek(name)
            if cached is not None:
                base[name] = cached
                cached_names.add(name)
            elif presume_empty:
                base[name] = []
            else:
                missing.append(name)
        if missing:
            loaded = self.store.load_streams(missing)
            for name in missing:
                self.streams.put(name, loaded[name])
                base[name] = loaded[name]
        return base

    def _history(self, name: str, events: list[ev.LedgerEvent]) -> AgreementHistory | None:
        """An agreement's history, folded once per version of its stream."""
        cached = self._histories.get(name)
        if cached is not None and cached[0] == len(events) and (
                not events or cached[1] == events[-1].event_id):
            return cached[2]
        history = history_from_events(name.split(":", 1)[1], events)
        self._histories[name] = (len(events), events[-1].event_id if events else "", history)
        return history

    def _stored(self, groups: Sequence[tuple[str, list[ev.LedgerEvent], list[ev.LedgerEvent], Sequence[int]]]) -> None:
        recorded_at = self.clock()
        stored_all: list[ev.LedgerEvent] = []
        for name, before, new, positions in groups:
            stored = [replace(e, position=p, recorded_at=recorded_at) for e, p in zip(new, positions, strict=True)]
            self.streams.put(name, before + stored)
            stored_all.extend(stored)
        if self.on_stored is not None and stored_all:
            self.on_stored(sorted(stored_all, key=lambda e: e.position))

    def _resolve_agreements(self, prepared: dict[int, list[ev.LedgerEvent]],
                            outcomes: list[list[AppendResult] | DomainError]) -> None:
        """Reading 28: an incident event that does not name its agreement
        belongs to the one, among the agreements its actor is a party of,
        holding that incident (stored, or opened earlier in the group).
        None is NOT_FOUND (the same answer as for an id that exists nowhere);
        two are ambiguous. One look-up for the whole group."""
        missing = sorted({e.incident_id for events in prepared.values() for e in events
                          if e.incident_id and not e.agreement_id})
        if not missing:
            return
        stored = self.store.incident_agreements(missing)
        # incidents opened earlier in the group count too (calls are checked in order)
        opened: dict[str, set[str]] = {}
        for key, events in list(prepared.items()):
            resolved = []
            try:
                for index, given in enumerate(events):
                    event = given
                    if isinstance(event.payload, ev.Opened) and event.agreement_id:
                        opened.setdefault(event.incident_id, set()).add(event.agreement_id)
                    if event.incident_id and not event.agreement_id:
                        event = replace(event, agreement_id=self._agreement_of(
                            index, event, stored.get(event.incident_id, set()) |
                            opened.get(event.incident_id, set())))
                    resolved.append(event)
            except DomainError as exc:
                outcomes[key] = exc
                del prepared[key]
                continue
            prepared[key] = resolved

    def _agreement_of(self, index: int, event: ev.LedgerEvent, candidates: set[str]) -> str:
        mine = sorted(a for a in candidates
                      if (h := self.agreement(a)) is not None and event.actor in h.parties())
        if not mine:
            raise NotFound("incident", event.incident_id)
        if len(mine) > 1:
            raise InvalidArgument(f"events[{index}].agreement_id",
                                  f"incident {quote(event.incident_id)} exists in more than one "
                                  f"agreement of {quote(event.actor)}: name its agreement")
        return mine[0]


def _agreement_event(principal: Principal, event_id: str, agreement_id: str,
                     payload: ev.AgreementRegistered | ev.AgreementAmended) -> ev.LedgerEvent:
    return ev.LedgerEvent(
        event_id=event_id, agreement_id=agreement_id, incident_id="",
        occurred_at=payload.effective_from, actor=principal.org, payload=payload,
        submitted_by=principal.name,
    )
