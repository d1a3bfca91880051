"""Whether this replica should get traffic: it reaches the database, and the
read models it answers from are not far behind the log.

Replicas keep no state of their own (the leader projects into the shared
database, followers read it), so "behind the leader" is the gap between the
head of the log and the positions the leader has committed, as this replica
reads them, plus this replica's own view of those positions (a follower
whose reads of the tracking table fail or stall falls behind here too).

`probe` runs every `interval` seconds in the server's loop; the gRPC health
service's overall status ("" -- what load balancers check) and the
metrics listener's /readyz follow it. Each probe is two indexed look-ups.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("ledger.readiness")

DEFAULT_MAX_LAG = 10_000  # events


@dataclass(frozen=True, slots=True)
class ReadinessState:
    ready: bool
    reason: str  # why not ready ("" when ready)
    leader: bool
    head: int  # the last stored position, as last read (0 before the first probe)
    lag: int  # events between the head and the slowest read model this replica answers from
    checked_at: float  # monotonic seconds


class Readiness:
    def __init__(self, head: Callable[[], int], positions: Callable[[], dict[str, int]],
                 leading: Callable[[], bool], *, max_lag: int = DEFAULT_MAX_LAG,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._head = head
        self._positions = positions  # committed positions, read from the database
        self._leading = leading
        self.max_lag = max_lag
        self._clock = clock
        self.state = ReadinessState(False, "not probed yet", False, 0, 0, clock())
        self.listeners: list[Callable[[ReadinessState], None]] = []
        # Probes run in worker threads that cancelling their asyncio task does
        # not stop; close() waits for them so the store is not closed under a
        # probe's statement (SQLite crashed the process).
        self._probes = threading.Condition()
        self._in_flight = 0
        self._closed = False

    def close(self, timeout: float = 5.0) -> None:
        """No probe starts after this; waits up to `timeout` for those running."""
        with self._probes:
            self._closed = True
            self._probes.wait_for(lambda: self._in_flight == 0, timeout)

    def leading(self) -> bool:
        return self._leading()

    def hung(self, seconds: float) -> None:
        """The last probe has not answered for `seconds`: not ready."""
        self._publish(dataclasses.replace(
            self.state, ready=False, checked_at=self._clock(),
            reason=f"the database did not answer within {seconds:g}s"))

    def probe(self) -> ReadinessState:
        """Reads the head and the committed positions; never raises. After
        close(), answers the last state without reading."""
        with self._probes:
            if self._closed:
                return self.state
            self._in_flight += 1
        try:
            state = self._read()
        finally:
            with self._probes:
                self._in_flight -= 1
                self._probes.notify_all()
        self._publish(state)
        return state

    def _read(self) -> ReadinessState:
        leader = self._leading()
        try:
            head = self._head()
            positions = self._positions()
        except Exception as exc:  # any database failure makes the replica unready
            return ReadinessState(False, f"the database is unreachable: {exc}".strip(), leader,
                                  self.state.head, self.state.lag, self._clock())
        lag = max(head - min(positions.values(), default=head), 0)
        reason = (f"the read models are {lag} events behind the log (more than "
                  f"{self.max_lag})" if lag > self.max_lag else "")
        return ReadinessState(not reason, reason, leader, head, lag, self._clock())

    def _publish(self, state: ReadinessState) -> None:
        if state.ready != self.state.ready:
            log.warning("replica %s%s", "ready" if state.ready else "NOT ready: ",
                        state.reason)
        self.state = state
        for listener in list(self.listeners):
            try:
                listener(state)
            except Exception:
                log.exception("readiness listener failed")
