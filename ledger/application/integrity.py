"""Tampering noticed while the ledger runs: every event read is checked
against its leaf in the Merkle log, and a background scrub walks the rest.

The Merkle log (``audit_leaves`` and the subtree hashes over them, checked
against the signed checkpoints) holds the leaf hash of every event as it was
when the Merkle projection first read it. So an event read back later can be
checked against its leaf: ``Integrity.verify`` re-derives the leaf hash of each event a
proof, a report or the log stream reads, and checks that positions read in
order have no gap. ``Scrub`` walks the whole log in the background at a
configurable rate, comparing every event with its leaf and the leaf rows
with the subtree hashes over them, and notices a log shorter than the tree
(deleted tail rows).

The first difference is a ``Breach``: it is logged once with its position,
checkpoint signing stops (``AuditLog.halt``), write RPCs answer UNAVAILABLE
and report NOT_SERVING, a metric and an alert rule fire (listeners), and
reads of a changed or missing event answer DATA_LOSS naming the position.
Only a restart after an operator repaired the database clears it.

What it cannot see: a row appended behind the ledger's back at the end of the
log, with the ledger's own (unkeyed) content hash and the next stream version,
looks exactly like an append by another server sharing the database, and is
signed like one; rows are not MACed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.audit.leaf import event_leaf_hash
from ledger.domain.errors import Corrupted, Unavailable
from ledger.domain.events import LedgerEvent

log = logging.getLogger("ledger.integrity")


@dataclass(frozen=True, slots=True)
class Breach:
    position: int
    reason: str


class Integrity:
    """The ledger's view of whether its stored log is still what it recorded."""

    def __init__(self, leaf_of: Callable[[int], bytes | None], tree_size: Callable[[], int]) -> None:
        self._leaf_of = leaf_of  # stored leaf hash at a position, None beyond the tree
        self._tree_size = tree_size
        self._lock = threading.Lock()
        self.breach: Breach | None = None
        self.listeners: list[Callable[[Breach], None]] = []

    @property
    def intact(self) -> bool:
        return self.breach is None

    def report(self, position: int, reason: str) -> Corrupted:
        """Records a difference (the first one wins) and returns the error to raise."""
        with self._lock:
            first = self.breach is None
            if first:
                self.breach = Breach(position, reason)
        if first:
            log.error("integrity breach: the stored log differs from what the ledger recorded "
                      "at position %d (%s); checkpoint signing and writes stopped", position, reason)
            for listener in list(self.listeners):
                try:
                    listener(Breach(position, reason))
                except Exception:  # a listener must not hide the breach from the others
                    log.exception("integrity listener failed")
        return Corrupted(position, reason)

    def require_intact(self) -> None:
        """Raises Unavailable for a write while a breach stands."""
        breach = self.breach
        if breach is not None:
            raise Unavailable(f"writes are stopped: the stored log was altered at position "
                              f"{breach.position} ({breach.reason}); an operator must restore it",
                              retry_after=60.0)

    def verify(self, events: Sequence[LedgerEvent], after: int | None = None) -> None:
        """Raises Corrupted for the first event whose leaf differs from the tree's.

        With ``after``, ``events`` are a read of the log in position order from
        ``after``: a position skipped is a gap.
        """
        expected = None if after is None else after + 1
        for event in events:
            if expected is not None:
                if event.position != expected:
                    raise self.report(expected, "event missing: a gap in positions")
                expected += 1
            stored = self._leaf_of(event.position)
            if stored is not None and event_leaf_hash(event) != stored:
                raise self.report(event.position, "event content differs from its leaf hash")

    def tree_size(self) -> int:
        return self._tree_size()

    def verify_end(self, last_read: int, known: int) -> None:
        """After a read of the log that ended early at ``last_read``: ``known``,
        the tree's size taken before the read (or less), says how far the log
        reached when its leaves were recorded; ending before it means rows
        were deleted."""
        if last_read < known:
            raise self.report(last_read + 1, "event missing: the log ends before its leaves")
