"""The ledger keeps its own planner statistics on PostgreSQL (autovacuum is
off on this cluster): a table that grew past autovacuum's analyze rule is
analyzed by the leader, one that did not is left alone."""

from __future__ import annotations

import psycopg
import pytest

from ledger.adapters.eventstore import open_store
from projections.statistics import analyze_stale
from projections.storage import ProjectionDatabase
from tests.support.postgres import PG_URL

pytestmark = pytest.mark.postgres


def _analyzed(schema: str) -> dict[str, bool]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute("SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                            "WHERE schemaname = %s", (schema,)).fetchall()
    return {str(name): bool(done) for name, done in rows}


def test_stale_tables_are_analyzed_and_fresh_ones_left_alone(pg_schema: str) -> None:
    store = open_store(f"{PG_URL}?schema={pg_schema}")
    try:
        db = ProjectionDatabase.of_store(store)
        with db.transaction() as tx:
            tx.execute(f"CREATE TABLE {tx.table('grown')} (n BIGINT PRIMARY KEY)")
            tx.execute(f"CREATE TABLE {tx.table('small')} (n BIGINT PRIMARY KEY)")
            tx.execute(f"INSERT INTO {tx.table('grown')} SELECT generate_series(1, 5000)")
            tx.execute(f"INSERT INTO {tx.table('small')} SELECT generate_series(1, 10)")
            # the statistics counters of this backend reach the shared view now
            tx.execute("SELECT pg_stat_force_next_flush()")
        assert "grown" in analyze_stale(db)
        analyzed = _analyzed(pg_schema)
        assert analyzed["grown"] and not analyzed["small"]
        assert "grown" not in analyze_stale(db)  # fresh now
    finally:
        store.close()
