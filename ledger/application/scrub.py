"""The background scrub: re-hashes the whole log, a slice at a time, against
the leaves the ledger recorded (ledger.application.integrity).

Each ``step`` reads the next ``count`` events after its cursor, checks them
with ``Integrity.verify`` (content against the tree's leaf, no gap), compares
the ``audit_leaves`` rows of the same positions with the tree (a rewritten
leaf table would otherwise go unseen until a restart), and at the end of the
log checks that the log still reaches the tree's size; then it starts over.
``run`` paces it at ``rate`` events per second.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

from ledger.application.integrity import Integrity
from ledger.application.ports import EventStore
from ledger.domain.errors import Corrupted
from ledger.domain.events import LedgerEvent

log = logging.getLogger("ledger.integrity")


class Scrub:
    def __init__(self, store: EventStore, integrity: Integrity,
                 leaf_rows: Callable[[int, int], Sequence[tuple[int, bytes]]],
                 tree_size: Callable[[], int], tree_leaf: Callable[[int], bytes | None],
                 check_pairs: Callable[[int, int], int | None] = lambda after, upto: None,
                 ) -> None:
        self.store = store
        self.integrity = integrity
        self.leaf_rows = leaf_rows  # (after, upto) -> stored audit_leaves rows
        self.tree_size = tree_size
        self.tree_leaf = tree_leaf
        # The tree lives in the database: leaf rows are checked against the
        # stored subtrees over them (projections.audit_log.AuditLog.check_pairs).
        self.check_pairs = check_pairs
        self._stepping = threading.Lock()
        self._closed = False
        self.cursor = 0
        self.checked = 0  # events checked since start

    def close(self) -> None:
        """Waits for a step in progress (bounded by its count) and stops
        further ones, so the store is not closed under a running step."""
        with self._stepping:
            self._closed = True

    def step(self, count: int) -> None:
        """Checks up to ``count`` events after the cursor (never raises Corrupted)."""
        with self._stepping:
            if not self._closed:
                self._step(count)

    def _step(self, count: int) -> None:
        if not self.integrity.intact:
            return
        # Only what the tree holds can be compared: its leaves were committed
        # before its size moved, so every position up to it must be readable.
        size = self.tree_size()
        if size == 0:
            return
        after = self.cursor if self.cursor < size else 0
        events: list[LedgerEvent] = self.store.read_log(after, count, upto=size)
        try:
            self.integrity.verify(events, after=after)
            last = events[-1].position if events else after
            self._check_leaf_rows(after, last)
            if len(events) < count:
                self.integrity.verify_end(last, size)
                self.cursor = 0
            else:
                self.cursor = last
        except Corrupted:
            return  # reported (logged, listeners told) by Integrity
        self.checked += len(events)

    def _check_leaf_rows(self, after: int, upto: int) -> None:
        expected = after + 1
        for position, digest in self.leaf_rows(after, upto):
            if position != expected:
                raise self.integrity.report(expected, "leaf row missing from audit_leaves")
            if digest != self.tree_leaf(position):
                raise self.integrity.report(position, "audit_leaves row differs from the tree")
            expected += 1
        if expected <= upto:
            raise self.integrity.report(expected, "leaf row missing from audit_leaves")
        bad = self.check_pairs(after, upto)
        if bad is not None:
            raise self.integrity.report(bad, "audit_leaves differs from the stored subtree over it")

    async def run(self, rate: int) -> None:
        """Forever: ``rate`` events per second, in one step each second."""
        while True:
            try:
                await asyncio.to_thread(self.step, rate)
            except Exception:  # the database may be down: the next round retries
                log.exception("integrity scrub step failed")
            await asyncio.sleep(1.0)
