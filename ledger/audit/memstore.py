"""An in-memory HashStore: every leaf hash and every complete subtree hash.

The embedded default and the offline verifier use it; a database-backed store
implements the same protocol (ledger.audit.merkle.HashStore).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger.audit.merkle import HASH_SIZE, Node, TreeRangeError, next_level


class MemoryHashStore:
    """All leaf hashes and all complete subtree hashes, 32 bytes each, in one
    bytearray per level (about 64 bytes per leaf in total)."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MemoryHashStore:
        """Bulk build: every complete subtree hashed once, level by level."""
        store = cls()
        level = list(hashes)
        if any(len(h) != HASH_SIZE for h in level):
            raise ValueError("leaf hashes must be 32 bytes")
        store._levels[0] = bytearray(b"".join(level))
        while len(level) >= 2:
            level = next_level(level)
            store._levels.append(bytearray(b"".join(level)))
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

    def leaf_hashes(self) -> list[bytes]:
        data = self._levels[0]
        return [bytes(data[i:i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]

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
