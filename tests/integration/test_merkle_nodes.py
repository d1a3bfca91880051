"""The Merkle tree stored in the database (projections.audit_nodes), on
SQLite and PostgreSQL: the RFC 9162 / CT vectors, the same answers as the
in-memory tree and the independent recursive definitions for every size and
batch split, O(log n) hashes read per proof, the upgrade backfill, and the
scrub that re-derives every stored subtree from the leaves."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import pytest

from ledger.adapters.eventstore import EventStore
from ledger.audit.memstore import MemoryHashStore
from ledger.audit.merkle import MerkleTree, verify_consistency, verify_inclusion
from projections.audit_nodes import NODES, _Recording, append_nodes, prove, scrub_nodes
from projections.audit_tree import LEAVES, MerkleProjection, backfill_nodes
from projections.storage import ProjectionDatabase
from tests.support.merkle_reference import (
    CONSISTENCY,
    INCLUSION,
    LEAF_HASHES,
    ROOTS,
    data,
    h,
    ref_mth,
    ref_path,
    ref_proof,
    sha,
)


def root_of(size: int) -> Callable[[MerkleTree], bytes]:
    return lambda tree: tree.root(size)


def inclusion_of(index: int, size: int) -> Callable[[MerkleTree], list[bytes]]:
    return lambda tree: tree.inclusion_proof(index, size)


def consistency_of(first: int, second: int) -> Callable[[MerkleTree], list[bytes]]:
    return lambda tree: tree.consistency_proof(first, second)


@pytest.fixture
def db(store: EventStore) -> Iterator[ProjectionDatabase]:
    database = ProjectionDatabase.of_store(store)
    with database.transaction() as tx:
        MerkleProjection().create_tables(tx)
    yield database


def store_leaves(db: ProjectionDatabase, hashes: Sequence[bytes], batches: Sequence[int]) -> None:
    """Appends `hashes` the way the projection does, in batches of the given sizes."""
    done = 0
    for size in batches:
        chunk = hashes[done:done + size]
        with db.transaction() as tx:
            tx.insert_rows(tx.table(LEAVES), "position, leaf_hash",
                           [(done + i + 1, d) for i, d in enumerate(chunk)])
            append_nodes(tx, done, chunk)
        done += len(chunk)


def test_rfc9162_vectors_from_the_database(db: ProjectionDatabase) -> None:
    store_leaves(db, LEAF_HASHES, [1, 2, 5])
    with db.transaction(commit=False) as tx:
        for n in range(1, 9):
            assert prove(tx, n, root_of(n)) == ROOTS[n]
        for index, size, proof in INCLUSION:
            assert prove(tx, size, inclusion_of(index, size)) == \
                [h(x) for x in proof]
        for first, second, proof in CONSISTENCY:
            assert prove(tx, second, consistency_of(first, second)) == \
                [h(x) for x in proof]


def test_every_size_and_split_answers_like_the_independent_definitions(
        db: ProjectionDatabase) -> None:
    rng = random.Random(9162)
    items = data()[:130]
    hashes = [sha(b"\x00" + d) for d in items]
    batches: list[int] = []
    while sum(batches) < len(hashes):
        batches.append(rng.choice([1, 1, 2, 3, 7, 16, 33]))
    store_leaves(db, hashes, batches)
    memory = MerkleTree(MemoryHashStore.from_leaf_hashes(hashes))
    with db.transaction(commit=False) as tx:
        for n in range(1, len(hashes) + 1):
            root = prove(tx, n, root_of(n))
            assert root == ref_mth(items[:n]) == memory.root(n)
            index, first = rng.randrange(n), rng.randint(1, n)
            path = prove(tx, n, inclusion_of(index, n))
            assert path == ref_path(index, items[:n])
            assert verify_inclusion(index, n, hashes[index], path, root)
            proof = prove(tx, n, consistency_of(first, n))
            assert proof == ref_proof(first, items[:n])
            assert verify_consistency(first, n, ref_mth(items[:first]), root, proof)


def test_a_proof_asks_for_logarithmically_many_hashes() -> None:
    for n in (1_000, 1_000_000, 2**40 + 12345):
        plan = _Recording(n)
        tree = MerkleTree(plan)
        tree.inclusion_proof(n // 3, n)
        tree.consistency_proof(n // 7, n)
        tree.root(n)
        assert len(plan.keys) <= 4 * n.bit_length()


def test_backfill_builds_the_nodes_of_an_older_database(db: ProjectionDatabase) -> None:
    hashes = [sha(b"\x00" + d) for d in data()[:77]]
    store_leaves(db, hashes, [77])
    with db.transaction() as tx:
        before = tx.fetchall(f"SELECT level, idx, hash FROM {tx.table(NODES)} ORDER BY level, idx")
        tx.execute(f"DELETE FROM {tx.table(NODES)}")
    with db.transaction() as tx:
        backfill_nodes(tx, chunk=10)
    with db.transaction(commit=False) as tx:
        after = tx.fetchall(f"SELECT level, idx, hash FROM {tx.table(NODES)} ORDER BY level, idx")
        assert prove(tx, 77, lambda t: t.root(77)) == ref_mth(data()[:77])
    assert [(int(a), int(b), bytes(c)) for a, b, c in after] == \
        [(int(a), int(b), bytes(c)) for a, b, c in before]
    assert len(after) == 77 - (77).bit_count()


def _scrub(db: ProjectionDatabase, chunk: int) -> int | None:
    with db.transaction(commit=False) as tx:
        leaves = [(int(p), bytes(d)) for p, d in tx.fetchall(
            f"SELECT position, leaf_hash FROM {tx.table(LEAVES)} ORDER BY position")]

        def stored(level: int, first: int, last: int) -> dict[int, bytes]:
            rows = tx.fetchall(f"SELECT idx, hash FROM {tx.table(NODES)} WHERE level = ? "
                               "AND idx >= ? AND idx <= ?", (level, first, last))
            return {int(i): bytes(d) for i, d in rows}

        return scrub_nodes(leaves, stored, chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 14])
def test_the_scrub_locates_a_rewritten_leaf_or_node(db: ProjectionDatabase, chunk: int) -> None:
    hashes = [sha(b"\x00" + d) for d in data()[:100]]
    store_leaves(db, hashes, [40, 60])
    assert _scrub(db, chunk) is None
    with db.transaction() as tx:
        tx.execute(f"UPDATE {tx.table(LEAVES)} SET leaf_hash = ? WHERE position = 37", (bytes(32),))
    assert _scrub(db, chunk) == 37  # the first leaf under the pair that differs
    with db.transaction() as tx:
        tx.execute(f"UPDATE {tx.table(LEAVES)} SET leaf_hash = ? WHERE position = 37",
                   (hashes[36],))
        tx.execute(f"UPDATE {tx.table(NODES)} SET hash = ? WHERE level = 3 AND idx = 9",
                   (bytes(32),))
    assert _scrub(db, chunk) == 9 * 8 + 1


def test_the_running_scrub_checks_leaf_rows_against_the_pairs_over_them(
        db: ProjectionDatabase) -> None:
    from ledger.audit.checkpoint import Signer
    from projections.audit_log import AuditLog

    hashes = [sha(b"\x00" + d) for d in data()[:50]]
    store_leaves(db, hashes, [50])
    log = AuditLog(db, Signer.generate("pairs.test/log"))
    assert log.check_pairs(0, 50) is None
    with db.transaction() as tx:
        tx.execute(f"UPDATE {tx.table(LEAVES)} SET leaf_hash = ? WHERE position = 38", (bytes(32),))
    assert log.check_pairs(0, 50) == 37  # the pair (37, 38)
    assert log.check_pairs(36, 40) == 37
    assert log.check_pairs(38, 50) is None  # only whole pairs after the cursor
