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

PROJECTIONS = ("sla", "audit_merkle")


def add_parser(sub: Any, default_database: str | None) -> None:
    rebuild = sub.add_parser(
        "rebuild", help="rebuild read models from the event log (server stopped)",
        description="Empty the chosen read models and replay the whole event log into them, "
        "in batches with their tracking positions. Stop the server first.")
    rebuild.add_argument("--database", default=default_database,
                         help="sqlite:///path.db or postgresql://... (default %(default)s)")
    rebuild.add_argument("--projection", choices=(*PROJECTIONS, "all"), default="all")
    rebuild.add_argument("--batch", type=int, default=20_000, help="events per transaction")


def cmd_rebuild(args: argparse.Namespace) -> int:
    from ledger.adapters.eventstore import open_store
    from ledger.application.observer import LedgerObserver
    from ledger.bootstrap import build_projections

    if args.batch < 1:
        print("sla-ledger rebuild: --batch must be positive", file=sys.stderr)
        return 2
    store = open_store(args.database)
    try:
        names = PROJECTIONS if args.projection == "all" else (args.projection,)
        head = store.max_position()

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
