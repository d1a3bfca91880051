"""Folded incident states for the write path, kept per stream version.

The write path judges an event that lands at the end of an incident's
timeline on the incident's folded validity state alone (check_appended), so
it keeps those states between groups. A state is keyed by the stream it was
folded from: its version (event count) and the id of its last event. It is
only ever handed out together with the stream list the write path checks
against, and that list is version-checked on every write (the insert at the
next version fails if another process moved the stream, and the retry reads
afresh), so a state is never used after another process wrote to the stream.
A state a few versions behind is advanced by the events stored since, unless
one of them is late or a retraction: then the incident alone is folded anew.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from ledger.domain import events as ev
from ledger.domain.incident_state import IncidentState, catch_up, validity_state

CAPACITY = 50_000


class IncidentStates:
    """A bounded (least recently used) cache of validity states by stream."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[int, str, IncidentState]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.advanced = self.folded = 0

    def state_of(self, name: str, events: Sequence[ev.LedgerEvent]) -> IncidentState:
        """The validity state of `events`, the stream `name` at its version."""
        version = len(events)
        last_id = events[-1].event_id if events else ""
        with self._lock:
            cached = self._items.get(name)
            if cached is not None:
                self._items.move_to_end(name)
        state: IncidentState | None = None
        if cached is not None:
            at, at_id, known = cached
            if at == version and at_id == last_id:
                self.hits += 1
                return known
            if 0 < at < version and events[at - 1].event_id == at_id:
                state = catch_up(known, events[at:])
                self.advanced += state is not None
        if state is None:
            self.folded += 1
            state = validity_state(events)
        with self._lock:
            self._items[name] = (version, last_id, state)
            self._items.move_to_end(name)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return state

    def forget(self, names: Sequence[str]) -> None:
        with self._lock:
            for name in names:
                self._items.pop(name, None)
