"""The verifiable log, persisted: leaf hashes as a projection of the event
log, signed checkpoints in a table, an in-memory Merkle tree for proofs.

Tables (in the event store's database, next to the tracking table):

    audit_leaves(position PK, leaf_hash)      one row per stored event
    audit_checkpoints(size, timestamp, note)  every checkpoint ever signed

`MerkleProjection.apply` computes each leaf hash from the stored event as the
runner decoded it (ledger.audit.leaf: position, recorded_at, submitted_by,
payload...) and inserts it in the same transaction as the tracking position,
so the leaves are exactly-once and gap-free like every other read model.

Why the in-memory tree reads committed rows instead of being fed by `apply`:
`apply` runs inside the runner's transaction, which may still roll back (a
failed batch is retried from its first position), and the runner has one
`on_commit` listener that metrics may own. A tree advanced from `apply`
could then sign a root over leaves that were never stored. So
`AuditLog.sync()` appends only rows it reads back from `audit_leaves`
(committed by definition) after the tree's size; it runs before every
checkpoint and proof, costs one indexed range query, and is also correct when
another process maintains the projection or it is rebuilt.

A checkpoint is never signed over a tree smaller than one already signed
(that would look like a rollback to every partner): while the tree is behind
the largest stored checkpoint (a rebuild catching up) signing answers
`Unavailable`; once it catches up, the stored root must be reproduced, or the
leaves were rewritten and the log refuses to sign (`ForkedLeaves`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ledger.audit.checkpoint import CheckpointError, Signer, verify_checkpoint
from ledger.audit.leaf import event_leaf_hash
from ledger.audit.memstore import MemoryHashStore
from ledger.audit.merkle import TreeRangeError
from ledger.audit.tlog import InclusionProof, SignedCheckpoint, TransparencyLog
from ledger.domain.errors import OutOfRange, Unavailable
from ledger.domain.events import LedgerEvent
from projections.leadership import Leadership, SoloLeadership
from projections.storage import ProjectionDatabase, Tx

log = logging.getLogger(__name__)

LEAVES = "audit_leaves"
CHECKPOINTS = "audit_checkpoints"


class ForkedLeaves(ValueError):
    """The stored leaf hashes do not reproduce a checkpoint the ledger signed."""


def _blob(tx: Tx) -> str:
    return "BYTEA" if tx.is_postgres else "BLOB"


class MerkleProjection:
    """Leaf hashes of the global log, one row per position."""

    name = "audit_merkle"

    def create_tables(self, tx: Tx) -> None:
        tx.execute(f"CREATE TABLE IF NOT EXISTS {tx.table(LEAVES)} ("
                   f"position BIGINT PRIMARY KEY, leaf_hash {_blob(tx)} NOT NULL)")
        tx.execute(f"CREATE TABLE IF NOT EXISTS {tx.table(CHECKPOINTS)} ("
                   "size BIGINT NOT NULL, timestamp BIGINT NOT NULL, note TEXT NOT NULL, "
                   "PRIMARY KEY (size, timestamp))")

    def clear(self, tx: Tx) -> None:
        # Signed checkpoints stay: they are what a rebuilt tree must reproduce.
        tx.execute(f"DELETE FROM {tx.table(LEAVES)}")

    def apply(self, tx: Tx, events: Sequence[LedgerEvent]) -> None:
        tx.insert_rows(tx.table(LEAVES), "position, leaf_hash",
                       [(e.position, event_leaf_hash(e)) for e in events])


def read_leaf_hashes(tx: Tx, after: int = 0, upto: int | None = None) -> list[tuple[int, bytes]]:
    sql = f"SELECT position, leaf_hash FROM {tx.table(LEAVES)} WHERE position > ?"
    params: list[int] = [after]
    if upto is not None:
        sql += " AND position <= ?"
        params.append(upto)
    return [(int(p), bytes(h)) for p, h in tx.fetchall(sql + " ORDER BY position", params)]


def stored_checkpoints(tx: Tx, limit: int = 50) -> list[str]:
    """Signed notes, newest (largest, then latest) first."""
    rows = tx.fetchall(f"SELECT note FROM {tx.table(CHECKPOINTS)} "
                       "ORDER BY size DESC, timestamp DESC LIMIT ?", (limit,))
    return [str(r[0]) for r in rows]


def store_checkpoint(tx: Tx, signed: SignedCheckpoint) -> None:
    cp = signed.checkpoint
    tx.execute(f"INSERT INTO {tx.table(CHECKPOINTS)} (size, timestamp, note) VALUES (?, ?, ?) "
               "ON CONFLICT (size, timestamp) DO NOTHING", (cp.size, cp.timestamp or 0, signed.note))


class AuditLog:
    """The ledger's transparency log over the persisted leaves: checkpoints
    (signed and stored), proofs, leaf hashes. Thread-safe."""

    def __init__(self, db: ProjectionDatabase, signer: Signer, *, origin: str | None = None,
                 leadership: Leadership | None = None) -> None:
        self.db = db
        self.signer = signer
        # Only the leader signs, and stores what it signed through the fence.
        self.leadership: Leadership = leadership or SoloLeadership(db)
        self.origin = origin or signer.name
        self.on_signed: Callable[[SignedCheckpoint], None] | None = None  # e.g. metrics
        self._lock = threading.RLock()
        with db.transaction() as tx:
            MerkleProjection().create_tables(tx)
        with db.transaction(commit=False) as tx:
            hashes = [h for _, h in read_leaf_hashes(tx)]
            notes = stored_checkpoints(tx)
        signed = self._verified(notes)
        self._store = MemoryHashStore.from_leaf_hashes(hashes)
        self._log = TransparencyLog(signer, origin=self.origin, store=self._store)
        self._floor: SignedCheckpoint | None = signed[0] if signed else None
        self._halted: str | None = None
        self._check_floor()

    def _verified(self, notes: list[str]) -> list[SignedCheckpoint]:
        """Stored checkpoints this key signed, newest first (others: a rotated key)."""
        out = []
        for note in notes:
            try:
                cp = verify_checkpoint(note, self.signer.verifier, origin=self.origin)
            except CheckpointError:
                continue
            out.append(SignedCheckpoint(cp, note))
        if len(out) < len(notes):
            log.warning("%d stored checkpoint(s) are not signed by %s: ignored",
                        len(notes) - len(out), self.signer.verifier.vkey)
        return out

    def _check_floor(self) -> None:
        """Adopts the largest stored checkpoint as latest once the tree holds it."""
        floor = self._floor
        if floor is None or self._log.size < floor.checkpoint.size:
            return
        size = floor.checkpoint.size
        if self._log.tree.root(size) != floor.checkpoint.root_hash:
            raise ForkedLeaves(f"the stored leaf hashes do not reproduce the signed checkpoint "
                               f"of size {size}: {LEAVES} was rewritten; refusing to sign")
        # adopted without re-signing (a TransparencyLog is given its latest)
        self._log = TransparencyLog(self.signer, origin=self.origin, store=self._store,
                                    latest=floor)
        self._floor = None

    # -- following the projection ------------------------------------------
    @property
    def size(self) -> int:
        return self._log.size

    def sync(self) -> int:
        """Adds the committed leaves after the tree's size; returns the size."""
        with self._lock:
            with self.db.transaction(commit=False) as tx:
                rows = read_leaf_hashes(tx, self._log.size)
            for position, digest in rows:
                self._log.append_hash(position, digest)
            self._check_floor()
            return self._log.size

    def leaf_hash(self, position: int) -> bytes | None:
        """The leaf hash the tree holds for ``position`` (None beyond the tree)."""
        store = self._store
        if not 1 <= position <= store.size():
            return None
        return store.leaf_hash(position - 1)

    def leaf_rows(self, after: int, upto: int) -> list[tuple[int, bytes]]:
        """The stored ``audit_leaves`` rows in (after, upto]."""
        with self.db.transaction(commit=False) as tx:
            return read_leaf_hashes(tx, after, upto)

    def halt(self, reason: str) -> None:
        """Stops signing for good (the stored log no longer matches the tree)."""
        self._halted = reason

    # -- checkpoints -------------------------------------------------------
    def _adopt_stored(self) -> None:
        """Takes up a checkpoint another replica (an earlier leader) stored
        after this one's latest: the tree must reproduce its root before
        this replica signs or proves against it."""
        with self.db.transaction(commit=False) as tx:
            notes = stored_checkpoints(tx, limit=1)
        current = self._floor or self._log.latest()
        if not notes or (current is not None and current.note == notes[0]):
            return
        signed = self._verified(notes)
        if signed and (current is None or signed[0].checkpoint.size > current.checkpoint.size):
            self._floor = signed[0]
            self.sync()

    def latest(self) -> SignedCheckpoint | None:
        if not self.leadership.leading():
            with self._lock:
                self._adopt_stored()
        return self._log.latest() if self._floor is None else self._floor

    def sign(self, now: int) -> SignedCheckpoint:
        """Signs (and stores) a checkpoint of the tree as it is now."""
        with self._lock:
            if self._halted is not None:
                raise Unavailable(f"checkpoint signing stopped: {self._halted}", retry_after=60.0)
            if not self.leadership.leading():
                raise Unavailable("this replica does not sign checkpoints (the leader does)",
                                  retry_after=1.0)
            self.sync()
            self._adopt_stored()
            if self._floor is not None:
                raise Unavailable(f"the Merkle tree is catching up ({self._log.size} of "
                                  f"{self._floor.checkpoint.size} signed leaves)")
            before = self._log.latest()
            signed = self._log.sign(now)
            if signed is not before:
                try:
                    with self.leadership.fenced() as tx:
                        store_checkpoint(tx, signed)
                except Exception as exc:  # NotLeader, or the lock connection broke
                    # Not stored, so never handed out: forget it was signed.
                    self._log = TransparencyLog(self.signer, origin=self.origin,
                                                store=self._store, latest=before)
                    raise Unavailable(f"the checkpoint was not stored ({exc}); "
                                      "the leadership may have moved", retry_after=1.0) from exc
        if signed is not before and self.on_signed is not None:
            self.on_signed(signed)
        return signed

    def due(self, now: int, interval: int) -> bool:
        with self._lock:
            if not self.leadership.leading():
                return False
            self._adopt_stored()
            self.sync()
            return self._floor is None and self._halted is None and self._log.due(now, interval)

    def checkpoint_at_least(self, size: int, now: int) -> SignedCheckpoint:
        """The latest checkpoint if it covers `size` leaves, else a new one."""
        latest = self.latest()
        if latest is not None and latest.checkpoint.size >= size:
            return latest
        return self.sign(now)

    # -- proofs ------------------------------------------------------------
    def tree_size(self, tree_size: int = 0) -> int:
        """`tree_size` checked against the tree (0: the latest checkpoint's)."""
        with self._lock:
            self.sync()
            return self._signed_size(tree_size)

    def _signed_size(self, tree_size: int) -> int:
        latest = self.latest()
        if latest is None:
            raise Unavailable("no checkpoint has been signed yet")
        size = tree_size or latest.checkpoint.size
        if size > self._log.size:
            raise OutOfRange(f"tree size {size} is beyond the tree ({self._log.size} leaves)")
        return size

    @contextmanager
    def _within(self, tree_size: int, what: str, value: int) -> Iterator[int]:
        """The signed tree size to prove against, with `value` (a position or
        a first size) checked to be within it; TreeRangeError -> OutOfRange."""
        with self._lock:
            self.sync()
            size = self._signed_size(tree_size)
            if value > size:
                raise OutOfRange(f"{what} {value} is beyond the tree of size {size}")
            try:
                yield size
            except TreeRangeError as exc:
                raise OutOfRange(str(exc)) from None

    def inclusion_proof(self, position: int, tree_size: int = 0) -> InclusionProof:
        with self._within(tree_size, "position", position) as size:
            return self._log.inclusion_proof(position, size)

    def consistency_proof(self, first: int, second: int = 0) -> tuple[int, int, tuple[bytes, ...]]:
        with self._within(second, "first tree size", first) as size:
            return self._log.consistency_proof(first, size)

    def leaf_hashes(self, start: int, count: int, tree_size: int = 0) -> tuple[int, bytes]:
        """(tree size, up to `count` leaf hashes from leaf index `start`, concatenated)."""
        with self._within(tree_size, "start index", start) as size:
            return size, self._store.leaf_hash_range(start, min(size, start + count))
