"""The write side and the plain reads of the ledger.

Synchronous by design: the gRPC layer runs writes on one writer thread (so
in-process appends never conflict and batches are serialised) and reads on a
pool. Conflicts with other processes sharing the database surface as
VersionConflict from the store and are retried here with fresh state.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ledger.adapters.eventstore import (
    EventStore,
    StreamWrite,
    VersionConflict,
    stream_for,
)
from ledger.application.agreements import history_from_events
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory, AgreementTerms
from ledger.domain.codec import event_to_dict
from ledger.domain.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PermissionDenied
from ledger.domain.instants import MICROS_PER_MINUTE
from ledger.domain.validation import check_incident_event, check_maintenance_event

MAX_ATTEMPTS = 5
DEFAULT_SKEW = 5 * MICROS_PER_MINUTE


@dataclass(frozen=True, slots=True)
class AppendResult:
    event_id: str
    position: int
    duplicate: bool


def content_hash(event: ev.LedgerEvent) -> str:
    body = json.dumps(event_to_dict(event, stored=False), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class _Streams:
    """Bounded cache of stream contents, valid only for this process's writes."""

    def __init__(self, store: EventStore, capacity: int = 50_000) -> None:
        self.store = store
        self.capacity = capacity
        self._items: OrderedDict[str, list[ev.LedgerEvent]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> list[ev.LedgerEvent]:
        with self._lock:
            cached = self._items.get(name)
            if cached is not None:
                self._items.move_to_end(name)
                return list(cached)
        events = self.store.load_stream(stream_for(name))
        self.put(name, events)
        return list(events)

    def put(self, name: str, events: list[ev.LedgerEvent]) -> None:
        with self._lock:
            self._items[name] = events
            self._items.move_to_end(name)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def forget(self, names: Sequence[str]) -> None:
        with self._lock:
            for name in names:
                self._items.pop(name, None)


class LedgerService:
    def __init__(
        self,
        store: EventStore,
        clock: Callable[[], int],
        *,
        max_skew: int = DEFAULT_SKEW,
        on_stored: Callable[[list[ev.LedgerEvent]], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_skew = max_skew
        self.streams = _Streams(store)
        self.on_stored = on_stored

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
        terms: AgreementTerms,
    ) -> AppendResult:
        principal.require_admin("amend agreements")
        payload = ev.AgreementAmended(effective_from, terms)
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
                if event.occurred_at < history.effective_from:
                    raise InvalidArgument(
                        "effective_from", "an amendment cannot take effect before the agreement"
                    )
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
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._append_once(principal, prepared)
            except VersionConflict:
                continue
        raise Conflict("the incidents kept changing concurrently; retry")

    def _duplicate_of(self, events: Sequence[ev.LedgerEvent]) -> list[AppendResult]:
        known = self.store.lookup_event_ids([e.event_id for e in events])
        results = []
        for index, event in enumerate(events):
            if event.event_id in known:
                digest, position = known[event.event_id]
                if digest != content_hash(event):
                    raise AlreadyExists(
                        f"events[{index}]: event_id {event.event_id!r} is already stored at "
                        f"position {position} with different content", index)
                results.append(AppendResult(event.event_id, position, True))
        return results

    def _append_once(self, principal: Principal, events: list[ev.LedgerEvent]) -> list[AppendResult]:
        known = {r.event_id: r for r in self._duplicate_of(events)}
        now = self.clock()
        pending: dict[str, list[ev.LedgerEvent]] = {}
        base: dict[str, list[ev.LedgerEvent]] = {}
        batch_hashes: dict[str, str] = {}
        plan: list[tuple[int, str]] = []  # (index, stream name) of events to store
        first_index: dict[str, int] = {}  # event_id -> its first index in the batch
        for index, event in enumerate(events):
            if event.event_id in known:
                continue
            digest = content_hash(event)
            if event.event_id in batch_hashes:
                if batch_hashes[event.event_id] != digest:
                    raise AlreadyExists(
                        f"events[{index}]: event_id {event.event_id!r} appears twice in the "
                        "batch with different content", index)
                plan.append((index, ""))
                continue
            batch_hashes[event.event_id] = digest
            first_index[event.event_id] = index
            checked = self._check(principal, index, event, now, base, pending)
            events[index] = checked
            name = self._stream_name(checked)
            pending.setdefault(name, []).append(checked)
            plan.append((index, name))
        # One write per event, in request order, so positions follow the
        # request (a knowledge cut "after the first N events" must hold
        # exactly those); versions still count up per stream.
        writes: list[StreamWrite] = []
        next_version = {name: len(base[name]) for name in pending}
        for index, name in plan:
            if not name:
                continue
            event = events[index]
            # Hash the content as submitted (before the ledger filled in the
            # agreement id), so a re-sent event is recognised as identical.
            writes.append(StreamWrite(name, stream_for(name), next_version[name], (event,),
                                      (batch_hashes[event.event_id],)))
            next_version[name] += 1
        positions: list[int] = []
        if writes:
            try:
                positions = self.store.append(writes, self.clock())
            except VersionConflict:
                self.streams.forget(list(pending))
                raise
        by_event = {w.events[0].event_id: p for w, p in zip(writes, positions, strict=True)}
        stored_groups = [
            (name, base[name], new, [by_event[e.event_id] for e in new]) for name, new in pending.items()
        ]
        self._stored(stored_groups)
        results = []
        for index, event in enumerate(events):
            if event.event_id in known:
                results.append(known[event.event_id])
            else:
                repeated = first_index[event.event_id] != index
                results.append(AppendResult(event.event_id, by_event[event.event_id], repeated))
        return results

    def _stored(self, groups: Sequence[tuple[str, list[ev.LedgerEvent], list[ev.LedgerEvent], Sequence[int]]]) -> None:
        recorded_at = self.clock()
        stored_all: list[ev.LedgerEvent] = []
        for name, before, new, positions in groups:
            stored = [replace(e, position=p, recorded_at=recorded_at) for e, p in zip(new, positions, strict=True)]
            self.streams.put(name, before + stored)
            stored_all.extend(stored)
        if self.on_stored is not None and stored_all:
            self.on_stored(sorted(stored_all, key=lambda e: e.position))

    @staticmethod
    def _stream_name(event: ev.LedgerEvent) -> str:
        if event.incident_id:
            return f"incident:{event.incident_id}"
        return f"agreement:{event.agreement_id}"

    def _check(
        self, principal: Principal, index: int, event: ev.LedgerEvent, now: int,
        base: dict[str, list[ev.LedgerEvent]], pending: dict[str, list[ev.LedgerEvent]],
    ) -> ev.LedgerEvent:
        name = self._stream_name(event)
        if name not in base:
            base[name] = self.streams.get(name)
        stored = base[name] + pending.get(name, [])
        if isinstance(event.payload, ev.MaintenanceScheduled):
            history = self._agreement_for(principal, event.agreement_id, index)
            check_maintenance_event(history, event, now=now, max_skew=self.max_skew)
            return event
        if isinstance(event.payload, ev.Opened):
            agreement_id = event.agreement_id
        else:
            opened = next((e for e in stored if isinstance(e.payload, ev.Opened)), None)
            if opened is None:
                raise NotFound("incident", event.incident_id)
            agreement_id = opened.agreement_id
            if event.agreement_id and event.agreement_id != agreement_id:
                raise InvalidArgument(
                    f"events[{index}].agreement_id",
                    f"incident {event.incident_id!r} belongs to {agreement_id!r}")
            event = replace(event, agreement_id=agreement_id)
        history = self._agreement_for(principal, agreement_id, index)
        # Pending events of this batch sort after stored ones: give them
        # provisional positions beyond the log so the timeline order is right.
        provisional = [
            e if e.position else replace(e, position=2**61 + i) for i, e in enumerate(stored)
        ]
        try:
            check_incident_event(history, provisional, event, now=now, max_skew=self.max_skew)
        except Exception as exc:
            if hasattr(exc, "index"):
                exc.index = index
            raise
        return event

    def _agreement_for(self, principal: Principal, agreement_id: str, index: int) -> AgreementHistory:
        history = self.agreement(agreement_id)
        if history is None or not principal.may_see(history.parties()):
            raise NotFound("agreement", agreement_id)
        return history

    # -- reads -----------------------------------------------------------------
    def incident_events(self, principal: Principal, incident_id: str) -> list[ev.LedgerEvent]:
        events = self.streams.get(f"incident:{incident_id}")
        if not events:
            raise NotFound("incident", incident_id)
        history = self.agreement(events[0].agreement_id)
        if history is None or not principal.may_see(history.parties()):
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



def _agreement_event(principal: Principal, event_id: str, agreement_id: str,
                     payload: ev.AgreementRegistered | ev.AgreementAmended) -> ev.LedgerEvent:
    return ev.LedgerEvent(
        event_id=event_id, agreement_id=agreement_id, incident_id="",
        occurred_at=payload.effective_from, actor=principal.org, payload=payload,
        submitted_by=principal.name,
    )
