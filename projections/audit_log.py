"""The ledger's transparency log over the persisted Merkle tree
(projections.audit_tree): signed checkpoints, proofs and leaf hashes.

`AuditLog` keeps nothing of the tree in memory: a root or a proof reads its
O(log n) hashes from the database (projections.audit_nodes), so startup time
and memory do not grow with the log, and every replica answers proofs over
what the leader stored.

A checkpoint is never signed over a tree smaller than one already signed
(that would look like a rollback to every partner): while the tree is behind
the largest stored checkpoint (a rebuild catching up) signing answers
`Unavailable`; before signing, the stored tree must reproduce the latest
stored root, or the tree was rewritten and the log refuses to sign
(`ForkedLeaves`). Only the leader signs (projections.leadership), and a
checkpoint is stored through its fence before anyone sees it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from ledger.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    sign_checkpoint,
    verify_checkpoint,
)
from ledger.audit.merkle import HASH_SIZE, TreeRangeError, node_hash
from ledger.audit.tlog import InclusionProof, SignedCheckpoint
from ledger.domain.errors import OutOfRange, Unavailable
from projections.audit_nodes import NODES, prove
from projections.audit_tree import (
    CHECKPOINTS,
    LEAVES,
    MerkleProjection,
    read_leaf_hashes,
    store_checkpoint,
    stored_checkpoints,
)
from projections.leadership import Leadership, SoloLeadership
from projections.storage import (
    TRACKING_TABLE,
    ProjectionDatabase,
    Tx,
    ensure_position,
    read_position,
)

log = logging.getLogger(__name__)

LEAF_CHUNK = 1024  # leaves read and cached together for the integrity checks
LEAF_CACHE_CHUNKS = 256  # 8 MiB at most

class ForkedLeaves(ValueError):
    """The stored leaf hashes do not reproduce a checkpoint the ledger signed."""


class AuditLog:
    """The ledger's transparency log over the persisted tree: checkpoints
    (signed by the leader and stored), proofs, leaf hashes. Thread-safe;
    holds no tree state, so any number of replicas can answer from one
    database."""

    def __init__(self, db: ProjectionDatabase, signer: Signer, *, origin: str | None = None,
                 leadership: Leadership | None = None) -> None:
        self.db = db
        self.signer = signer
        # Only the leader signs, and stores what it signed through the fence.
        self.leadership: Leadership = leadership or SoloLeadership(db)
        self.origin = origin or signer.name
        self.on_signed: Callable[[SignedCheckpoint], None] | None = None  # e.g. metrics
        self._lock = threading.RLock()
        self._halted: str | None = None
        self._notes: dict[str, SignedCheckpoint | None] = {}  # verified notes (None: not ours)
        self._leaf_cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        db.create_tracking_table()
        with db.setting_up() as tx:
            MerkleProjection().create_tables(tx)
            ensure_position(tx, MerkleProjection.name)
        with db.transaction(commit=False) as tx:
            latest = self._latest_in(tx)
            if latest is not None and latest.checkpoint.size <= self._size_in(tx):
                self._check_reproduces(tx, latest)

    # -- the stored tree ---------------------------------------------------
    @staticmethod
    def _size_in(tx: Tx) -> int:
        return read_position(tx, MerkleProjection.name)[0]

    @property
    def size(self) -> int:
        """Leaves in the stored tree (the Merkle projection's committed position)."""
        with self.db.reading() as tx:
            return self._size_in(tx)

    def sync(self) -> int:
        """The stored tree's size (nothing to follow: the tree is in the database)."""
        return self.size

    def leaf_hash(self, position: int) -> bytes | None:
        """The stored leaf hash of ``position`` (None beyond the tree).

        Every event a read returns is checked against its leaf
        (ledger.application.integrity), so leaves are read a chunk at a time
        and the last chunks kept (bounded: LEAF_CACHE_CHUNKS of 32 KiB). A
        cached leaf is what the ledger recorded when it first read it; a
        leaf row rewritten later is the scrub's to find (check_pairs)."""
        if position < 1:
            return None
        chunk, offset = divmod(position - 1, LEAF_CHUNK)
        with self._cache_lock:
            block = self._leaf_cache.get(chunk)
            if block is not None:
                self._leaf_cache.move_to_end(chunk)
        if block is None or len(block) <= offset * HASH_SIZE:
            with self.db.reading() as tx:
                size = self._size_in(tx)
                if position > size:
                    return None
                rows = read_leaf_hashes(tx, chunk * LEAF_CHUNK,
                                        min(size, (chunk + 1) * LEAF_CHUNK))
            hashes = []
            for expected, (p, digest) in enumerate(rows, chunk * LEAF_CHUNK + 1):
                if p != expected:
                    break  # a gap: keep what precedes it
                hashes.append(digest)
            block = b"".join(hashes)
            with self._cache_lock:
                self._leaf_cache[chunk] = block
                while len(self._leaf_cache) > LEAF_CACHE_CHUNKS:
                    self._leaf_cache.popitem(last=False)
        if len(block) <= offset * HASH_SIZE:
            return None
        return block[offset * HASH_SIZE:(offset + 1) * HASH_SIZE]

    def leaf_rows(self, after: int, upto: int) -> list[tuple[int, bytes]]:
        """The stored ``audit_leaves`` rows in (after, upto]."""
        with self.db.reading() as tx:
            return read_leaf_hashes(tx, after, upto)

    def check_pairs(self, after: int, upto: int) -> int | None:
        """The first position in (after, upto] whose leaf row disagrees with
        the stored subtree over it and its sibling (level 1), else None: a
        leaf row rewritten on its own (the scrub's; `verify --database`
        recomputes every level)."""
        first = after - after % 2  # leaf index of the first pair
        with self.db.reading() as tx:
            leaves = read_leaf_hashes(tx, first, upto)
            nodes = tx.fetchall(f"SELECT idx, hash FROM {tx.table(NODES)} WHERE level = 1 "
                                "AND idx >= ? AND idx < ?", (first // 2, upto // 2))
        stored = {int(i): bytes(h) for i, h in nodes}
        for k in range(0, len(leaves) - 1, 2):
            (left_pos, left), (_, right) = leaves[k], leaves[k + 1]
            if left_pos % 2 == 1 and stored.get(left_pos // 2) != node_hash(left, right):
                return left_pos
        return None

    def halt(self, reason: str) -> None:
        """Stops signing for good (the stored log no longer matches the tree)."""
        self._halted = reason

    def _check_reproduces(self, tx: Tx, signed: SignedCheckpoint) -> None:
        size = signed.checkpoint.size
        try:
            root = prove(tx, size, lambda tree: tree.root(size))
        except TreeRangeError as exc:
            raise ForkedLeaves(f"the stored tree cannot reproduce the signed checkpoint of size "
                               f"{size}: {exc}; refusing to sign") from None
        if root != signed.checkpoint.root_hash:
            raise ForkedLeaves(f"the stored leaf hashes do not reproduce the signed checkpoint "
                               f"of size {size}: {LEAVES} was rewritten; refusing to sign")

    # -- checkpoints -------------------------------------------------------
    def _verify(self, note: str) -> SignedCheckpoint | None:
        if note not in self._notes:
            try:
                cp = verify_checkpoint(note, self.signer.verifier, origin=self.origin)
                self._notes[note] = SignedCheckpoint(cp, note)
            except CheckpointError:
                log.warning("a stored checkpoint is not signed by %s: ignored",
                            self.signer.verifier.vkey)
                self._notes[note] = None
            if len(self._notes) > 256:  # only the latest few are asked for again
                self._notes.pop(next(iter(self._notes)))
        return self._notes[note]

    def _latest_in(self, tx: Tx) -> SignedCheckpoint | None:
        """The largest (then latest) stored checkpoint this key signed (others: a rotated key)."""
        for limit in (1, 50):
            for note in stored_checkpoints(tx, limit):
                signed = self._verify(note)
                if signed is not None:
                    return signed
        return None

    def latest(self) -> SignedCheckpoint | None:
        with self.db.reading() as tx:
            return self._latest_in(tx)

    def sign(self, now: int) -> SignedCheckpoint:
        """Signs (and stores) a checkpoint of the stored tree as it is now."""
        with self._lock:
            if self._halted is not None:
                raise Unavailable(f"checkpoint signing stopped: {self._halted}", retry_after=60.0)
            if not self.leadership.leading():
                raise Unavailable("this replica does not sign checkpoints (the leader does)",
                                  retry_after=1.0)
            with self.db.reading() as tx:
                size = self._size_in(tx)
                before = self._latest_in(tx)
                if before is not None:
                    if before.checkpoint.size > size:
                        raise Unavailable(f"the Merkle tree is catching up ({size} of "
                                          f"{before.checkpoint.size} signed leaves)")
                    if before.checkpoint.size == size and before.checkpoint.timestamp == now:
                        return before
                    self._check_reproduces(tx, before)
                    # A new leader's clock may be behind the last one's.
                    now = max(now, before.checkpoint.timestamp or 0)
                root = prove(tx, size, lambda tree: tree.root(size))
            checkpoint = Checkpoint(self.origin, size, root, timestamp=now)
            signed = SignedCheckpoint(checkpoint, sign_checkpoint(checkpoint, self.signer))
            try:
                with self.leadership.fenced() as tx:
                    store_checkpoint(tx, signed)
            except Exception as exc:  # NotLeader, or the lock connection broke
                # Not stored, so never handed out.
                raise Unavailable(f"the checkpoint was not stored ({exc}); "
                                  "the leadership may have moved", retry_after=1.0) from exc
        if self.on_signed is not None:
            self.on_signed(signed)
        return signed

    def due(self, now: int, interval: int) -> bool:
        if not self.leadership.leading() or self._halted is not None:
            return False
        with self.db.reading() as tx:
            last = self._latest_in(tx)
            if last is None:
                return True
            grew = self._size_in(tx) > last.checkpoint.size
        return grew and (last.checkpoint.timestamp is None or
                         now - last.checkpoint.timestamp >= interval)

    # -- proofs ------------------------------------------------------------
    def tree_size(self, tree_size: int = 0) -> int:
        """`tree_size` checked against the tree (0: the latest checkpoint's)."""
        with self.db.reading() as tx:
            return self._signed_size(tx, tree_size)

    def _state_in(self, tx: Tx) -> tuple[int, SignedCheckpoint | None]:
        """(stored tree size, latest checkpoint) in one round trip (proofs are
        latency-bound by round trips, not by the database's work)."""
        rows = tx.fetchall(
            f"SELECT (SELECT position FROM {tx.table(TRACKING_TABLE)} WHERE name = ?), "
            f"(SELECT note FROM {tx.table(CHECKPOINTS)} ORDER BY size DESC, timestamp DESC "
            "LIMIT 1)", (MerkleProjection.name,))
        size, note = rows[0]
        latest = self._verify(str(note)) if note is not None else None
        if latest is None and note is not None:  # the newest is another key's
            latest = self._latest_in(tx)
        return int(size or 0), latest

    def _signed_size(self, tx: Tx, tree_size: int) -> int:
        stored, latest = self._state_in(tx)
        if latest is None:
            raise Unavailable("no checkpoint has been signed yet")
        size = tree_size or latest.checkpoint.size
        if size > stored:
            raise OutOfRange(f"tree size {size} is beyond the tree ({stored} leaves)")
        return size

    def _within(self, tx: Tx, tree_size: int, what: str, value: int) -> int:
        """The signed tree size to prove against, with `value` (a position or
        a first size) checked to be within it."""
        size = self._signed_size(tx, tree_size)
        if value > size:
            raise OutOfRange(f"{what} {value} is beyond the tree of size {size}")
        return size

    def inclusion_proof(self, position: int, tree_size: int = 0) -> InclusionProof:
        with self.db.reading() as tx:
            size = self._within(tx, tree_size, "position", position)
            if position < 1:
                raise OutOfRange(f"position {position} is not in a tree of {size}")
            try:
                hashes, leaf = prove(tx, size, lambda tree: (
                    tree.inclusion_proof(position - 1, size), tree.leaf_hash(position - 1)))
            except TreeRangeError as exc:
                raise OutOfRange(str(exc)) from None
        return InclusionProof(position - 1, size, leaf, tuple(hashes))

    def consistency_proof(self, first: int, second: int = 0) -> tuple[int, int, tuple[bytes, ...]]:
        with self.db.reading() as tx:
            size = self._within(tx, second, "first tree size", first)
            try:
                hashes = prove(tx, size, lambda tree: tree.consistency_proof(first, size))
            except TreeRangeError as exc:
                raise OutOfRange(str(exc)) from None
        return first, size, tuple(hashes)

    def leaf_hashes(self, start: int, count: int, tree_size: int = 0) -> tuple[int, bytes]:
        """(tree size, up to `count` leaf hashes from leaf index `start`, concatenated)."""
        with self.db.reading() as tx:
            size = self._within(tx, tree_size, "start index", start)
            rows = read_leaf_hashes(tx, start, min(size, start + count))
        return size, b"".join(h for _, h in rows)
