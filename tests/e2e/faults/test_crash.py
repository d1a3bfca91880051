"""Faults under load from retrying clients: the server killed with SIGKILL
(SQLite and PostgreSQL) and PostgreSQL restarted under a running server.
Nothing acknowledged is lost, nothing is stored twice, positions stay
gap-free, and clients see only statuses they retry."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from ledger.adapters.eventstore import open_store
from ledger.adapters.scenario import read_scenario
from ledger.cli.common import demo_scenario_path
from ledger.cli.load import load_scenario
from ledger.client import LedgerClient
from ledger.domain.instants import parse_instant
from tests.support.processes import Writers, ledger_process, throwaway_postgres

pytestmark = pytest.mark.e2e
KILLS = 3
# The writers' incidents start at a fixed instant after the worked scenario's
# last event: in the past for the server's clock, and the same on every run.
WRITERS_START = parse_instant("2026-11-10T00:00:00Z")


def _check_log(database: str, writers: Writers) -> dict[str, int]:
    """Acknowledged = stored at the acknowledged position; no duplicate; no gap."""
    store = open_store(database)
    try:
        rows = store.query(f"SELECT position, event_id FROM {store.log_table} ORDER BY position")
    finally:
        store.close()
    positions = [int(p) for p, _ in rows]
    assert positions == list(range(1, len(positions) + 1)), "a gap in positions"
    stored = {str(e): int(p) for p, e in rows}
    assert len(stored) == len(rows), "an event stored twice"
    lost = {e: p for e, p in writers.acknowledged.items() if stored.get(e) != p}
    assert not lost, f"acknowledged events lost or moved: {list(lost.items())[:5]}"
    ours = {e for e in stored if e.startswith("K")}
    assert ours <= writers.attempted
    return {"stored": len(ours), "acknowledged": len(writers.acknowledged), "lost": len(lost)}


def _load_demo(target: str) -> None:
    with LedgerClient(target, backoff=0.05, wait_for_ready=True) as client:
        load_scenario(client, read_scenario(demo_scenario_path()))


def test_kill_9_under_load_loses_nothing(database_url: str, tmp_path: Path) -> None:
    with ledger_process(database_url, tmp_path) as server:
        _load_demo(server.target)
        start = WRITERS_START
        with Writers(server.target, start) as writers:
            for kill in range(1, KILLS + 1):
                writers.wait_for(kill * 15)
                server.kill()
                server.start()
            writers.wait_for((KILLS + 1) * 15)
        assert not writers.failures, writers.failures[:3]
        assert server.stop() == 0
    figures = _check_log(database_url, writers)
    print(f"\nkill -9 x{KILLS} ({database_url.split(':', maxsplit=1)[0]}): {figures}")
    # every batch a writer finished was acknowledged: nothing attempted is missing
    assert figures["stored"] >= figures["acknowledged"]


@pytest.mark.postgres
def test_postgres_restart_under_a_running_server(tmp_path: Path) -> None:
    with throwaway_postgres() as pg:
        schema = f"t_{uuid.uuid4().hex}"
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        database = f"{pg.url}?schema={schema}"
        with ledger_process(database, tmp_path) as server:
            _load_demo(server.target)
            start = WRITERS_START
            with Writers(server.target, start) as writers:
                for restart in range(1, 3):
                    writers.wait_for(restart * 15)
                    pg.restart()
                writers.wait_for(3 * 15 + 10)
            assert not writers.failures, writers.failures[:3]
            assert server.starts == 1  # recovered without a restart of its own
            assert server.process is not None and server.process.poll() is None
            assert server.stop() == 0
        figures = _check_log(database, writers)
        print(f"\npostgres restarted x2 under load: {figures}")
