"""The stored log read in batches for a follower (the ReadLog stream): each
batch in position order, every event checked against its Merkle leaf with no
gap between positions, and a read that ends early checked against the size the
tree had before it (rows deleted at the end of the log are noticed)."""

from __future__ import annotations

from ledger.application.integrity import Integrity
from ledger.application.ledger_service import LedgerService
from ledger.domain.events import LedgerEvent

#: Events per batch: one database read, then one check against the leaves.
BATCH = 500


class LogReads:
    def __init__(self, service: LedgerService, integrity: Integrity | None = None) -> None:
        self._service = service
        self._integrity = integrity

    def batch(self, after: int, upto: int | None) -> list[LedgerEvent]:
        """Up to ``BATCH`` events after position ``after`` (to ``upto`` at most);
        fewer means the log (or ``upto``) ends there."""
        integrity = self._integrity
        known = integrity.tree_size() if integrity is not None else 0
        events = self._service.store.read_log(after, BATCH, upto)
        if integrity is not None:
            integrity.verify(events, after=after)
            if len(events) < BATCH:
                end = events[-1].position if events else after
                integrity.verify_end(end, known if upto is None else min(known, upto))
        return events
