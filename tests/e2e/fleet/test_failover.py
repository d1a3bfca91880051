"""Three replicas on one PostgreSQL under a steady append load from retrying
clients: kill -9 the leader, then a follower, then restart both. At the end
every acknowledged event is stored exactly once, positions are gap-free,
the read models equal a fresh rebuild, the checkpoints form one consistent
chain, and the clients saw no error but UNAVAILABLE or ABORTED."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ledger.adapters.eventstore import open_store
from ledger.audit.checkpoint import Signer, load_or_create_signer, verify_checkpoint
from ledger.audit.leaf import event_leaf_hash
from ledger.audit.merkle import root_from_leaf_hashes, verify_consistency
from ledger.cli.main import main
from ledger.client import LedgerClient
from projections.audit_tree import MerkleProjection, stored_checkpoints
from projections.runner import ProjectionRunner
from projections.sla_projection import SlaProjection
from tests.support.histories import dump, opened, register_herts_remotely
from tests.support.postgres import PG_URL
from tests.support.processes import LedgerProcess, leader_pid, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

CLIENTS = 4
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}


class Load:
    """Clients appending one new incident per call, each retried (same
    event id) on UNAVAILABLE/ABORTED against the next replica."""

    def __init__(self, replicas: list[LedgerProcess]) -> None:
        self.replicas = replicas
        self.acked: dict[str, int] = {}
        self.errors: Counter[str] = Counter()
        self.failures: list[str] = []
        self._done = threading.Event()
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                         for i in range(CLIENTS)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for t in self._threads:
            t.join(60)

    def count(self) -> int:
        with self._changed:
            return len(self.acked)

    def wait_for_more(self, more: int, timeout: float = 120) -> None:
        target = self.count() + more
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.acked) >= target or
                                          bool(self.failures), timeout):
                raise AssertionError(f"load stalled at {len(self.acked)} of {target}")
        assert not self.failures, self.failures

    def _client(self, number: int) -> None:
        clients = [LedgerClient(r.target, attempts=1, timeout=10) for r in self.replicas]
        turn = itertools.cycle(range(number, number + len(clients)))
        try:
            for n in itertools.count():
                if self._done.is_set():
                    return
                event_id = f"c{number}-{n}"
                event = opened(event_id, f"INC-{number}-{n}")
                while True:  # until acknowledged: same event id, next replica
                    client = clients[next(turn) % len(clients)]
                    try:
                        (result,) = client.append([event])
                        break
                    except grpc.RpcError as exc:
                        code = exc.code()
                        self.errors[code.name] += 1
                        if code not in RETRYABLE:
                            self.failures.append(f"{event_id}: {code.name} {exc.details()}")
                            with self._changed:
                                self._changed.notify_all()
                            return
                        if self._done.is_set():
                            return  # never acknowledged: may or may not be stored
                with self._changed:
                    self.acked[event_id] = result.position
                    self._changed.notify_all()
        finally:
            for c in clients:
                c.close()


@pytest.fixture
def fleet(tmp_path: Path, pg_schema: str) -> Iterator[list[LedgerProcess]]:
    database = f"{PG_URL}?schema={pg_schema}"
    key = tmp_path / "checkpoint-key.pem"
    load_or_create_signer(key, "fleet.test/log")
    replicas = [LedgerProcess(f"replica-{i}", database, key, origin="fleet.test/log") for i in range(3)]
    try:
        for r in replicas:
            r.start()
        yield replicas
    finally:
        for r in replicas:
            r.stop()


def leader_of(replicas: list[LedgerProcess], schema: str) -> LedgerProcess | None:
    pid = leader_pid(PG_URL, schema)
    return next((r for r in replicas if r.process is not None and r.process.poll() is None
                 and r.pid == pid), None)


def test_failover_keeps_every_acknowledged_event_once_and_one_checkpoint_chain(  # noqa: PLR0915  one failover scenario told in order
        fleet: list[LedgerProcess], pg_schema: str, tmp_path: Path) -> None:
    with LedgerClient(fleet[0].target) as admin:
        register_herts_remotely(admin)
    leader = wait_until(lambda: leader_of(fleet, pg_schema), 30, "a leader")
    with Load(fleet) as load:
        load.wait_for_more(150)
        # kill -9 the leader while it projects and signs under load: another
        # replica takes the lock PostgreSQL released with the dead backend
        # (how long that takes: python -m bench.fleet_bench failover)
        leader.kill()
        new_leader = wait_until(lambda: leader_of(fleet, pg_schema), 30, "a new leader")
        assert new_leader is not leader
        load.wait_for_more(150)
        follower = next(r for r in fleet if r is not leader and r is not new_leader)
        follower.kill()
        load.wait_for_more(150)
        leader.start()
        follower.start()
        load.wait_for_more(150)
    assert not load.failures, load.failures
    assert set(load.errors) <= {"UNAVAILABLE", "ABORTED"}, load.errors

    # every replica answers from the database the leader maintains
    store = open_store(f"{PG_URL}?schema={pg_schema}")
    try:
        head = store.max_position()
        signer: Signer = load_or_create_signer(tmp_path / "checkpoint-key.pem", "fleet.test/log")[0]
        clients = [LedgerClient(r.target, log_key=signer.verifier) for r in fleet]
        try:
            for c in clients:
                assert c.audit.checkpoint(refresh=True).tree_size >= head  # followers ask the leader
            with store_tx(store) as tx:
                notes = stored_checkpoints(tx, limit=10_000)
            checkpoints = {cp.size: cp for cp in
                           (verify_checkpoint(n, signer.verifier, origin="fleet.test/log")
                            for n in notes)}
            assert len(checkpoints) >= 3
            sizes = sorted(checkpoints)[-10:]
            for (a, b), c in zip(itertools.combinations(sizes, 2), itertools.cycle(clients)):
                proof = c.audit.consistency(a, b)
                assert verify_consistency(a, b, checkpoints[a].root_hash, checkpoints[b].root_hash,
                                          list(proof.hashes)), (a, b)
        finally:
            for c in clients:
                c.close()
        for r in fleet:
            assert r.stop() == 0, "".join(r.output[-30:])

        log = store.read_log(0, limit=1_000_000)
        assert [e.position for e in log] == list(range(1, len(log) + 1))  # gap-free
        stored = Counter(e.event_id for e in log)
        assert all(stored[event_id] == 1 for event_id in load.acked)  # exactly once
        by_id = {e.event_id: e.position for e in log}
        assert all(by_id[i] == p for i, p in load.acked.items())

        # read models: what the leaders maintained equals a fresh rebuild
        runner = ProjectionRunner(store, [MerkleProjection(), SlaProjection(store)])
        assert runner.positions() == {"audit_merkle": len(log), "sla": len(log)}
        live = dump(runner)
        with store_tx(store) as tx:
            leaves = [bytes(r[0]) for r in tx.fetchall(
                f"SELECT leaf_hash FROM {tx.table('audit_leaves')} ORDER BY position")]
            notes = stored_checkpoints(tx, limit=10_000)
        runner.rebuild("sla")
        assert dump(runner) == live
        assert leaves == [event_leaf_hash(e) for e in log]
        # every checkpoint any leader stored is a prefix of the one log
        for note in notes:
            cp = verify_checkpoint(note, signer.verifier, origin="fleet.test/log")
            assert cp.root_hash == root_from_leaf_hashes(leaves[:cp.size])
        # and the operator's full scrub agrees: events, leaves, every stored
        # subtree the successive leaders wrote, every checkpoint
        assert main(["verify", "--database", f"{PG_URL}?schema={pg_schema}",
                     "--key", signer.verifier.vkey]) == 0
    finally:
        store.close()


def store_tx(store: Any) -> Any:
    from projections.storage import ProjectionDatabase

    return ProjectionDatabase.of_store(store).transaction(commit=False)
