"""Sharding by agreement (docs/scaling.md), with two PostgreSQL schemas
standing in for two Citus worker groups: each shard is a whole ledger (its
own gap-free log, Merkle log, leader and checkpoints), agreements are placed
on one shard by a placement table, and a log of shard heads -- each leaf a
shard's signed checkpoint -- gives auditors one root over every shard.

What this shows: the ledger needs no change to run per shard; nothing of
one agreement is in another shard; each shard's proofs verify on their own;
a shard head is provably in the global log, and a later global log is
consistent with an earlier one (so no shard's history can be swapped)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from ledger.audit.checkpoint import Signer, verify_checkpoint
from ledger.audit.leaf import event_leaf_hash
from ledger.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.audit.tlog import TransparencyLog
from ledger.domain.access import LOCAL_ADMIN
from ledger.server.bootstrap import Ledger
from ledger.server.checkpoints import AuditConfig
from tests.support.clock import FakeClock
from tests.support.histories import incident_event, register_herts, register_other
from tests.support.ledger_server import running_ledger
from tests.support.postgres import PG_URL, private_schema
from tests.support.processes import wait_until

pytestmark = pytest.mark.postgres

# The placement table (a Citus reference table in production): agreement -> shard.
PLACEMENT = {"herts-converged": 0, "acme-desk": 1}
PARTIES = {"herts-converged": ("herts", "hp"), "acme-desk": ("acme", "globex")}


@pytest.fixture
def shards(clock: FakeClock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Ledger]]:
    with ExitStack() as stack:
        ledgers = []
        for n in range(2):
            schema = stack.enter_context(private_schema())
            key = tmp_path_factory.mktemp(f"shard{n}") / "key.pem"
            audit = AuditConfig(key_path=str(key), origin=f"sla-ledger/shard-{n}")
            ledger, _ = stack.enter_context(running_ledger(f"{PG_URL}?schema={schema}", clock,
                                                           audit=audit))
            ledgers.append(ledger)
        yield ledgers


def append(shards: list[Ledger], agreement: str, n: int) -> None:
    actor, custody = PARTIES[agreement]
    event = incident_event(f"{agreement}-o{n}", f"{agreement}-INC-{n}", "opened",
                           "2026-10-10T09:00:00Z", actor, agreement=agreement,
                           service="desktop", priority="P2", custody=custody)
    shards[PLACEMENT[agreement]].service.append(LOCAL_ADMIN, [event])


def test_two_shards_each_a_whole_ledger_under_one_log_of_shard_heads(
        shards: list[Ledger], clock: FakeClock) -> None:
    register_herts(shards[PLACEMENT["herts-converged"]].service)
    register_other(shards[PLACEMENT["acme-desk"]].service)
    for n in range(12):
        append(shards, "herts-converged", n)
        if n % 2:
            append(shards, "acme-desk", n)
    # every shard elects its own leader (the lock key is per schema)
    for ledger in shards:
        assert ledger.leadership is not None
        wait_until(ledger.leadership.leading, 30, "each shard's leader")

    heads = []
    for n, ledger in enumerate(shards):
        log = ledger.store.read_log(0, 1000)
        assert [e.position for e in log] == list(range(1, len(log) + 1))  # gap-free per shard
        assert {e.agreement_id for e in log} == {a for a, s in PLACEMENT.items() if s == n}
        assert ledger.audit is not None
        head = ledger.audit.checkpoint(refresh=True)
        verifier = ledger.audit.log.signer.verifier
        checkpoint = verify_checkpoint(head.note, verifier, origin=f"sla-ledger/shard-{n}")
        assert checkpoint.size == len(log)
        proof = ledger.audit.log.inclusion_proof(len(log) // 2 + 1)
        assert verify_inclusion(proof.leaf_index, proof.tree_size,
                                event_leaf_hash(log[len(log) // 2]), proof.hashes,
                                checkpoint.root_hash)
        heads.append(head.note.encode())

    # The log of shard heads: one leaf per shard checkpoint, in the order the
    # global sequencer saw them; its own signed checkpoints chain like any log.
    global_log = TransparencyLog(Signer.generate("sla-ledger/global"))
    for note in heads:
        global_log.append_hash(global_log.size + 1, leaf_hash(note))
    first = global_log.sign(clock())
    append(shards, "acme-desk", 99)
    assert shards[1].audit is not None
    later = shards[1].audit.checkpoint(refresh=True)
    global_log.append_hash(global_log.size + 1, leaf_hash(later.note.encode()))
    second = global_log.sign(clock() + 1)
    for index, note in enumerate([*heads, later.note.encode()]):
        proof = global_log.inclusion_proof(index + 1, second.checkpoint.size)
        assert verify_inclusion(index, second.checkpoint.size, leaf_hash(note), proof.hashes,
                                second.checkpoint.root_hash)
    _, _, hashes = global_log.consistency_proof(first.checkpoint.size, second.checkpoint.size)
    assert verify_consistency(first.checkpoint.size, second.checkpoint.size,
                              first.checkpoint.root_hash, second.checkpoint.root_hash, hashes)
