"""The Merkle tree persisted the way transparency logs keep theirs: every
complete subtree hash stored once, when the leaf that completes it arrives.

    audit_leaves(position PK, leaf_hash)          level 0 (index = position - 1)
    audit_nodes(level, idx, hash) PK (level, idx)  complete subtree (level >= 1,
                                                  idx) over leaves
                                                  [idx * 2**level, (idx+1) * 2**level)

Appending a batch reads the frontier of the tree (one hash per set bit of
its size: O(log n) rows) and inserts the nodes the batch completes (one per
leaf amortised), in the Merkle projection's own transaction, so nodes,
leaves and the tracking position move together. The stored tree's size is
that tracking position.

A root or a proof needs O(log n) complete subtrees. `prove` first runs the
proof against a store that only records which hashes it is asked for, then
fetches exactly those in one statement (an index look-up per key, no plan
that needs statistics), then runs it again over the fetched hashes. Nothing
about the tree is kept in memory, so a replica starts in constant time and
memory and any replica answers proofs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from ledger.audit.merkle import HASH_SIZE, Frontier, MerkleTree, Node, TreeRangeError, next_level
from projections.storage import Tx

LEAVES = "audit_leaves"
NODES = "audit_nodes"

T = TypeVar("T")
Key = tuple[int, int]  # (level, index); level 0 is a leaf
_PLACEHOLDER = bytes(HASH_SIZE)


def create_node_table(tx: Tx) -> None:
    blob = "BYTEA" if tx.is_postgres else "BLOB"
    tx.execute(f"CREATE TABLE IF NOT EXISTS {tx.table(NODES)} ("
               f"level SMALLINT NOT NULL, idx BIGINT NOT NULL, hash {blob} NOT NULL, "
               "PRIMARY KEY (level, idx))")


def frontier_keys(size: int) -> list[Key]:
    """The complete subtrees a tree of `size` leaves is made of, largest first."""
    return [(level, (size >> level) - 1) for level in range(size.bit_length() - 1, -1, -1)
            if size >> level & 1]


def read_hashes(tx: Tx, keys: Iterable[Key]) -> dict[Key, bytes]:
    """The stored hashes of `keys` (missing ones are absent), in one statement."""
    by_level: dict[int, list[int]] = {}
    for level, index in set(keys):
        by_level.setdefault(level, []).append(index)
    if not by_level:
        return {}
    parts: list[str] = []
    params: list[object] = []
    leaves = by_level.pop(0, None)
    if leaves:
        cond, values = tx.in_list("position", [i + 1 for i in leaves])
        parts.append(f"SELECT 0 AS level, position - 1 AS idx, leaf_hash AS hash "
                     f"FROM {tx.table(LEAVES)} WHERE {cond}")
        params += values
    if by_level:
        conds = []
        for level, indexes in sorted(by_level.items()):
            cond, values = tx.in_list("idx", indexes)
            conds.append(f"(level = ? AND {cond})")
            params += [level, *values]
        parts.append(f"SELECT level, idx, hash FROM {tx.table(NODES)} WHERE {' OR '.join(conds)}")
    rows = tx.fetchall(" UNION ALL ".join(parts), params)
    return {(int(level), int(index)): bytes(digest) for level, index, digest in rows}


def append_nodes(tx: Tx, size: int, leaf_hashes: Sequence[bytes]) -> None:
    """Stores the subtrees that `leaf_hashes`, appended to a stored tree of
    `size` leaves, complete (the leaves themselves are the caller's rows)."""
    keys = frontier_keys(size)
    found = read_hashes(tx, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        raise TreeRangeError(f"the stored tree of {size} leaves lacks the subtree {missing[0]}: "
                             f"{NODES} is incomplete (run `sla-ledger rebuild`)")
    frontier = Frontier(size, [found[k] for k in keys])
    nodes: list[Node] = []
    for digest in leaf_hashes:
        nodes += frontier.append(digest)
    if nodes:
        tx.insert_rows(tx.table(NODES), "level, idx, hash", nodes)


class _Recording:
    """A HashStore that answers every question with a placeholder and
    remembers the questions: the plan of a proof."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.keys: set[Key] = set()

    def size(self) -> int:
        return self._size

    def leaf_hash(self, index: int) -> bytes:
        self.keys.add((0, index))
        return _PLACEHOLDER

    def node_hash(self, level: int, index: int) -> bytes | None:
        self.keys.add((level, index))
        return _PLACEHOLDER


class _Fetched:
    def __init__(self, size: int, hashes: dict[Key, bytes]) -> None:
        self._size = size
        self._hashes = hashes

    def size(self) -> int:
        return self._size

    def leaf_hash(self, index: int) -> bytes:
        try:
            return self._hashes[(0, index)]
        except KeyError:
            raise TreeRangeError(f"leaf {index + 1} is missing from {LEAVES}") from None

    def node_hash(self, level: int, index: int) -> bytes | None:
        return self._hashes.get((level, index))


def prove(tx: Tx, size: int, question: Callable[[MerkleTree], T]) -> T:
    """Answers `question` (a root, a proof) about the stored tree of `size`
    leaves, reading only the O(log n) hashes it needs."""
    plan = _Recording(size)
    question(MerkleTree(plan))
    return question(MerkleTree(_Fetched(size, read_hashes(tx, plan.keys))))


def scrub_nodes(rows: Iterable[tuple[int, bytes]],  # noqa: C901  one streaming pass; flush() carries the per-level state it shares with the loop
                stored: Callable[[int, int, int], dict[int, bytes]],
                chunk: int = 1 << 14) -> int | None:
    """Recomputes every complete subtree from the leaf rows (position order,
    from position 1) and compares it with the stored one, a chunk of leaves
    at a time; the first position under a differing or missing node (or a
    gap in positions), else None. `stored(level, first, last)` gives the
    stored hashes of indexes first..last at a level."""
    levels: list[list[bytes]] = [[]]  # per level: complete hashes not yet paired
    offsets: list[int] = [0]  # index of levels[l][0]
    expected = 1
    pending: list[bytes] = []

    def flush() -> int | None:
        level = 0
        batch = pending[:]
        pending.clear()
        start = expected - len(batch) - 1  # leaf index of batch[0]
        while True:
            if level >= len(levels):
                levels.append([])
                offsets.append(start)
            carry = levels[level] + batch
            first = offsets[level] if levels[level] else start
            pairs = len(carry) // 2
            if pairs == 0:
                levels[level], offsets[level] = carry, first
                if not carry:
                    offsets[level] = start
                return None
            parents = next_level(carry[:pairs * 2])
            parent_first = first // 2
            have = stored(level + 1, parent_first, parent_first + pairs - 1)
            for k, digest in enumerate(parents):
                if have.get(parent_first + k) != digest:
                    return ((parent_first + k) << (level + 1)) + 1
            levels[level] = carry[pairs * 2:]
            offsets[level] = first + pairs * 2
            batch, start, level = parents, parent_first, level + 1

    for position, digest in rows:
        if position != expected:
            return expected
        pending.append(digest)
        expected += 1
        if len(pending) >= chunk:
            bad = flush()
            if bad is not None:
                return bad
    return flush()
