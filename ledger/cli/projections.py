"""`sla-ledger rebuild`: empty read models and replay the whole log into them.

Offline maintenance: run it with the server stopped (a running server
keeps its projections' positions in memory and would carry on from there).
A server also rebuilds the SLA models by itself when their table layout
changed, so this is for repairs and for measuring.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ledger.cli.common import from_environment

PROJECTIONS = ("sla", "audit_merkle")


def add_parser(sub: Any, default_database: str) -> None:
    rebuild = sub.add_parser(
        "rebuild", help="rebuild read models from the event log (server stopped)",
        description="Empty the chosen read models and replay the whole event log into them, "
        "in batches with their tracking positions. Stop the server first.")
    rebuild.add_argument("--database", default=default_database,
                         help="sqlite:///path.db or postgresql://... (default %(default)s)")
    rebuild.add_argument("--projection", choices=(*PROJECTIONS, "all"), default="all")
    rebuild.add_argument("--batch", type=int, default=20_000, help="events per transaction")
    from_environment(rebuild, only=("--database",))


def leaves_against_checkpoints(store: Any) -> str | None:
    """Re-hashes every stored event and checks the leaves against every signed
    checkpoint's root (and the recorded leaves): a description of the first
    difference, or None. Rebuilding leaves from altered events would launder
    them into the next checkpoint."""
    from ledger.audit.checkpoint import Checkpoint, CheckpointError
    from ledger.audit.leaf import event_leaf_hash
    from ledger.audit.memstore import MemoryHashStore
    from ledger.audit.merkle import MerkleTree
    from projections.audit_tree import MerkleProjection, read_leaf_hashes, stored_checkpoints
    from projections.storage import ProjectionDatabase

    hashes: list[bytes] = []
    after = 0
    while batch := store.read_log(after, 5000):
        for event in batch:
            if event.position != len(hashes) + 1:
                return f"position {len(hashes) + 1} is missing from the log"
            hashes.append(event_leaf_hash(event))
        after = batch[-1].position
    db = ProjectionDatabase.of_store(store)
    with db.setting_up() as tx:
        MerkleProjection().create_tables(tx)
    with db.transaction(commit=False) as tx:
        notes = stored_checkpoints(tx, limit=1_000_000)
        recorded = read_leaf_hashes(tx)
    for position, digest in recorded:
        if position <= len(hashes) and hashes[position - 1] != digest:
            return f"the event at position {position} no longer hashes to its recorded leaf"
    tree = MerkleTree(MemoryHashStore.from_leaf_hashes(hashes))
    for note in notes:
        try:
            checkpoint = Checkpoint.from_text(note.split("\n\n", 1)[0] + "\n")
        except CheckpointError:
            continue
        if checkpoint.size > len(hashes):
            return f"the log ends at {len(hashes)}, before the signed checkpoint of {checkpoint.size}"
        if tree.root(checkpoint.size) != checkpoint.root_hash:
            return f"the events do not give the root of the signed checkpoint of {checkpoint.size}"
    return None


def cmd_rebuild(args: argparse.Namespace) -> int:
    from ledger.adapters.eventstore import open_store
    from ledger.application.observer import LedgerObserver
    from ledger.server.bootstrap import build_projections

    if args.batch < 1:
        print("sla-ledger rebuild: --batch must be positive", file=sys.stderr)
        return 2
    store = open_store(args.database)
    try:
        names = PROJECTIONS if args.projection == "all" else (args.projection,)
        head = store.max_position()
        if "audit_merkle" in names:
            problem = leaves_against_checkpoints(store)
            if problem is not None:
                print(f"sla-ledger rebuild: refusing to rebuild the Merkle leaves: {problem}. "
                      "The events differ from what the ledger signed: restore them from a "
                      "backup; nothing was changed.", file=sys.stderr)
                return 1

        class Progress(LedgerObserver):
            def projected(self, name: str, position: int, recorded_at: int, count: int,
                          seconds: float) -> None:
                print(f"\r{name}: {position}/{head}", end="", file=sys.stderr, flush=True)

        runner = build_projections(store, Progress(), batch_size=args.batch)
        for name in names:
            started = time.perf_counter()
            count = runner.rebuild(name)
            seconds = time.perf_counter() - started
            rate = f", {count / seconds:,.0f} events/s" if seconds > 0 and count else ""
            print(f"\r{name}: rebuilt from {count} events in {seconds:.1f} s{rate}",
                  file=sys.stderr)
        return 0
    finally:
        store.close()
