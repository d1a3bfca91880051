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

from ledger.application.ports import StreamWrite
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.agreements import AgreementHistory
from ledger.domain.errors import AlreadyExists, DomainError, NotFound
from ledger.domain.events import AppendResult
from ledger.domain.incident_state import IncidentState, validity_state
from ledger.domain.streams import incident_name, stream_for
from ledger.domain.validation import check_appended, check_maintenance_event

#: Pending events sort after every stored one on the timeline.
PROVISIONAL = 2**61


def stream_name(event: ev.LedgerEvent) -> str:
    """The event's stream; an incident event's agreement is known by now
    (given, or resolved by LedgerService before the group is checked)."""
    if event.incident_id:
        return incident_name(event.agreement_id, event.incident_id)
    return f"agreement:{event.agreement_id}"


def key_of(event: ev.LedgerEvent) -> tuple[str, str]:
    """An event id is unique within its agreement (reading 28)."""
    return (event.agreement_id, event.event_id)


class Histories(Protocol):
    def __call__(self, name: str, events: list[ev.LedgerEvent]) -> AgreementHistory | None: ...


class States(Protocol):
    def __call__(self, name: str, events: Sequence[ev.LedgerEvent]) -> IncidentState: ...


def _fold_afresh(name: str, events: Sequence[ev.LedgerEvent]) -> IncidentState:
    return validity_state(events)


@dataclass
class CallPlan:
    """What one accepted call stores and answers."""

    events: list[ev.LedgerEvent]
    hashes: list[str]
    # Per event: "" = store it; "stored" = duplicate of a stored event;
    # "group" = duplicate of an event stored by this group (this call or an earlier one).
    kinds: list[str]
    known: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class Group:
    """The state of one group while its calls are checked in arrival order."""

    base: dict[str, list[ev.LedgerEvent]]
    known: dict[tuple[str, str], tuple[str, int]]
    now: int
    max_skew: int
    history_of: Histories
    pending: dict[str, list[ev.LedgerEvent]] = field(default_factory=dict)
    # (agreement, event_id) -> hash, stored by the group
    hashes: dict[tuple[str, str], str] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)  # streams validated against, not written
    plans: dict[int, CallPlan] = field(default_factory=dict)
    # The validity state of a stored incident stream (cached by version).
    state_of: States = _fold_afresh
    # The state of each incident stream after the group's pending events.
    states: dict[str, IncidentState] = field(default_factory=dict)

    def check_call(self, key: int, principal: Principal, events: Sequence[ev.LedgerEvent],
                   hash_of: Callable[[ev.LedgerEvent], str]) -> None:
        """Plans the call or raises the rule it breaks (leaving the group as it was)."""
        pending: dict[str, list[ev.LedgerEvent]] = {}
        states: dict[str, IncidentState] = {}
        hashes: dict[tuple[str, str], str] = {}
        read: set[str] = set()
        plan = CallPlan([], [], [])
        for index, event in enumerate(events):
            digest = hash_of(event)
            key_ = key_of(event)
            if key_ in self.known:
                stored_hash, position = self.known[key_]
                if stored_hash != digest:
                    raise AlreadyExists(
                        f"events[{index}]: event_id {event.event_id!r} is already stored at "
                        f"position {position} with different content", index)
                plan.events.append(event)
                plan.hashes.append(digest)
                plan.kinds.append("stored")
                plan.known[key_] = position
                continue
            earlier = hashes.get(key_) or self.hashes.get(key_)
            if earlier is not None:
                if earlier != digest:
                    where = "batch" if key_ in hashes else "group"
                    raise AlreadyExists(
                        f"events[{index}]: event_id {event.event_id!r} appears twice in the "
                        f"{where} with different content", index)
                plan.events.append(event)
                plan.hashes.append(digest)
                plan.kinds.append("group")
                continue
            checked = self._check(principal, index, event, pending, states, read)
            hashes[key_] = digest
            pending.setdefault(stream_name(checked), []).append(checked)
            plan.events.append(checked)
            plan.hashes.append(digest)
            plan.kinds.append("")
        for name, new in pending.items():
            self.pending.setdefault(name, []).extend(new)
        self.hashes.update(hashes)
        self.states.update(states)
        self.read_only.update(read)
        self.plans[key] = plan

    def _check(self, principal: Principal, index: int, event: ev.LedgerEvent,
               pending: dict[str, list[ev.LedgerEvent]], states: dict[str, IncidentState],
               read: set[str]) -> ev.LedgerEvent:
        name = stream_name(event)
        if isinstance(event.payload, ev.MaintenanceScheduled):
            history = self._agreement(principal, event.agreement_id, read)
            check_maintenance_event(history, event, now=self.now, max_skew=self.max_skew)
            return event
        # The agreement first: one the caller cannot see answers exactly as
        # one that does not exist, whatever incidents it holds (reading 28).
        history = self._agreement(principal, event.agreement_id, read)
        base = self.base.get(name, [])
        state = states.get(name) or self.states.get(name) or self.state_of(name, base)
        if not isinstance(event.payload, ev.Opened) and state.opened is None:
            raise NotFound("incident", event.incident_id)
        count = len(base) + len(self.pending.get(name, ())) + len(pending.get(name, ()))

        def stored() -> list[ev.LedgerEvent]:
            # Pending events sort after the stored ones, in the group's order.
            ours = self.pending.get(name, []) + pending.get(name, [])
            return [*base, *(replace(e, position=PROVISIONAL + len(base) + i)
                             for i, e in enumerate(ours))]

        try:
            states[name] = check_appended(
                history, state, event, now=self.now, max_skew=self.max_skew, stored=stored,
                as_stored=replace(event, position=PROVISIONAL + count))
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

    def results(self, key: int, positions: dict[tuple[str, str], int]) -> list[AppendResult]:
        plan = self.plans[key]
        return [
            AppendResult(event.event_id, plan.known[key_of(event)], True) if kind == "stored"
            else AppendResult(event.event_id, positions[key_of(event)], kind == "group")
            for event, kind in zip(plan.events, plan.kinds, strict=True)
        ]
