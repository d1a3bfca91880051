"""Start-up DDL on PostgreSQL beside a running leader, and two set-ups at once.

A replica restarting in the fleet ran its projections' `CREATE ... IF NOT
EXISTS` while the leader was mid-batch: CREATE INDEX locked each table (SHARE)
before finding its index there, so the set-up waited for the leader's batch
while holding the tables the batch wrote next, and PostgreSQL broke the
deadlock by failing one of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest

from ledger.adapters.eventstore import EventStore, open_store
from projections.audit_tree import MerkleProjection
from projections.runner import ProjectionRunner
from projections.sla_projection import SlaProjection
from projections.storage import ProjectionDatabase
from tests.support.postgres import PG_URL, private_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema() -> Iterator[str]:
    with private_schema() as name:
        yield name


def _start(schema: str) -> EventStore:
    store = open_store(f"{PG_URL}?schema={schema}")
    ProjectionRunner(store, [MerkleProjection(), SlaProjection(store)])  # the server's start-up
    return store


def _blocked_by(pid: int) -> bool:
    """Whether any session waits for a lock the session `pid` holds."""
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE %s = ANY(pg_blocking_pids(pid))", (pid,)).fetchone()
    return bool(row and row[0])


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _done_or_blocked(thread: threading.Thread, holder: int) -> bool:
    """Waits (bounded) until `thread` ends or waits for a lock the session
    `holder` holds; True if it ended."""
    for _ in range(600):
        thread.join(0.05)
        if not thread.is_alive():
            return True
        if _blocked_by(holder):
            return False
    raise AssertionError("the set-up neither finished nor waited for a lock")


def _restart_beside(schema: str, holding: list[str], then: list[str]) -> bool:
    """Restarts a replica while a leader's transaction runs `holding`; the
    leader runs `then` once the restart has finished or waits for it, and
    commits. True if the restart finished without waiting; raises what
    either side raised (PostgreSQL's deadlock detection)."""
    with psycopg.connect(PG_URL, connect_timeout=5) as leader:
        for statement in holding:
            leader.execute(statement)
        stores: list[EventStore] = []
        restart, errors = _in_thread(lambda: stores.append(_start(schema)))
        finished = _done_or_blocked(restart, leader.info.backend_pid)
        for statement in then:
            leader.execute(statement)
        leader.commit()
    restart.join(30)
    for store in stores:
        store.close()
    assert not errors, errors
    return finished


def test_a_replica_restarting_beside_a_leader_mid_batch_takes_no_lock_it_holds(
        schema: str) -> None:
    _start(schema).close()
    # The leader mid-batch: its tracking row locked and the clock table
    # written (ROW EXCLUSIVE, the lock its inserts take); the incident
    # table, which the set-up locks before the clock table, comes next.
    assert _restart_beside(
        schema,
        [f'SELECT position FROM "{schema}".projection_tracking WHERE name = \'sla\' FOR UPDATE',
         f'LOCK TABLE "{schema}".sla_clock IN ROW EXCLUSIVE MODE'],
        [f'LOCK TABLE "{schema}".sla_incident IN ROW EXCLUSIVE MODE'],
    ), "the restarted replica's set-up waited for the leader's batch"


def test_a_replica_restarting_beside_an_append_in_progress_does_not_wait_for_it(
        schema: str) -> None:
    open_store(f"{PG_URL}?schema={schema}").close()
    # What the leader's group commit holds until it commits.
    assert _restart_beside(
        schema,
        [f'LOCK TABLE "{schema}".ledger_events IN EXCLUSIVE MODE',
         f'LOCK TABLE "{schema}".ledger_log IN ROW EXCLUSIVE MODE'],
        [],
    ), "the restarted replica's set-up waited for the leader's append"


def test_two_processes_setting_up_one_new_schema_at_once_both_start(schema: str) -> None:
    first = open_store(f"{PG_URL}?schema={schema}")
    try:
        db = ProjectionDatabase.of_store(first)
        db.create_tracking_table()
        with db.setting_up() as tx:
            SlaProjection(first).create_tables(tx)
            MerkleProjection().create_tables(tx)
            assert getattr(tx, "executed", None), "the new schema's DDL ran"
            holder = tx.cursor.connection.info.backend_pid
            stores: list[EventStore] = []
            second, errors = _in_thread(lambda: stores.append(_start(schema)))
            assert not _done_or_blocked(second, holder), "the second set-up waits for the first"
        second.join(30)
        assert not second.is_alive() and not errors, errors
        for store in stores:
            store.close()
        # Current now: a third start-up runs no DDL at all.
        with ProjectionDatabase.of_store(first).setting_up() as tx:
            SlaProjection(first).create_tables(tx)
            MerkleProjection().create_tables(tx)
            assert getattr(tx, "executed", None) == []
    finally:
        first.close()
