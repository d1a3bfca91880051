"""RFC 9162 Merkle tree: the Certificate Transparency test vectors, and
property tests against an independent verifier written here from the RFC's
recursive definitions (no code shared with ledger.audit.merkle but SHA-256)."""

from __future__ import annotations

import random
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit import merkle
from ledger.audit.memstore import LevelsHashStore, MemoryHashStore
from ledger.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    HashStore,
    MerkleTree,
    ProofError,
    TreeRangeError,
    check_consistency,
    leaf_hash,
    mth,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from tests.support.merkle_reference import (
    CONSISTENCY,
    INCLUSION,
    LEAF_HASHES,
    LEAVES,
    N_MAX,
    ROOTS,
    SOME_HASH,
    data,
    h,
    ref_mth,
    ref_path,
    ref_proof,
    ref_verify_consistency,
    ref_verify_inclusion,
    sha,
)

# -- fixtures ---------------------------------------------------------------

@cache
def grown_tree() -> MerkleTree:
    tree = MerkleTree(MemoryHashStore())
    for item in data():
        tree.append_leaf(item)
    return tree


class UncachedStore:
    """Leaf hashes only: every subtree is recomputed."""

    def __init__(self, hashes: list[bytes]) -> None:
        self.hashes = hashes

    def size(self) -> int:
        return len(self.hashes)

    def leaf_hash(self, index: int) -> bytes:
        return self.hashes[index]

    def node_hash(self, level: int, index: int) -> bytes | None:
        return None


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


# -- reference vectors --------------------------------------------------------


def test_leaf_hashes_and_roots_of_the_reference_data() -> None:
    assert [leaf_hash(x) for x in LEAVES] == LEAF_HASHES
    assert EMPTY_ROOT == ROOTS[0] == mth([])
    tree = MerkleTree(MemoryHashStore())
    assert tree.root() == ROOTS[0]
    for n in range(1, 9):
        tree.append_leaf(LEAVES[n - 1])
        assert tree.root() == ROOTS[n] == mth(LEAVES[:n]) == ref_mth(LEAVES[:n])
    for n in range(9):
        assert tree.root(n) == ROOTS[n]
        assert root_from_leaf_hashes(LEAF_HASHES[:n]) == ROOTS[n]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_reference_proofs(index: int, size: int, proof: list[str]) -> None:
    tree = MerkleTree(MemoryHashStore.from_leaf_hashes(LEAF_HASHES))
    want = [h(p) for p in proof]
    assert tree.inclusion_proof(index, size) == want == ref_path(index, LEAVES[:size])
    leaf, root = LEAF_HASHES[index], ROOTS[size]
    assert root_from_inclusion_proof(index, size, leaf, want) == root
    assert verify_inclusion(index, size, leaf, want, root)
    assert ref_verify_inclusion(index, size, leaf, want, root)
    # The corruptions of transparency-dev/merkle's verifier tests.
    probes = [(index - 1, size, leaf, want, root), (index + 1, size, leaf, want, root),
              (index ^ 2, size, leaf, want, root), (index, size * 2, leaf, want, root),
              (index, size // 2, leaf, want, root), (index, size, SOME_HASH, want, root),
              (index, size, leaf, want, EMPTY_ROOT), (index, size, leaf, want, SOME_HASH),
              (index, size, leaf, [*want, b""], root), (index, size, leaf, [*want, root], root),
              (index, size, leaf, [b"", *want], root), (index, size, leaf, [root, *want], root)]
    probes += [(index, size, leaf, [*want[:i], flip(p, 3), *want[i + 1:]], root)
               for i, p in enumerate(want)]
    if want:
        probes.append((index, size, leaf, want[:-1], root))
    if len(want) > 1:
        probes.append((index, size, leaf, [want[0], SOME_HASH, *want[1:]], root))
    for probe in probes:
        if probe[:2] != (index, size) or probe[2:] != (leaf, want, root):
            assert not verify_inclusion(*probe), probe
            assert not ref_verify_inclusion(*probe), probe


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_reference_proofs(size1: int, size2: int, proof: list[str]) -> None:
    tree = MerkleTree(MemoryHashStore.from_leaf_hashes(LEAF_HASHES))
    want = [h(p) for p in proof]
    assert tree.consistency_proof(size1, size2) == want == ref_proof(size1, LEAVES[:size2])
    r1, r2 = ROOTS[size1], ROOTS[size2]
    check_consistency(size1, size2, r1, r2, want)
    assert ref_verify_consistency(size1, size2, r1, r2, want)
    if not want:
        return
    probes = [(size1 - 1, size2, r1, r2, want), (size1 + 1, size2, r1, r2, want),
              (size1 ^ 2, size2, r1, r2, want), (size1, size2 * 2, r1, r2, want),
              (size1, size2 // 2, r1, r2, want), (size1, size2, SOME_HASH, r2, want),
              (size1, size2, r1, SOME_HASH, want), (size1, size2, r2, r1, want),
              (size1, size2, r1, r2, []), (size1, size2, r1, r2, [*want, b""]),
              (size1, size2, r1, r2, [*want, r1]), (size1, size2, r1, r2, [*want, r2]),
              (size1, size2, r1, r2, [b"", *want]), (size1, size2, r1, r2, [r1, *want]),
              (size1, size2, r1, r2, [r2, *want]), (size1, size2, r1, r2, [want[0], *want]),
              (size1, size2, r1, r2, want[:-1])]
    probes += [(size1, size2, r1, r2, [*want[:i], flip(p, 4), *want[i + 1:]])
               for i, p in enumerate(want)]
    for probe in probes:
        assert not verify_consistency(*probe), probe
        assert not ref_verify_consistency(*probe), probe


def test_consistency_edge_cases() -> None:
    r1, r2 = SOME_HASH, ROOTS[3]
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, r2, [])  # the empty tree prefixes all
    assert not verify_consistency(0, 5, r1, r2, [])  # but its root is SHA-256("")
    assert verify_consistency(3, 3, r2, r2, [])
    assert not verify_consistency(3, 3, r1, r2, [])  # same size, different roots
    assert not verify_consistency(3, 3, r2, r2, [EMPTY_ROOT])  # roots match, proof not empty
    assert not verify_consistency(0, 1, EMPTY_ROOT, r2, [EMPTY_ROOT])
    assert not verify_consistency(2, 1, r1, r2, [])  # time travel
    assert not verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])  # empty proof
    with pytest.raises(ProofError, match="32 bytes"):
        check_consistency(1, 2, b"short", ROOTS[2], [LEAF_HASHES[1]])


