"""Group commit: concurrent append calls share one writer and one transaction.

Calls queue for a single writer thread, which takes everything waiting (up
to `max_calls` calls and `max_events` events), has the ledger check them in
arrival order and store the accepted ones in one transaction (one commit,
one fsync), then answers each call on its own. Agreement writes run alone,
in their place in the queue. A call that waited longer than `max_wait` is
answered UNAVAILABLE without being tried; if the group's transaction fails,
every call in it gets the retryable status of the database condition and
nothing is stored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ledger.application.ledger_service import LedgerService
from ledger.application.observer import LedgerObserver
from ledger.domain.access import Principal
from ledger.domain.errors import DomainError, Unavailable
from ledger.domain.events import AppendResult, LedgerEvent

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_CALLS = 256
MAX_EVENTS = 5_000
MAX_WAIT = 10.0


@dataclass
class _Call:
    principal: Principal | None
    events: Sequence[LedgerEvent]
    future: Future[Any]
    queued: float
    run: Callable[[], Any] | None = None  # a write that runs alone
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.events)


class GroupCommitter:
    def __init__(self, service: LedgerService, observer: LedgerObserver | None = None, *,
                 max_calls: int = MAX_CALLS, max_events: int = MAX_EVENTS,
                 max_wait: float = MAX_WAIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.observer = observer or LedgerObserver()
        self.max_calls = max_calls
        self.max_events = max_events
        self.max_wait = max_wait
        self._clock = clock
        self._queue: deque[_Call] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="ledger-writer", daemon=True)
        self._thread.start()

    # -- callers -----------------------------------------------------------------
    def submit(self, principal: Principal, events: Sequence[LedgerEvent]) -> Future[list[AppendResult]]:
        return self._enqueue(_Call(principal, events, Future(), self._clock()))

    def submit_write(self, run: Callable[[], T]) -> Future[T]:
        return self._enqueue(_Call(None, (), Future(), self._clock(), run))

    async def append(self, principal: Principal, events: Sequence[LedgerEvent]) -> list[AppendResult]:
        return await asyncio.wrap_future(self.submit(principal, events))

    async def write(self, run: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self.submit_write(run))

    def _enqueue(self, call: _Call) -> Future[Any]:
        with self._ready:
            if self._closed:
                call.future.set_exception(Unavailable("the server is shutting down; retry"))
                return call.future
            self._queue.append(call)
            self._ready.notify()
        return call.future

    def close(self, timeout: float | None = None) -> None:
        """Refuse what is still queued (retryably: nothing of it was stored),
        let the group being written finish, waiting up to `timeout` seconds."""
        with self._ready:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
            self._ready.notify()
        for call in dropped:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(Unavailable("the server is shutting down; retry"))
        self._thread.join(timeout)

    # -- the writer ------------------------------------------------------------------
    def _take(self) -> list[_Call] | None:
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            first = self._queue.popleft()
            if first.run is not None:
                return [first]
            group, events = [first], first.size
            while (self._queue and self._queue[0].run is None and len(group) < self.max_calls
                   and events + self._queue[0].size <= self.max_events):
                call = self._queue.popleft()
                group.append(call)
                events += call.size
            return group

    def _loop(self) -> None:
        while (group := self._take()) is not None:
            try:
                self._process(group)
            except BaseException as exc:  # never leave a caller waiting
                log.exception("the writer failed a group")
                for call in group:
                    if not call.future.done():
                        call.future.set_exception(exc)

    def _process(self, group: list[_Call]) -> None:
        now = self._clock()
        live = []
        for call in group:
            if now - call.queued > self.max_wait:
                call.future.set_exception(Unavailable(
                    f"the writer is overloaded (waited {now - call.queued:.1f} s); retry", 0.5))
            elif call.future.set_running_or_notify_cancel():
                live.append(call)
        if not live:
            return
        if live[0].run is not None:
            self._run_alone(live[0])
            return
        started = time.perf_counter()
        try:
            outcomes = self.service.append_group(
                [(c.principal, c.events) for c in live])  # type: ignore[misc]
        except Exception as exc:
            retryable = self.service.store.database_error(exc)
            for call in live:
                call.future.set_exception(retryable if retryable is not None else exc)
            return
        seconds = time.perf_counter() - started
        for call, outcome in zip(live, outcomes, strict=True):
            if isinstance(outcome, DomainError):
                self.observer.rejected(call.events, outcome, seconds)
                call.future.set_exception(outcome)
            else:
                self.observer.appended(call.events, outcome, seconds)
                call.future.set_result(outcome)

    def _run_alone(self, call: _Call) -> None:
        assert call.run is not None
        try:
            call.future.set_result(call.run())
        except Exception as exc:
            retryable = self.service.store.database_error(exc)
            call.future.set_exception(retryable if retryable is not None else exc)
