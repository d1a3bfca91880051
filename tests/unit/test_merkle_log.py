"""The ledger's transparency log and the partner's monitor, end to end
without a transport: checkpoints, proofs, forks and rollbacks."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from ledger.audit.checkpoint import CheckpointError, Signer
from ledger.audit.leaf import leaf_bytes
from ledger.audit.merkle import ProofError, TreeRangeError, verify_consistency
from ledger.audit.monitor import LogForkError, LogMonitor
from ledger.audit.tlog import TransparencyLog
from ledger.domain import events as ev

ORIGIN = "sla-ledger.example/log"
SIGNER = Signer.generate(ORIGIN)
SECOND = 1_000_000
T0 = 1_790_000_000 * SECOND


def event(position: int, to: str = "hp") -> ev.LedgerEvent:
    return ev.LedgerEvent(event_id=f"e-{position}", agreement_id="herts-converged",
                          incident_id=f"INC-{position // 3}", occurred_at=T0 + position,
                          actor="bt", payload=ev.HandedOff(to=to), position=position,
                          recorded_at=T0 + position + 5, submitted_by="bt-gw")


def grown(n: int, *, changed: int = 0) -> TransparencyLog:
    log = TransparencyLog(SIGNER)
    for p in range(1, n + 1):
        log.append(event(p, to="hp" if p != changed else "bt"))
    return log


def test_appends_in_position_order_only() -> None:
    log = grown(3)
    with pytest.raises(ValueError, match="expects 4"):
        log.append(event(5))
    with pytest.raises(ValueError, match="expects 4"):
        log.append(event(3))
    assert log.size == 3


def test_checkpoints_are_due_while_the_log_grows() -> None:
    log = grown(2)
    assert log.due(T0, 10 * SECOND)
    first = log.sign(T0)
    assert log.latest() == first and first.checkpoint.size == 2
    assert not log.due(T0 + 60 * SECOND, 10 * SECOND)  # nothing new
    log.append(event(3))
    assert not log.due(T0 + 5 * SECOND, 10 * SECOND)
    assert log.due(T0 + 10 * SECOND, 10 * SECOND)
    assert log.sign(T0 + 10 * SECOND).checkpoint.timestamp == T0 + 10 * SECOND


def test_partner_verifies_events_and_follows_the_log() -> None:
    log = grown(5)
    monitor = LogMonitor(SIGNER.verifier)
    monitor.observe(log.sign(T0).note)  # first contact: nothing to be consistent with
    proof = log.inclusion_proof(4)  # tree_size 0: the latest checkpoint's
    assert (proof.leaf_index, proof.tree_size) == (3, 5)
    got = monitor.check_event(leaf_bytes(event(4)), proof.leaf_index, proof.tree_size,
                              proof.hashes)
    assert got["event_id"] == "e-4"
    with pytest.raises(ProofError):  # the event as the operator would like it to be
        monitor.check_event(leaf_bytes(event(4, to="bt")), 3, 5, proof.hashes)
    with pytest.raises(ProofError, match="holds position"):  # another event's bytes
        monitor.check_event(leaf_bytes(event(3)), 3, 5, proof.hashes)
    for p in range(6, 12):
        log.append(event(p))
    signed = log.sign(T0 + SECOND)
    first, second, hashes = log.consistency_proof(5)
    assert (first, second) == (5, 11)
    assert monitor.observe(signed.note, hashes).size == 11
    resumed = LogMonitor(SIGNER.verifier, trusted_note=monitor.trusted_note)
    assert resumed.trusted == signed.checkpoint


def test_a_rewritten_history_is_a_fork() -> None:
    honest = grown(8)
    monitor = LogMonitor(SIGNER.verifier)
    monitor.observe(honest.sign(T0).note)
    forked = grown(12, changed=3)  # same key, position 3 rewritten, then grown
    signed = forked.sign(T0 + SECOND)
    _, _, hashes = forked.consistency_proof(8)
    with pytest.raises(LogForkError, match="does not extend") as caught:
        monitor.observe(signed.note, hashes)
    assert caught.value.offered_note == signed.note
    assert monitor.trusted is not None and monitor.trusted.size == 8  # unchanged
    assert not verify_consistency(8, 12, honest.tree.root(8), forked.tree.root(), hashes)


def test_rollbacks_and_strangers_are_refused() -> None:
    log = grown(8)
    monitor = LogMonitor(SIGNER.verifier)
    monitor.observe(log.sign(T0).note)
    shorter = grown(6).sign(T0 + SECOND)
    with pytest.raises(LogForkError, match="went back"):
        monitor.observe(shorter.note)
    stranger = TransparencyLog(Signer.generate(ORIGIN))
    stranger.append(event(1))
    with pytest.raises(CheckpointError):
        monitor.observe(stranger.sign(T0).note)


def test_proof_ranges() -> None:
    log = grown(4)
    with pytest.raises(TreeRangeError, match="no checkpoint"):
        log.inclusion_proof(1)
    log.sign(T0)
    for position, size in ((0, 4), (5, 4), (3, 2), (1, 5)):
        with pytest.raises(TreeRangeError):
            log.inclusion_proof(position, size)
    with pytest.raises(TreeRangeError):
        log.consistency_proof(5)


def test_concurrent_appends_and_checkpoints_stay_consistent() -> None:
    log = TransparencyLog(SIGNER)
    monitor = LogMonitor(SIGNER.verifier)
    stop = threading.Event()
    seen = []

    def sign_loop() -> None:
        tick = 0
        while not stop.is_set():
            tick += 1
            seen.append(log.sign(T0 + tick))

    thread = threading.Thread(target=sign_loop)
    thread.start()
    try:
        for p in range(1, 3001):
            log.append(event(p))
    finally:
        stop.set()
        thread.join()
    for signed in [*seen, log.sign(T0 + 10**9)]:
        _, _, hashes = log.consistency_proof(monitor.trusted.size if monitor.trusted else 0,
                                             signed.checkpoint.size)
        if monitor.trusted is None or signed.checkpoint.size >= monitor.trusted.size:
            monitor.observe(signed.note, hashes)
    assert monitor.trusted is not None and monitor.trusted.size == 3000
    assert dataclasses.replace(monitor.trusted, timestamp=None).root_hash == log.tree.root()