def test_inclusion_edge_cases() -> None:
    only = leaf_hash(b"data")
    assert verify_inclusion(0, 1, only, [], only)
    for index, size in ((0, 0), (1, 0), (1, 1), (2, 1)):
        assert not verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT)
    assert not verify_inclusion(0, 1, b"", [], only)  # wrong hash size


def test_range_errors() -> None:
    tree = MerkleTree(MemoryHashStore.from_leaf_hashes(LEAF_HASHES))
    for call in (lambda: tree.inclusion_proof(8, 8), lambda: tree.inclusion_proof(0, 9),
                 lambda: tree.inclusion_proof(3, 3), lambda: tree.consistency_proof(5, 4),
                 lambda: tree.consistency_proof(1, 9), lambda: tree.root(9),
                 lambda: tree.leaf_hash(8), lambda: tree.subtree_hash(4, 4)):
        with pytest.raises(TreeRangeError):
            call()
    assert tree.consistency_proof(0, 8) == [] == tree.consistency_proof(8)
    with pytest.raises(TypeError, match="read-only"):
        MerkleTree(LevelsHashStore(list(LEAF_HASHES))).append(SOME_HASH)


# -- properties against the independent verifier ----------------------------

sizes = st.integers(min_value=1, max_value=N_MAX)


@settings(max_examples=300, deadline=None)
@given(sizes, st.data())
def test_inclusion_proofs_verify_and_break_on_any_bit(n: int, draw: st.DataObject) -> None:
    index = draw.draw(st.integers(0, n - 1), label="index")
    tree, leaves = grown_tree(), data()[:n]
    proof = tree.inclusion_proof(index, n)
    root, leaf = ref_mth(leaves), sha(b"\x00" + leaves[index])
    assert tree.root(n) == root and tree.leaf_hash(index) == leaf
    assert proof == ref_path(index, leaves)
    assert ref_verify_inclusion(index, n, leaf, proof, root)
    assert verify_inclusion(index, n, leaf, proof, root)
    # any single-bit change of a proof hash, the leaf hash or the root fails
    where = draw.draw(st.integers(0, len(proof) + 1), label="which hash")
    bit = draw.draw(st.integers(0, 255), label="bit")
    bad = [*proof]
    bad_leaf, bad_root = leaf, root
    if where < len(proof):
        bad[where] = flip(bad[where], bit)
    elif where == len(proof):
        bad_leaf = flip(leaf, bit)
    else:
        bad_root = flip(root, bit)
    assert not verify_inclusion(index, n, bad_leaf, bad, bad_root)
    assert not ref_verify_inclusion(index, n, bad_leaf, bad, bad_root)


