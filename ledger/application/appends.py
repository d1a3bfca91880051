"""One group of append calls, checked and written together (group commit).

The writer takes every call waiting and checks each, in arrival order,
against the streams as the earlier calls of the group leave them. A call
that breaks a rule fails alone and contributes nothing; the accepted calls
are written in one transaction, each call's events consecutive and in request
order, so positions follow arrival and then request order.

Round trips per group: one look-up of every event id (idempotency), one read
of the streams not cached (a new incident needs none), then one transaction.
Cached streams are trusted optimistically: the insert is itself the version
check (a stream another process moved has its next version taken), and the
agreement streams the group only read are checked inside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ledger.adapters.eventstore import StreamWrite, stream_for
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory
from ledger.domain.errors import AlreadyExists, DomainError, InvalidArgument, NotFound
from ledger.domain.validation import check_incident_event, check_maintenance_event

#: Pending events sort after every stored one on the timeline.
PROVISIONAL = 2**61


@dataclass(frozen=True, slots=True)
class AppendResult:
    event_id: str
    position: int
    duplicate: bool


def stream_name(event: ev.LedgerEvent) -> str:
    if event.incident_id:
        return f"incident:{event.incident_id}"
    return f"agreement:{event.agreement_id}"


class Histories(Protocol):
    def __call__(self, name: str, events: list[ev.LedgerEvent]) -> AgreementHistory | None: ...


@dataclass
class CallPlan:
    """What one accepted call stores and answers."""

    events: list[ev.LedgerEvent]
    hashes: list[str]
    # Per event: "" = store it; "stored" = duplicate of a stored event;
    # "group" = duplicate of an event stored by this group (this call or an earlier one).
    kinds: list[str]
    known: dict[str, int] = field(default_factory=dict)


@dataclass
class Group:
    """The state of one group while its calls are checked in arrival order."""

    base: dict[str, list[ev.LedgerEvent]]
    known: dict[str, tuple[str, int]]
    now: int
    max_skew: int
    history_of: Histories
    pending: dict[str, list[ev.LedgerEvent]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # event_id -> hash, stored by the group
    read_only: set[str] = field(default_factory=set)  # streams validated against, not written
    plans: dict[int, CallPlan] = field(default_factory=dict)

    def check_call(self, key: int, principal: Principal, events: Sequence[ev.LedgerEvent],
                   hash_of: Callable[[ev.LedgerEvent], str]) -> None:
        """Plans the call or raises the rule it breaks (leaving the group as it was)."""
        pending: dict[str, list[ev.LedgerEvent]] = {}
        hashes: dict[str, str] = {}
        read: set[str] = set()
        plan = CallPlan([], [], [])
        for index, event in enumerate(events):
            digest = hash_of(event)
            if event.event_id in self.known:
                stored_hash, position = self.known[event.event_id]
                if stored_hash != digest:
                    raise AlreadyExists(
                        f"events[{index}]: event_id {event.event_id!r} is already stored at "
                        f"position {position} with different content", index)
                plan.events.append(event)
                plan.hashes.append(digest)
                plan.kinds.append("stored")
                plan.known[event.event_id] = position
                continue
            earlier = hashes.get(event.event_id) or self.hashes.get(event.event_id)
            if earlier is not None:
                if earlier != digest:
                    where = "batch" if event.event_id in hashes else "group"
                    raise AlreadyExists(
                        f"events[{index}]: event_id {event.event_id!r} appears twice in the "
                        f"{where} with different content", index)
                plan.events.append(event)
                plan.hashes.append(digest)
                plan.kinds.append("group")
                continue
            checked = self._check(principal, index, event, pending, read)
            hashes[event.event_id] = digest
            pending.setdefault(stream_name(checked), []).append(checked)
            plan.events.append(checked)
            plan.hashes.append(digest)
            plan.kinds.append("")
        for name, new in pending.items():
            self.pending.setdefault(name, []).extend(new)
        self.hashes.update(hashes)
        self.read_only.update(read)
        self.plans[key] = plan

    def _check(self, principal: Principal, index: int, event: ev.LedgerEvent,
               pending: dict[str, list[ev.LedgerEvent]], read: set[str]) -> ev.LedgerEvent:
        name = stream_name(event)
        stored = self.base.get(name, []) + self.pending.get(name, []) + pending.get(name, [])
        if isinstance(event.payload, ev.MaintenanceScheduled):
            history = self._agreement(principal, event.agreement_id, read)
            check_maintenance_event(history, event, now=self.now, max_skew=self.max_skew)
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
        history = self._agreement(principal, agreement_id, read)
        provisional = [
            e if e.position else replace(e, position=PROVISIONAL + i) for i, e in enumerate(stored)
        ]
        try:
            check_incident_event(history, provisional, event, now=self.now,
                                 max_skew=self.max_skew)
        except DomainError as exc:
            if hasattr(exc, "index"):
                exc.index = index
            raise
        return event

    def _agreement(self, principal: Principal, agreement_id: str,
                   read: set[str]) -> AgreementHistory:
        name = f"agreement:{agreement_id}"
        events = self.base.get(name, []) + self.pending.get(name, [])
        history = self.history_of(name, events)
        if history is None or not principal.may_see(history.parties()):
            raise NotFound("agreement", agreement_id)
        read.add(name)
        return history

    # -- writing ---------------------------------------------------------------
    def writes(self, order: Sequence[int]) -> list[StreamWrite]:
        """One write per new event: calls in arrival order, events in request order."""
        next_version = {name: len(self.base.get(name, [])) for name in self.pending}
        out = []
        for key in order:
            plan = self.plans.get(key)
            if plan is None:
                continue
            for event, digest, kind in zip(plan.events, plan.hashes, plan.kinds, strict=True):
                if kind:
                    continue
                name = stream_name(event)
                out.append(StreamWrite(name, stream_for(name), next_version[name], (event,),
                                       (digest,)))
                next_version[name] += 1
        return out

    def expected_versions(self) -> dict[str, int]:
        """Streams read but not written: they must not have moved at commit."""
        return {name: len(self.base.get(name, [])) for name in self.read_only
                if name not in self.pending}

    def results(self, key: int, positions: dict[str, int]) -> list[AppendResult]:
        plan = self.plans[key]
        return [
            AppendResult(event.event_id, plan.known[event.event_id], True) if kind == "stored"
            else AppendResult(event.event_id, positions[event.event_id], kind == "group")
            for event, kind in zip(plan.events, plan.kinds, strict=True)
        ]
