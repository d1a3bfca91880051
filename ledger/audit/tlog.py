"""A verifiable log in memory, transport-free: the Merkle tree over stored
events, checkpoint issuing and proofs as the audit service
(proto/ledger/v1/audit.proto) returns them. Times are parameters (µs).

The running ledger keeps its tree in the database (projections.audit_log);
the tests use this one as the reference its answers are checked against, and
as the log of shard heads. The value types both return (SignedCheckpoint,
InclusionProof) live here."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ledger.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from ledger.audit.leaf import event_leaf_hash
from ledger.audit.memstore import MemoryHashStore
from ledger.audit.merkle import MerkleTree, TreeRangeError, WritableHashStore
from ledger.domain.events import LedgerEvent


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str  # the signed note text (GetCheckpointResponse.checkpoint)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int  # position - 1
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]


class TransparencyLog:
    """Appends stored events in position order, signs checkpoints, answers
    proofs. Thread-safe: one appender, any number of readers."""

    def __init__(self, signer: Signer, *, origin: str | None = None,
                 store: WritableHashStore | None = None,
                 latest: SignedCheckpoint | None = None) -> None:
        self._signer = signer
        self.origin = origin or signer.name
        self._tree = MerkleTree(store if store is not None else MemoryHashStore())
        self._lock = threading.Lock()
        self._latest = latest
        if latest is not None and latest.checkpoint.size > self._tree.size:
            raise ValueError("the last checkpoint is ahead of the tree")

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def tree(self) -> MerkleTree:
        return self._tree

    def append(self, event: LedgerEvent) -> bytes:
        """Adds the next stored event (position size + 1); returns its leaf hash."""
        digest = event_leaf_hash(event)
        self.append_hash(event.position, digest)
        return digest

    def append_hash(self, position: int, digest: bytes) -> None:
        """Adds the leaf hash of the event at `position` (size + 1), as a
        persistent projection recorded it."""
        with self._lock:
            if position != self._tree.size + 1:
                raise ValueError(f"event at position {position}, the log expects "
                                 f"{self._tree.size + 1}")
            self._tree.append(digest)

    def latest(self) -> SignedCheckpoint | None:
        return self._latest

    def sign(self, now: int) -> SignedCheckpoint:
        """Signs a checkpoint of the tree as it is (timestamp `now`, µs)."""
        with self._lock:
            size, root = self._tree.size, self._tree.root()
        signed = self._latest
        if signed is not None and signed.checkpoint.size == size and \
                signed.checkpoint.timestamp == now:
            return signed
        checkpoint = Checkpoint(self.origin, size, root, timestamp=now)
        signed = SignedCheckpoint(checkpoint, sign_checkpoint(checkpoint, self._signer))
        with self._lock:
            if self._latest is None or self._latest.checkpoint.size <= size:
                self._latest = signed
        return signed

    def due(self, now: int, interval: int) -> bool:
        """Whether a checkpoint is due: the log grew since the last one and
        `interval` µs have passed since it (or there is none yet)."""
        last = self._latest
        if last is None:
            return True
        grew = self._tree.size > last.checkpoint.size
        return grew and (last.checkpoint.timestamp is None or
                         now - last.checkpoint.timestamp >= interval)

    def _tree_size(self, tree_size: int) -> int:
        if tree_size:
            return tree_size
        if self._latest is None:
            raise TreeRangeError("no checkpoint has been signed yet")
        return self._latest.checkpoint.size

    def inclusion_proof(self, position: int, tree_size: int = 0) -> InclusionProof:
        """Proof for the event at `position` in the tree of `tree_size` leaves
        (0: the latest checkpoint's size). TreeRangeError: OUT_OF_RANGE."""
        size = self._tree_size(tree_size)
        if not 1 <= position <= size:
            raise TreeRangeError(f"position {position} is not in a tree of {size}")
        hashes = tuple(self._tree.inclusion_proof(position - 1, size))
        return InclusionProof(position - 1, size, self._tree.leaf_hash(position - 1), hashes)

    def consistency_proof(self, first: int, second: int = 0) -> tuple[int, int, tuple[bytes, ...]]:
        """(first, second, proof); second 0 means the latest checkpoint's size."""
        size = self._tree_size(second)
        return first, size, tuple(self._tree.consistency_proof(first, size))
