"""The audit service through a real server, on SQLite and PostgreSQL: proofs
checked by the client's monitor and by the independent RFC 9162 verifier of
tests/unit/test_merkle.py (roots recomputed from the leaf bytes alone), precise
statuses for bad requests, checkpoints that survive a restart, periodic
checkpoints on a fake clock, and a client that notices a forked log."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.adapters.scenario import read_scenario
from ledger.audit.leaf import parse_leaf
from ledger.audit.monitor import LogForkError
from ledger.cli.load import load_scenario
from ledger.client import LedgerClient
from ledger.client.errors import decode_error
from ledger.domain import events as ev
from ledger.domain.access import Principal
from ledger.domain.errors import NotFound
from ledger.domain.instants import parse_instant
from ledger.server.checkpoints import AuditConfig
from ledger.v1 import audit_pb2
from projections.audit_log import ForkedLeaves
from tests.support.clock import FakeClock
from tests.support.ledger_server import running_ledger
from tests.support.merkle_reference import ref_mth, ref_verify_consistency, ref_verify_inclusion
from tests.support.scenarios import SCENARIO

T = parse_instant("2026-11-05T00:00:00Z")
SECOND = 1_000_000
STORED = 112
OPENED = ev.Opened(service="desktop", priority="P4", custody="hp")

pytestmark = pytest.mark.e2e


def config(tmp_path: Path, **kw: Any) -> AuditConfig:
    return AuditConfig(key_path=str(tmp_path / "key.pem"), origin="ledger.test/log", **kw)


def independent_note_check(note: str, vkey: str) -> tuple[int, bytes]:
    """(size, root) of a checkpoint, its Ed25519 signature checked by hand."""
    name, key_id, key = vkey.split("+", 2)
    public = base64.b64decode(key)[1:]
    text, signatures = note.split("\n\n", 1)
    line = next(s for s in signatures.splitlines() if s.startswith(f"\u2014 {name} "))
    raw = base64.b64decode(line.rsplit(" ", 1)[1])
    assert raw[:4].hex() == key_id
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (text + "\n").encode())
    lines = text.split("\n")
    return int(lines[1]), base64.b64decode(lines[2])


def test_proofs_verify_in_the_client_and_independently(database_url: str, tmp_path: Path) -> None:
    with running_ledger(database_url, lambda: T, audit=config(tmp_path)) as (_, target), \
            LedgerClient(target) as raw:
        load_scenario(raw, read_scenario(SCENARIO))
        head = raw.audit.checkpoint(refresh=True)
        vkey = head.public_key
        size, root = independent_note_check(head.checkpoint, vkey)
        assert (size, root) == (head.tree_size, head.root_hash) == (STORED, head.root_hash)
        leaves = [data for _, data in raw.audit.leaves(size)]
        assert ref_mth(leaves) == root  # the root from the leaf bytes alone
        assert raw.audit.leaf_hashes(size) == [hashlib.sha256(b"\0" + d).digest() for d in leaves]
        for position in (1, 2, 64, 65, 111, 112):
            for tree_size in {position, 65, size} - set(range(position)):
                proof = raw.audit.stub.GetInclusionProof(audit_pb2.GetInclusionProofRequest(
                    position=position, tree_size=tree_size))
                assert proof.leaf_bytes == leaves[position - 1]
                assert ref_verify_inclusion(position - 1, tree_size, proof.leaf_hash,
                                            list(proof.hashes), ref_mth(leaves[:tree_size]))
        for first in (0, 1, 7, 64, 100, 112):
            proof = raw.audit.consistency(first, size)
            assert ref_verify_consistency(first, size, ref_mth(leaves[:first]), root,
                                          list(proof.hashes))

        with LedgerClient(target, log_key=vkey) as client:
            assert client.audit.update().size == STORED
            event = client.audit.verify_event(position=42)
            assert event["position"] == 42 and parse_leaf(leaves[41])["event_id"] == event["event_id"]
            by_id = client.audit.verify_event(event_id=event["event_id"])
            assert by_id == event
            # the log grows; the client follows it with a consistency proof
            raw.append([ev.LedgerEvent(event_id="late-1", agreement_id="herts-converged",
                                       incident_id="INC-9001", occurred_at=T - 60 * SECOND,
                                       actor="bt", payload=OPENED)])
            assert client.audit.update(refresh=True).size == STORED + 1
            assert client.audit.verify_event(event_id="late-1")["incident_id"] == "INC-9001"
            saved = client.audit.trusted_note
        with LedgerClient(target, log_key=vkey, trusted_checkpoint=saved) as later:
            assert later.audit.update().size == STORED + 1


def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as exc:
        decoded = decode_error(exc)
        return exc.code(), decoded["message"]
    raise AssertionError("the call succeeded")


def test_bad_requests_answer_precisely(database_url: str, tmp_path: Path) -> None:
    with running_ledger(database_url, lambda: T, audit=config(tmp_path)) as (_, target), \
            LedgerClient(target, attempts=1) as client:
        load_scenario(client, read_scenario(SCENARIO))
        client.audit.checkpoint(refresh=True)
        stub, pb = client.audit.stub, audit_pb2
        cases = [
            (lambda: stub.GetInclusionProof(pb.GetInclusionProofRequest()),
             grpc.StatusCode.INVALID_ARGUMENT, "set position or event_id"),
            (lambda: stub.GetInclusionProof(pb.GetInclusionProofRequest(position=0)),
             grpc.StatusCode.INVALID_ARGUMENT, "positions start at 1"),
            (lambda: stub.GetInclusionProof(pb.GetInclusionProofRequest(event_id="nope")),
             grpc.StatusCode.NOT_FOUND, "'nope'"),
            (lambda: stub.GetInclusionProof(pb.GetInclusionProofRequest(position=500)),
             grpc.StatusCode.NOT_FOUND, "position 500"),
            (lambda: stub.GetInclusionProof(pb.GetInclusionProofRequest(position=50,
                                                                         tree_size=40)),
             grpc.StatusCode.OUT_OF_RANGE, "position 50 is beyond the tree of size 40"),
            (lambda: stub.GetInclusionProof(pb.GetInclusionProofRequest(position=5,
                                                                         tree_size=500)),
             grpc.StatusCode.OUT_OF_RANGE, "tree size 500 is beyond the tree"),
            (lambda: stub.GetInclusionProof(pb.GetInclusionProofRequest(position=5,
                                                                         tree_size=-1)),
             grpc.StatusCode.INVALID_ARGUMENT, "tree_size"),
            (lambda: stub.GetConsistencyProof(pb.GetConsistencyProofRequest(
                first_tree_size=20, second_tree_size=10)),
             grpc.StatusCode.OUT_OF_RANGE, "a log only grows"),
            (lambda: stub.GetConsistencyProof(pb.GetConsistencyProofRequest(first_tree_size=-1)),
             grpc.StatusCode.INVALID_ARGUMENT, "first_tree_size"),
            (lambda: stub.GetConsistencyProof(pb.GetConsistencyProofRequest(first_tree_size=200)),
             grpc.StatusCode.OUT_OF_RANGE, "first tree size 200"),
            (lambda: stub.GetLeafHashes(pb.GetLeafHashesRequest(start_index=-3)),
             grpc.StatusCode.INVALID_ARGUMENT, "start_index"),
            (lambda: stub.ListLeaves(pb.ListLeavesRequest(agreement_id="nope")),
             grpc.StatusCode.NOT_FOUND, "agreement 'nope'"),
            (lambda: stub.ListLeaves(pb.ListLeavesRequest(after_position=1000)),
             grpc.StatusCode.OUT_OF_RANGE, "after_position 1000"),
        ]
        for call, code, message in cases:
            got, text = code_of(call)
            assert (got, message in text) == (code, True), (code, message, text)


def test_inclusion_proofs_only_for_events_the_caller_may_see(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with running_ledger(url, lambda: T, audit=config(tmp_path)) as (ledger, target), \
            LedgerClient(target) as client:
        load_scenario(client, read_scenario(SCENARIO))
        assert ledger.audit is not None
        ledger.audit.checkpoint(refresh=True)
        outsider = Principal("someone", "acme", "provider")
        with pytest.raises(NotFound):
            ledger.audit.inclusion_proof(outsider, position=5)
        party = Principal("bt-noc", "bt", "provider")
        assert ledger.audit.inclusion_proof(party, position=5).proof.leaf_index == 4
        leaves, _, _ = ledger.audit.list_leaves(outsider, 0)
        assert leaves == []


def test_checkpoints_and_leaves_survive_a_restart(database_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with running_ledger(database_url, lambda: T, audit=config(tmp_path)) as (_, target), \
            LedgerClient(target) as client:
        load_scenario(client, read_scenario(SCENARIO))
        before = client.audit.checkpoint(refresh=True)
    with running_ledger(database_url, lambda: T + SECOND, audit=config(tmp_path)) as (ledger, target), \
            LedgerClient(target, log_key=before.public_key,
                         trusted_checkpoint=before.checkpoint) as client:
        assert client.audit.checkpoint().checkpoint == before.checkpoint  # not re-signed
        assert client.audit.verify_event(position=STORED)["position"] == STORED
        assert ledger.audit is not None and ledger.audit.log.size == STORED
    # A leaf rewritten behind the ledger's back: startup reads no leaves
    # (constant time), the operator's full scrub locates it.
    from ledger.adapters.eventstore import open_store
    from ledger.cli.main import main
    from projections.storage import ProjectionDatabase

    def rewrite(sql: str, *params: object) -> None:
        store = open_store(database_url)
        try:
            with ProjectionDatabase.of_store(store).transaction() as tx:
                tx.execute(sql.format(leaves=tx.table("audit_leaves"),
                                      nodes=tx.table("audit_nodes")), params)
        finally:
            store.close()

    key = before.public_key
    assert main(["verify", "--database", database_url, "--key", key]) == 0
    rewrite("UPDATE {leaves} SET leaf_hash = ? WHERE position = 7", bytes(32))
    assert main(["verify", "--database", database_url, "--key", key]) == 1
    assert "altered at position 7" in capsys.readouterr().err
    # The stored subtrees rewritten as well, consistently up to the root: the
    # signed checkpoint no longer matches and the ledger refuses to start signing.
    rewrite("UPDATE {nodes} SET hash = ? WHERE level = 6 AND idx = 0", bytes(32))
    with pytest.raises(ForkedLeaves, match="do not reproduce the signed checkpoint of size 112"), \
            running_ledger(database_url, lambda: T, audit=config(tmp_path)):
        pass


def test_periodic_checkpoints_while_the_log_grows(tmp_path: Path) -> None:
    clock = FakeClock(T)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with running_ledger(url, clock, audit=config(tmp_path)) as (ledger, target), \
            LedgerClient(target) as client:
        audit = ledger.audit
        assert audit is not None and ledger.runner is not None
        load_scenario(client, read_scenario(SCENARIO))
        ledger.runner.run_once()
        minute = 60 * SECOND
        clock.advance(minute)
        signed = audit.checkpoint_if_due(minute)
        assert signed is not None and signed.checkpoint.size == STORED
        assert signed.checkpoint.timestamp == clock.now
        assert audit.checkpoint_if_due(minute) is None  # nothing new
        clock.advance(10 * minute)
        assert audit.checkpoint_if_due(minute) is None  # still nothing new
        client.append([ev.LedgerEvent(event_id="x-1", agreement_id="herts-converged",
                                      incident_id="INC-9002", occurred_at=T, actor="bt",
                                      payload=OPENED)])
        ledger.runner.run_once()
        assert audit.checkpoint_if_due(minute) is not None  # grew, and a minute has passed
        assert audit.checkpoint(refresh=False).checkpoint.size == STORED + 1


def test_the_client_notices_a_forked_log(tmp_path: Path) -> None:
    key = config(tmp_path)  # one key, two histories: what a rewriting operator could do
    with running_ledger(f"sqlite:///{tmp_path / 'a.db'}", lambda: T, audit=key) as (_, target), \
            LedgerClient(target) as client:
        load_scenario(client, read_scenario(SCENARIO))
        first = client.audit.checkpoint(refresh=True)
    # the same events, stored one microsecond later: every leaf differs
    with running_ledger(f"sqlite:///{tmp_path / 'b.db'}", lambda: T + 1, audit=key) as (_, target):
        with LedgerClient(target) as client:
            load_scenario(client, read_scenario(SCENARIO))
            client.append([ev.LedgerEvent(event_id="more", agreement_id="herts-converged",
                                          incident_id="INC-9003", occurred_at=T, actor="bt",
                                          payload=OPENED)])
        with LedgerClient(target, log_key=first.public_key,
                          trusted_checkpoint=first.checkpoint) as partner:
            with pytest.raises(LogForkError, match="does not extend the trusted 112") as info:
                partner.audit.update(refresh=True)
            assert info.value.trusted_note == first.checkpoint
            assert partner.audit.trusted_note == first.checkpoint  # still the old one


def test_checkpoint_metrics_follow_the_signatures(tmp_path: Path) -> None:
    from ledger.server import observability

    class Metrics:
        def __init__(self) -> None:
            self.calls: list[tuple[int, float | None]] = []

        def record_checkpoint(self, size: int, issued_at: float | None = None) -> None:
            self.calls.append((size, issued_at))

    clock = FakeClock(T)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    metrics = Metrics()
    observer = observability.MetricsObserver(metrics)  # type: ignore[arg-type]
    with running_ledger(url, clock, audit=config(tmp_path), observers=[observer]) as (
            ledger, target), LedgerClient(target) as client:
        assert ledger.audit is not None
        load_scenario(client, read_scenario(SCENARIO))
        clock.advance(SECOND)
        client.audit.checkpoint(refresh=True)
        assert metrics.calls[-1] == (STORED, clock.now / 1e6)
