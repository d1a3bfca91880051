"""The Merkle log's projection: the leaf hash of every stored event and the
complete subtree hashes over them, kept from the event log like every other
read model, and the table of signed checkpoints.

Tables (in the event store's database, next to the tracking table):

    audit_leaves(position PK, leaf_hash)      one row per stored event
    audit_nodes(level, idx, hash)             one per complete subtree
    audit_checkpoints(size, timestamp, note)  every checkpoint ever signed

`MerkleProjection.apply` computes each leaf hash from the stored event as the
runner decoded it (ledger.audit.leaf: position, recorded_at, submitted_by,
payload...) and inserts it, and the subtrees it completes
(projections.audit_nodes), in the same transaction as the tracking position,
so leaves and nodes are exactly-once and gap-free like every other read
model, and the tree's size is the projection's committed position.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ledger.audit.leaf import event_leaf_hash
from ledger.audit.tlog import SignedCheckpoint
from ledger.domain.events import LedgerEvent
from projections.audit_nodes import NODES, append_nodes, create_node_table, frontier_keys, read_hashes
from projections.storage import Tx

log = logging.getLogger(__name__)

LEAVES = "audit_leaves"
CHECKPOINTS = "audit_checkpoints"


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
        create_node_table(tx)
        backfill_nodes(tx)

    def clear(self, tx: Tx) -> None:
        # Signed checkpoints stay: they are what a rebuilt tree must reproduce.
        tx.execute(f"DELETE FROM {tx.table(LEAVES)}")
        tx.execute(f"DELETE FROM {tx.table(NODES)}")

    def apply(self, tx: Tx, events: Sequence[LedgerEvent]) -> None:
        hashes = [event_leaf_hash(e) for e in events]
        tx.insert_rows(tx.table(LEAVES), "position, leaf_hash",
                       [(e.position, h) for e, h in zip(events, hashes, strict=True)])
        append_nodes(tx, events[0].position - 1, hashes)


def backfill_nodes(tx: Tx, chunk: int = 1 << 16) -> None:
    """A database from before audit_nodes: hash its subtrees once, streaming
    the leaves (memory bounded by `chunk`). A no-op (two index look-ups)
    when the nodes are there."""
    rows = tx.fetchall(f"SELECT MAX(position) FROM {tx.table(LEAVES)}")
    size = int(rows[0][0] or 0)
    keys = [k for k in frontier_keys(size) if k[0] > 0]
    if not keys or len(read_hashes(tx, keys)) == len(keys):
        return
    log.warning("building %s for %d stored leaves (once, after an upgrade)", NODES, size)
    tx.execute(f"DELETE FROM {tx.table(NODES)}")
    done = 0
    while done < size:
        hashes = [h for _, h in read_leaf_hashes(tx, done, done + chunk)]
        if not hashes:
            break
        append_nodes(tx, done, hashes)
        done += len(hashes)


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
