"""Audit use cases (proto/ledger/v1/audit.proto): checkpoints, proofs and leaf
hashes over the persisted transparency log (projections.audit_log.AuditLog).

Checkpoints, consistency proofs and leaf hashes reveal no event content and
are open to every principal. An inclusion proof carries the event's leaf
bytes, so it is answered only for events the principal may see; an event of
someone else's agreement is NOT_FOUND, exactly like one that does not exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.application.integrity import Integrity
from ledger.application.ledger_service import LedgerService
from ledger.application.ports import AuditLog, EventStore
from ledger.application.scoping import visible_agreement_of
from ledger.audit.leaf import leaf_bytes
from ledger.audit.tlog import InclusionProof, SignedCheckpoint
from ledger.domain.access import Principal
from ledger.domain.errors import InvalidArgument, NotFound, OutOfRange, Unavailable

MAX_LEAF_HASHES = 65536  # 2 MiB per page
MAX_LEAVES = 10_000


@dataclass(frozen=True, slots=True)
class ProvenEvent:
    proof: InclusionProof
    leaf_bytes: bytes  # as the event is stored now: must hash to proof.leaf_hash


class AuditService:
    def __init__(self, store: EventStore, log: AuditLog, ledger: LedgerService,
                 clock: Callable[[], int], *,
                 catch_up: Callable[[], object] = lambda: None,
                 integrity: Integrity | None = None) -> None:
        self.integrity = integrity
        self.store = store
        self.log = log
        self.ledger = ledger
        self.clock = clock
        self.catch_up = catch_up  # brings the Merkle projection to the end of the log
        self.leader_wait = 5.0  # seconds a follower waits for the leader's checkpoint

    @property
    def public_key(self) -> str:
        return self.log.signer.verifier.vkey

    def checkpoint(self, refresh: bool = False) -> SignedCheckpoint:
        """The latest signed checkpoint; with refresh (or if none was signed
        yet), one of the whole log as stored now."""
        latest = self.log.latest()
        if refresh or latest is None:
            if not self.log.leadership.leading():
                return self._from_leader(self.store.max_position())
            self.catch_up()
            return self.log.sign(self.clock())
        return latest

    def _from_leader(self, size: int) -> SignedCheckpoint:
        """A follower asks the leader to sign and waits (bounded) for the
        stored checkpoint covering `size` events."""
        self.log.leadership.request_checkpoint()
        deadline = time.monotonic() + self.leader_wait
        step = 0.005
        while True:
            latest = self.log.latest()
            if latest is not None and latest.checkpoint.size >= size:
                return latest
            if time.monotonic() >= deadline:
                raise Unavailable("the leader has not signed a checkpoint covering "
                                  f"{size} events yet", retry_after=1.0)
            time.sleep(step)  # bounded polling of the checkpoint table
            step = min(step * 2, 0.1)

    def checkpoint_covering(self, position: int) -> SignedCheckpoint:
        """A signed checkpoint whose tree holds every event up to `position`:
        the latest if it does, else a new one."""
        latest = self.log.latest()
        if latest is not None and latest.checkpoint.size >= position:
            return latest
        return self.checkpoint(refresh=True)

    @property
    def key_id(self) -> str:
        return f"{self.log.signer.key_id:08x}"

    def checkpoint_if_due(self, interval: int, catch_up: bool = False) -> SignedCheckpoint | None:
        """Signs when the log grew and `interval` µs passed since the last one
        (with catch_up: over every event stored now, as a follower asked)."""
        if catch_up and self.log.leadership.leading():
            self.catch_up()
        now = self.clock()
        return self.log.sign(now) if self.log.due(now, interval) else None

    def inclusion_proof(self, principal: Principal, *, position: int = 0, event_id: str = "",
                        tree_size: int = 0, agreement_id: str = "") -> ProvenEvent:
        if tree_size < 0:
            raise InvalidArgument("tree_size", "must not be negative (0: the latest checkpoint)")
        if event_id:
            position = self._event_position(principal, event_id, agreement_id)
        elif position < 1:
            raise InvalidArgument("position", f"positions start at 1, got {position}")
        label = event_id or f"position {position}"
        known = self.log.size
        stored = self.store.read_log(position - 1, 1)
        if self.integrity is not None:  # a proof of changed bytes would mislead
            self.integrity.verify(stored, after=position - 1)
            if not stored:
                self.integrity.verify_end(position - 1, min(known, position))
        if not stored or stored[0].position != position or \
                not self.ledger.visible_filter(principal)(stored[0]):
            raise NotFound("event", label)
        proof = self.log.inclusion_proof(position, tree_size)
        return ProvenEvent(proof, leaf_bytes(stored[0]))

    def _event_position(self, principal: Principal, event_id: str, agreement_id: str) -> int:
        """Event ids are scoped by agreement (reading 28): the one the caller
        may see, in the agreement given if any; unseen is NOT_FOUND."""
        found = {agreement: position for agreement, position in self.store.find_event(event_id)
                 if not agreement_id or agreement == agreement_id}
        return found[visible_agreement_of(principal, "event", event_id, found, self.ledger.agreement)]

    def consistency_proof(self, first: int, second: int = 0) -> tuple[int, int, tuple[bytes, ...]]:
        if first < 0:
            raise InvalidArgument("first_tree_size", "must not be negative")
        if second < 0:
            raise InvalidArgument("second_tree_size", "must not be negative (0: the latest checkpoint)")
        if second and first > second:
            raise OutOfRange(f"first tree size {first} is after the second, {second}: "
                             "a log only grows")
        return self.log.consistency_proof(first, second)

    def leaf_hashes(self, start: int, tree_size: int = 0, max_count: int = 0) -> tuple[int, bytes]:
        if start < 0:
            raise InvalidArgument("start_index", "must not be negative")
        if tree_size < 0:
            raise InvalidArgument("tree_size", "must not be negative (0: the latest checkpoint)")
        if max_count < 0:
            raise InvalidArgument("max_count", "must not be negative")
        count = min(max_count or MAX_LEAF_HASHES, MAX_LEAF_HASHES)
        return self.log.leaf_hashes(start, count, tree_size)

    def list_leaves(self, principal: Principal, after: int, tree_size: int = 0,
                    agreement_id: str = "", page_size: int = 0,
                    ) -> tuple[list[tuple[int, bytes]], int, int]:
        """(position and leaf bytes of the visible events in (after, after +
        page], last position scanned, tree size)."""
        if after < 0:
            raise InvalidArgument("after_position", "must not be negative")
        if tree_size < 0:
            raise InvalidArgument("tree_size", "must not be negative (0: the latest checkpoint)")
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        size = self.log.tree_size(tree_size)
        if after > size:
            raise OutOfRange(f"after_position {after} is beyond the tree of size {size}")
        if agreement_id:
            self.ledger.visible_agreement(principal, agreement_id)  # NotFound if not a party
        visible = self.ledger.visible_filter(principal)
        events = self.store.read_log(after, min(page_size or MAX_LEAVES, MAX_LEAVES), upto=size)
        if self.integrity is not None:
            self.integrity.verify(events, after=after)
            if len(events) < min(page_size or MAX_LEAVES, MAX_LEAVES):
                self.integrity.verify_end(events[-1].position if events else after, size)
        leaves = [(e.position, leaf_bytes(e)) for e in events
                  if visible(e) and (not agreement_id or e.agreement_id == agreement_id)]
        # a page that ends early (rows missing from the store) ends the scan
        last = events[-1].position if events and len(events) >= (page_size or MAX_LEAVES) \
            else size
        return leaves, last, size
