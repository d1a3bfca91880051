"""RFC 9162 section 2.1 Merkle trees: hashes, proofs and their verification.

Hashing (SHA-256 throughout):

    leaf hash  = SHA-256(0x00 || leaf bytes)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n

Proof *generation* reads a `HashStore` (memstore.MemoryHashStore in memory):
leaf hashes plus, optionally, cached hashes of complete subtrees (2**level
leaves starting at index * 2**level).
Every node of an RFC 9162 tree of any size is either such a complete aligned
subtree or lies on the right edge, so with the cache a proof costs
O(log^2 n) store reads whatever the tree size; without it, it degrades to
reading the leaves. Nodes are immutable once complete (the log only grows),
so a store may be read while it is being appended to.

`Frontier` is the compact range of a tree (one hash per set bit of its size):
appending a leaf costs O(1) amortised hashes, reports the complete subtrees it
just finished (what a persistent store writes), and gives the root in O(log n).

Proof *verification* (`check_inclusion`, `check_consistency`) follows the
algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2 literally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256 as _sha256
from typing import Protocol, runtime_checkable

HASH_SIZE = 32
EMPTY_ROOT = _sha256(b"").digest()

Node = tuple[int, int, bytes]
"""A complete subtree: (level >= 1, index, hash); it covers the leaves
[index * 2**level, (index + 1) * 2**level)."""


class ProofError(ValueError):
    """A proof does not verify (the message says why)."""


class TreeRangeError(ValueError):
    """A leaf index or tree size outside the tree (gRPC: OUT_OF_RANGE)."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def next_level(level: Sequence[bytes]) -> list[bytes]:
    """Hashes of the complete pairs of a level (an odd last node is dropped)."""
    it = iter(level)
    return [_sha256(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, level by level (an unpaired last node moves up
    unchanged, which is the same tree as RFC 9162's largest-power-of-two split)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        up = next_level(level)
        if len(level) & 1:
            up.append(level[-1])
        level = up
    return level[0]


def mth(leaves: Iterable[bytes]) -> bytes:
    """MTH of the leaf inputs themselves."""
    return root_from_leaf_hashes([leaf_hash(d) for d in leaves])


# -- stores -----------------------------------------------------------------


@runtime_checkable
class HashStore(Protocol):
    """What proof generation reads. Implementations must be append-only."""

    def size(self) -> int: ...

    def leaf_hash(self, index: int) -> bytes: ...

    def node_hash(self, level: int, index: int) -> bytes | None:
        """The hash of complete subtree (level >= 1, index) if cached, else None."""
        ...


@runtime_checkable
class WritableHashStore(HashStore, Protocol):
    def append(self, leaf_hash: bytes, nodes: Sequence[Node]) -> None:
        """Stores the next leaf hash and the complete subtrees it finished
        (as returned by Frontier.append)."""
        ...


# -- the compact range ------------------------------------------------------


class Frontier:
    """The roots of the complete subtrees that make up a tree of `size`
    leaves, largest first (one per set bit of size)."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of {size} leaves has {max(size, 0).bit_count()} hashes")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_tree(cls, tree: MerkleTree, size: int | None = None) -> Frontier:
        size = tree.size if size is None else size
        hashes: list[bytes] = []
        start = 0
        for bit in range(size.bit_length() - 1, -1, -1):
            if size >> bit & 1:
                hashes.append(tree.subtree_hash(start, start + (1 << bit)))
                start += 1 << bit
        return cls(size, hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Adds a leaf; returns the complete subtrees (level >= 1) it finished."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        finished: list[Node] = []
        digest, index, level = leaf_hash, self._size, 0
        while index & 1:
            digest = node_hash(self._hashes.pop(), digest)
            index >>= 1
            level += 1
            finished.append((level, index, digest))
        self._hashes.append(digest)
        self._size += 1
        return finished

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        digest = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            digest = node_hash(left, digest)
        return digest


# -- the tree ---------------------------------------------------------------


class MerkleTree:
    """Roots and proofs over a HashStore; appends if the store is writable."""

    __slots__ = ("_frontier", "_store")

    def __init__(self, store: HashStore) -> None:
        self._store = store
        self._frontier: Frontier | None = None

    @property
    def store(self) -> HashStore:
        return self._store

    @property
    def size(self) -> int:
        return self._store.size()

    def _tree_size(self, size: int | None) -> int:
        current = self._store.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise TreeRangeError(f"tree size {size} outside 0..{current}")
        return size

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]); O(log n) store reads for the subtrees of a proof."""
        if not 0 <= start < end <= self._store.size():
            raise TreeRangeError(f"subtree [{start}, {end}) outside a tree of {self.size}")
        return self._mth(start, end)

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return self._store.leaf_hash(start)
        if n & (n - 1) == 0 and start & (n - 1) == 0:
            level = n.bit_length() - 1
            cached = self._store.node_hash(level, start >> level)
            if cached is not None:
                return cached
        k = _split(n)
        return node_hash(self._mth(start, start + k), self._mth(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = self._tree_size(size)
        frontier = self._frontier
        if frontier is not None and frontier.size == size:
            return frontier.root()
        return self._mth(0, size) if size else EMPTY_ROOT

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < self._store.size():
            raise TreeRangeError(f"leaf index {index} outside a tree of {self.size}")
        return self._store.leaf_hash(index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) of RFC 9162 2.1.3.1, leaf-side first."""
        size = self._tree_size(size)
        if not 0 <= index < size:
            raise TreeRangeError(f"leaf index {index} outside a tree of {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            mid = start + _split(end - start)
            if index < mid:
                proof.append(self._mth(mid, end))
                end = mid
            else:
                proof.append(self._mth(start, mid))
                start = mid
        proof.reverse()
        return proof

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """PROOF(size1, D[size2]) of RFC 9162 2.1.4.1 (empty if size1 is 0 or
        equals size2)."""
        size2 = self._tree_size(size2)
        if not 0 <= size1 <= size2:
            raise TreeRangeError(f"first tree size {size1} outside 0..{size2}")
        if size1 in (0, size2):
            return []
        proof: list[bytes] = []
        start, end, m, whole = 0, size2, size1, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self._mth(start + k, end))
                end = start + k
            else:
                proof.append(self._mth(start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:
            proof.append(self._mth(start, end))
        proof.reverse()
        return proof

    def append(self, leaf_hash: bytes) -> int:
        """Appends a leaf hash to a writable store; returns its index. The
        root of the new tree is then O(log n) away (root())."""
        store = self._store
        if not isinstance(store, WritableHashStore):
            raise TypeError("the store of this tree is read-only")
        frontier = self._frontier
        if frontier is None or frontier.size != store.size():
            frontier = self._frontier = Frontier.from_tree(self)
        nodes = frontier.append(leaf_hash)
        try:
            store.append(leaf_hash, nodes)
        except BaseException:
            self._frontier = None
            raise
        return frontier.size - 1

    def append_leaf(self, data: bytes) -> int:
        return self.append(leaf_hash(data))


# -- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ----------------------------


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError(f"a hash is {HASH_SIZE} bytes, got {len(h)}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes,
                              proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for leaf hash `leaf` at `index`."""
    _check_hashes(leaf, *proof)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof too short")
    return r


def check_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                    root: bytes) -> None:
    """Raises ProofError unless leaf hash `leaf` is at `index` of the tree of
    `size` leaves with `root`."""
    _check_hashes(root)
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> bool:
    try:
        check_inclusion(index, size, leaf, proof, root)
    except ProofError:
        return False
    return True


def check_consistency(size1: int, size2: int, root1: bytes, root2: bytes,  # noqa: C901, PLR0912  RFC 9162 2.1.4.2 step by step, kept whole to be checked against the RFC
                      proof: Sequence[bytes]) -> None:
    """Raises ProofError unless the tree (size1, root1) is a prefix of the tree
    (size2, root2). The empty tree (root SHA-256("")) is a prefix of every tree,
    with an empty proof."""
    _check_hashes(root1, root2, *proof)
    if not 0 <= size1 <= size2:
        raise ProofError(f"sizes {size1} -> {size2}: a log only grows")
    if size1 in (size2, 0):
        if proof:
            raise ProofError("the proof must be empty")
        if size1 == size2 and root1 != root2:
            raise ProofError("same size, different roots")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("the root of the empty tree is SHA-256('')")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof too short")
    if fr != root1:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the second root")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes,
                       proof: Sequence[bytes]) -> bool:
    try:
        check_consistency(size1, size2, root1, root2, proof)
    except ProofError:
        return False
    return True
