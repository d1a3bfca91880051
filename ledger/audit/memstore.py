"""In-memory HashStores.

`MemoryHashStore` is writable and compact (one bytearray per level, about 64
bytes per leaf): the embedded default. `LevelsHashStore` is a read-only view
over lists of hashes, built in one pass: what the offline verifier uses. A
database-backed store implements the same protocol (ledger.audit.merkle.HashStore).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger.audit.merkle import HASH_SIZE, Node, TreeRangeError, next_level


def complete_levels(leaf_hashes: list[bytes]) -> list[list[bytes]]:
    """Every complete subtree hash, level by level (level 0: the leaves)."""
    if sum(map(len, leaf_hashes)) != HASH_SIZE * len(leaf_hashes):
        raise ValueError("leaf hashes must be 32 bytes")
    levels = [leaf_hashes]
    while len(levels[-1]) >= 2:
        levels.append(next_level(levels[-1]))
    return levels


class LevelsHashStore:
    """A read-only store over the complete levels of a list of leaf hashes."""

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self._levels = complete_levels(leaf_hashes)

    def size(self) -> int:
        return len(self._levels[0])

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < len(self._levels[0]):
            raise TreeRangeError(f"leaf index {index} outside a tree of {self.size()}")
        return self._levels[0][index]

    def node_hash(self, level: int, index: int) -> bytes | None:
        if level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        return None


class MemoryHashStore:
    """All leaf hashes and all complete subtree hashes, 32 bytes each, in one
    bytearray per level."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MemoryHashStore:
        """Bulk build: every complete subtree hashed once, level by level."""
        store = cls()
        store._levels = [bytearray(b"".join(level)) for level in complete_levels(list(hashes))]
        return store

    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < self.size():
            raise TreeRangeError(f"leaf index {index} outside a tree of {self.size()}")
        return bytes(self._levels[0][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def node_hash(self, level: int, index: int) -> bytes | None:
        if level >= len(self._levels) or index < 0:
            return None
        data = self._levels[level]
        end = (index + 1) * HASH_SIZE
        return bytes(data[end - HASH_SIZE:end]) if end <= len(data) else None

    def append(self, leaf_hash: bytes, nodes: Sequence[Node]) -> None:
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        self._levels[0] += leaf_hash
        for level, index, digest in nodes:
            while len(self._levels) <= level:
                self._levels.append(bytearray())
            if len(self._levels[level]) != index * HASH_SIZE:
                raise ValueError(f"node ({level}, {index}) out of order")
            self._levels[level] += digest
