"""`sla-ledger verify --database URL`: the operator's full scrub of the
persisted log, read-only. Every event is re-hashed against its leaf row,
every stored subtree hash (audit_nodes) is recomputed from the leaves, and
every stored checkpoint signed by the key must be the root of the tree of
its size. Memory stays bounded (a chunk of leaves plus one pending hash per
level); time is linear in the log, which is the point of a full scrub.

The running ledger's own checks are cheaper and partial (the background
scrub, reads re-hashed against leaves); this is what to run after a restore
or when an alert fired.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ledger.adapters.eventstore import EventStore, open_store
from ledger.audit.checkpoint import CheckpointError, Verifier, verify_checkpoint
from ledger.audit.leaf import event_leaf_hash
from ledger.audit.merkle import MerkleTree
from ledger.cli.common import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from projections.storage import Tx

CHUNK = 5000


class Difference(Exception):
    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"position {position}: {reason}")
        self.position = position


def _leaves_checked_against_events(store: EventStore, db: object) -> Iterator[tuple[int, bytes]]:
    """Leaf rows in order, each checked against the event it hashes."""
    from projections.audit_tree import read_leaf_hashes
    from projections.storage import ProjectionDatabase

    assert isinstance(db, ProjectionDatabase)
    after = 0
    while True:
        with db.transaction(commit=False) as tx:
            rows = read_leaf_hashes(tx, after, after + CHUNK)
        if not rows:
            return
        events = {e.position: e for e in store.read_log(after, CHUNK, upto=rows[-1][0])}
        for position, digest in rows:
            event = events.get(position)
            if event is None:
                raise Difference(position, "the leaf has no event (deleted)")
            if event_leaf_hash(event) != digest:
                raise Difference(position, "the event differs from its leaf hash")
            yield position, digest
        after = rows[-1][0]


def scrub_database(store: EventStore, key: Verifier | None) -> dict[str, int]:
    """Counts of what was checked; raises Difference at the first one."""
    from projections.audit_nodes import NODES, scrub_nodes
    from projections.audit_tree import MerkleProjection, stored_checkpoints
    from projections.storage import ProjectionDatabase, read_position

    db = ProjectionDatabase.of_store(store)
    counted = {"events": 0}

    def stored(level: int, first: int, last: int) -> dict[int, bytes]:
        with db.transaction(commit=False) as tx:
            rows = tx.fetchall(f"SELECT idx, hash FROM {tx.table(NODES)} WHERE level = ? "
                               "AND idx >= ? AND idx <= ?", (level, first, last))
        return {int(i): bytes(h) for i, h in rows}

    def counting() -> Iterator[tuple[int, bytes]]:
        for row in _leaves_checked_against_events(store, db):
            counted["events"] += 1
            yield row

    bad = scrub_nodes(counting(), stored)
    if bad is not None:
        raise Difference(bad, f"a stored subtree hash ({NODES}) differs from its leaves")
    with db.transaction(commit=False) as tx:
        size = read_position(tx, MerkleProjection.name)[0]
        notes = stored_checkpoints(tx, limit=1_000_000)
        nodes = int(tx.fetchall(f"SELECT COUNT(*) FROM {tx.table(NODES)}")[0][0])
        if size != counted["events"]:
            raise Difference(min(size, counted["events"]) + 1,
                             f"the tree holds {size} leaves, the table {counted['events']}")
        if nodes != size - size.bit_count():
            raise Difference(size, f"{NODES} holds {nodes} subtrees, a tree of {size} has "
                             f"{size - size.bit_count()}")
        checked = 0 if key is None else _check_checkpoints(tx, notes, key, size)
    if store.max_position() != size:
        raise Difference(size + 1, f"the log holds {store.max_position()} events, the tree {size}")
    return {"events": size, "subtrees": nodes, "checkpoints": checked}


def _check_checkpoints(tx: Tx, notes: Iterable[str], key: Verifier, size: int) -> int:
    """How many stored checkpoints signed by `key` reproduce from the tree of
    `size` leaves; raises Difference at the first that does not."""
    from projections.audit_nodes import prove

    checked = 0
    for note in notes:
        try:
            cp = verify_checkpoint(note, key)
        except CheckpointError:
            continue  # another key's (rotated)
        if cp.size > size:
            raise Difference(size + 1, f"a checkpoint of {cp.size} leaves is beyond the tree")
        if prove(tx, cp.size, MerkleTree.root) != cp.root_hash:
            raise Difference(cp.size, "a signed checkpoint's root is not the tree's")
        checked += 1
    return checked


def verify_database(args: argparse.Namespace, key_of: Callable[[EventStore], Verifier]) -> int:
    """`verify --database`; `key_of` finds the verifier key of the store's log."""
    store = open_store(args.database)
    try:
        key = key_of(store)
        try:
            counts = scrub_database(store, key)
        except Difference as diff:
            print(f"sla-ledger verify: the stored log was altered at {diff}", file=sys.stderr)
            return EXIT_FAILED
    finally:
        store.close()
    print(f"database verified: {counts['events']} events re-hashed into their leaves, "
          f"{counts['subtrees']} stored subtrees recomputed, {counts['checkpoints']} signed "
          f"checkpoints reproduced")
    return EXIT_OK
