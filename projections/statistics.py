"""Planner statistics the ledger keeps for itself on PostgreSQL.

Without statistics (autovacuum off, or a freshly restored database nobody
ANALYZEd) PostgreSQL guesses table sizes, and the per-append look-ups went
to parallel plans that made appends three times slower. Rather than rely on
the operator, the projection leader applies autovacuum's own analyze rule
to the ledger's tables: a table whose rows changed by more than
`threshold + scale * rows` since its last ANALYZE (manual or automatic) is
analyzed. With autovacuum on, this rarely finds anything to do.

ANALYZE takes no session state and only a lock that lets reads and writes go
on (SHARE UPDATE EXCLUSIVE), so it is safe on a pooled connection; it runs
on the leader only, at most every `interval` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

THRESHOLD = 1000  # rows
SCALE = 0.2  # of the table's rows at the last ANALYZE


def stale_tables(tx: Any, schema: str) -> list[str]:
    """The ledger's tables in `schema` due for ANALYZE by autovacuum's rule."""
    rows = tx.fetchall(
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.schemaname = ? AND s.n_mod_since_analyze > ? + ? * GREATEST(c.reltuples, 0) "
        "ORDER BY s.relname", (schema, THRESHOLD, SCALE))
    return [str(r[0]) for r in rows]


def analyze_stale(db: Any) -> list[str]:
    """ANALYZEs the ledger's stale tables (PostgreSQL only); returns their names."""
    if not db.is_postgres:
        return []
    schema = db.schema or "public"
    with db.transaction(commit=False) as tx:
        tables = stale_tables(tx, schema)
    for table in tables:
        with db.transaction() as tx:
            tx.execute(f'ANALYZE "{schema}"."{table}"')
        log.info("analyzed %s.%s (its statistics were stale)", schema, table)
    return tables


async def keep_statistics(db: Any, leading: Callable[[], bool], interval: float = 60.0,
                          stopping: asyncio.Event | None = None) -> None:
    """On the leader, analyze what went stale every `interval` seconds, until
    `stopping` is set; a round in progress finishes first (its worker thread
    would otherwise run on while the store closes)."""
    stopping = stopping or asyncio.Event()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        if stopping.is_set():
            return
        if leading():
            try:
                await asyncio.to_thread(analyze_stale, db)
            except Exception:  # the next round retries
                log.exception("analyzing the ledger's tables failed")
