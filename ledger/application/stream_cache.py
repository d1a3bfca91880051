"""A bounded cache of stream contents, shared by the write path and the reads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from ledger.application.ports import EventStore
from ledger.domain import events as ev
from ledger.domain.streams import stream_for


class StreamCache:
    """Bounded cache of stream contents. Reads check the stream's version
    first; the write path trusts the cache and lets the insert (and, for
    agreement terms, a check inside the transaction) catch a moved stream."""

    def __init__(self, store: EventStore, capacity: int = 50_000) -> None:
        self.store = store
        self.capacity = capacity
        self._items: OrderedDict[str, list[ev.LedgerEvent]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> list[ev.LedgerEvent]:
        """The stream as committed now: a cached copy is used only if the
        stream still has its version (another process may have appended)."""
        version = self.store.stream_versions([name])[name]
        with self._lock:
            cached = self._items.get(name)
            if cached is not None and len(cached) == version:
                self._items.move_to_end(name)
                return list(cached)
        events = self.store.load_stream(stream_for(name))
        self.put(name, events)
        return list(events)

    def peek(self, name: str) -> list[ev.LedgerEvent] | None:
        """The cached stream (not copied: callers must not mutate it), or None."""
        with self._lock:
            cached = self._items.get(name)
            if cached is not None:
                self._items.move_to_end(name)
            return cached

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
