"""The leadership lock and its fence, in one process with two contenders: one
leads at a time; a leader whose lock session is gone cannot store (and so
cannot hand out) a checkpoint, even before it notices; the other takes
over and signs a checkpoint consistent with the first leader's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.adapters.eventstore import EventStore, open_store
from ledger.application.ledger_service import LedgerService
from ledger.audit.checkpoint import Signer
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.errors import Unavailable
from projections.audit_log import AuditLog
from projections.audit_tree import MerkleProjection, stored_checkpoints
from projections.leadership import NotLeader, PgLeadership, SoloLeadership
from projections.runner import ProjectionRunner
from tests.support.clock import FakeClock
from tests.support.histories import opened, register_herts
from tests.support.postgres import PG_URL
from tests.support.processes import wait_until


@pytest.fixture
def stores(pg_schema: str) -> Iterator[tuple[EventStore, EventStore]]:
    a = open_store(f"{PG_URL}?schema={pg_schema}")
    b = open_store(f"{PG_URL}?schema={pg_schema}")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _lock_backend(leadership: PgLeadership) -> int:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                           "AND pid <> pg_backend_pid()",
                           (leadership._connect["application_name"],)).fetchall()
    # both contenders live in this process: the lock holder is the one in pg_locks
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        held = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                            "AND objid::bigint = %s::bigint & 4294967295",
                            (leadership.key,)).fetchall()
    pids = {r[0] for r in row} & {r[0] for r in held}
    (pid,) = pids
    return int(pid)


@pytest.mark.postgres
def test_one_leader_and_a_fenced_checkpoint(stores: tuple[EventStore, EventStore],
                                             clock: FakeClock) -> None:
    store_a, store_b = stores
    service = LedgerService(store_a, clock)
    register_herts(service)
    for n in range(5):
        service.append(LOCAL_ADMIN, [opened(f"o-{n}", f"INC-{n}")])
    signer = Signer.generate("fence.test/log")
    runner_a = ProjectionRunner(store_a, [MerkleProjection()])
    runner_b = ProjectionRunner(store_b, [MerkleProjection()])
    a = PgLeadership(store_a, interval=0.05)
    a.start()
    try:
        assert a.elected.wait(10)
        b = PgLeadership(store_b, interval=0.05)
        runner_a.leading, runner_b.leading = a.leading, b.leading
        log_a = AuditLog(runner_a.db, signer, leadership=a)
        log_b = AuditLog(runner_b.db, signer, leadership=b)
        b.start()
        try:
            assert runner_b.run_once() == 0  # a follower does not apply
            runner_a.run_once()
            assert runner_b.wait_for(store_a.max_position(), 10)  # ...it follows
            first = log_a.sign(clock())
            assert not b.leading()
            with pytest.raises(Unavailable):
                log_b.sign(clock())  # only the leader signs
            assert log_b.latest() == first  # followers serve the stored checkpoint

            service.append(LOCAL_ADMIN, [opened("o-late", "INC-late")])
            runner_a.run_once()
            # The lock session dies (network, backend killed): the fence holds
            # even before the old leader notices.
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (_lock_backend(a),))
            clock.advance(1_000_000)
            with pytest.raises(Unavailable):
                log_a.sign(clock())
            with pytest.raises(NotLeader), a.fenced():
                pass
            assert log_a.latest() == first  # what it signed was forgotten, not handed out
            wait_until(b.leading, 10, "the other contender to lead")
            second = log_b.sign(clock())
            assert second.checkpoint.size == store_a.max_position() > first.checkpoint.size
            with runner_a.db.transaction(commit=False) as tx:
                assert stored_checkpoints(tx) == [second.note, first.note]
        finally:
            b.stop()
    finally:
        a.stop()


def test_sqlite_is_its_own_leader(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        runner = ProjectionRunner(store, [MerkleProjection()])
        solo = SoloLeadership(runner.db)
        assert solo.leading()
        with solo.fenced() as tx:
            tx.execute("SELECT 1")
    finally:
        store.close()