@settings(max_examples=300, deadline=None)
@given(sizes, st.data())
def test_consistency_proofs_verify_and_break_on_any_bit(n: int, draw: st.DataObject) -> None:
    m = draw.draw(st.integers(0, n), label="first size")
    tree, leaves = grown_tree(), data()[:n]
    proof = tree.consistency_proof(m, n)
    root1, root2 = ref_mth(leaves[:m]), ref_mth(leaves)
    assert proof == ref_proof(m, leaves)
    assert ref_verify_consistency(m, n, root1, root2, proof)
    assert verify_consistency(m, n, root1, root2, proof)
    # (from the empty tree every tree is consistent: only its root is checked)
    where = draw.draw(st.integers(0, len(proof) + (m > 0)), label="which hash")
    bit = draw.draw(st.integers(0, 255), label="bit")
    bad = [*proof]
    bad1, bad2 = root1, root2
    if where < len(proof):
        bad[where] = flip(bad[where], bit)
    elif where == len(proof):
        bad1 = flip(root1, bit)
    else:
        bad2 = flip(root2, bit)
    assert not verify_consistency(m, n, bad1, bad2, bad)
    assert not ref_verify_consistency(m, n, bad1, bad2, bad)


@settings(max_examples=60, deadline=None)
@given(sizes, st.data())
def test_every_store_gives_the_same_answers(n: int, draw: st.DataObject) -> None:
    hashes = [sha(b"\x00" + d) for d in data()[:n]]
    stores: list[HashStore] = [MemoryHashStore.from_leaf_hashes(hashes),
                               LevelsHashStore(list(hashes)), UncachedStore(hashes)]
    index = draw.draw(st.integers(0, n - 1))
    m = draw.draw(st.integers(0, n))
    want = grown_tree()
    for store in stores:
        tree = MerkleTree(store)
        assert tree.root() == want.root(n)
        assert tree.inclusion_proof(index) == want.inclusion_proof(index, n)
        assert tree.consistency_proof(m) == want.consistency_proof(m, n)


def test_frontier_reports_complete_subtrees_and_roots() -> None:
    frontier, store = Frontier(), MemoryHashStore()
    for i, item in enumerate(data()[:100]):
        nodes = frontier.append(leaf_hash(item))
        store.append(leaf_hash(item), nodes)
        size = i + 1
        # one node per trailing one-bit of the new size - 1 ... i.e. of i
        assert [level for level, _, _ in nodes] == list(range(1, (i ^ size).bit_length()))
        for level, index, digest in nodes:
            assert digest == ref_mth(data()[index << level:(index + 1) << level])
        assert frontier.root() == ref_mth(data()[:size])
        assert len(frontier.hashes) == size.bit_count()
    assert Frontier.from_tree(MerkleTree(store)).hashes == frontier.hashes
    assert Frontier.from_tree(MerkleTree(store), 37).root() == ref_mth(data()[:37])
    with pytest.raises(ValueError, match="hashes"):
        Frontier(3, [SOME_HASH])


def test_appends_to_a_tree_opened_on_an_existing_store() -> None:
    store = MemoryHashStore.from_leaf_hashes([sha(b"\x00" + d) for d in data()[:77]])
    tree = MerkleTree(store)
    for item in data()[77:120]:
        tree.append_leaf(item)
    assert tree.size == 120 and tree.root() == ref_mth(data()[:120])
    assert tree.inclusion_proof(5) == ref_path(5, data()[:120])


class CountingStore:
    """Counts the hashes a tree reads from the store it wraps."""

    def __init__(self, inner: HashStore) -> None:
        self.inner, self.reads = inner, 0

    def size(self) -> int:
        return self.inner.size()

    def leaf_hash(self, index: int) -> bytes:
        self.reads += 1
        return self.inner.leaf_hash(index)

    def node_hash(self, level: int, index: int) -> bytes | None:
        self.reads += 1
        return self.inner.node_hash(level, index)


def test_proofs_on_a_million_leaves_read_and_hash_logarithmically_many_nodes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # What the proofs cost, counted instead of timed (latency: bench/audit_bench.py).
    n = 1_000_000
    base = sha(b"leaf")
    store = CountingStore(MemoryHashStore.from_leaf_hashes(
        [sha(base + i.to_bytes(4, "big")) for i in range(n)]))
    tree = MerkleTree(store)
    hashed, real = [0], merkle.node_hash

    def counted(left: bytes, right: bytes) -> bytes:
        hashed[0] += 1
        return real(left, right)

    monkeypatch.setattr(merkle, "node_hash", counted)  # what MerkleTree calls
    rng = random.Random(20)
    for _ in range(500):
        size = rng.randint(n // 2, n)
        index, first = rng.randrange(size), rng.randint(1, size)
        store.reads = hashed[0] = 0
        inclusion = tree.inclusion_proof(index, size)
        consistency = tree.consistency_proof(first, size)
        # both proofs together: O(log n) reads and hashes, never a subtree's leaves
        assert store.reads <= 4 * n.bit_length(), (index, first, size, store.reads)
        assert hashed[0] <= 2 * n.bit_length(), (index, first, size, hashed[0])
        root = tree.root(size)
        assert verify_inclusion(index, size, tree.leaf_hash(index), inclusion, root)
        assert verify_consistency(first, size, tree.root(first), root, consistency)
