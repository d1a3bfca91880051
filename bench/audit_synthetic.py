"""Measurements for bench/: proof latency on a large in-memory tree, and the
rate of verify_bundle against plain hashlib SHA-256 over the same file.

    python -m bench.audit_synthetic [--events 1000000] [--dir DIR]

Synthetic but real events: canonical leaves of four event types with varied
ids and positions (spot-checked with event_from_leaf).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

from ledger.audit.bundle import CHECKPOINT, EVENTS, LEAF_HASHES, PUBLIC_KEY, verify_bundle
from ledger.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from ledger.audit.leaf import event_from_leaf, leaf_bytes
from ledger.audit.memstore import MemoryHashStore
from ledger.audit.merkle import MerkleTree, leaf_hash, root_from_leaf_hashes
from ledger.domain import events as ev

ORIGIN = "bench.sla-ledger.example/log"


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)

    def pick(q: float) -> float:
        return samples[min(len(samples) - 1, int(len(samples) * q))] * 1e3

    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": samples[-1] * 1e3}


def proof_latency(n: int = 1_000_000, samples: int = 2000, seed: int = 1) -> dict[str, Any]:
    base = sha256(b"bench").digest()
    start = time.perf_counter()
    tree = MerkleTree(MemoryHashStore.from_leaf_hashes(
        [sha256(base + i.to_bytes(4, "big")).digest() for i in range(n)]))
    built = time.perf_counter() - start
    rng = random.Random(seed)
    inclusion, consistency = [], []
    for _ in range(samples):
        size = rng.randint(1, n)
        index, first = rng.randrange(size), rng.randint(1, size)
        t0 = time.perf_counter()
        tree.inclusion_proof(index, size)
        t1 = time.perf_counter()
        tree.consistency_proof(first, size)
        t2 = time.perf_counter()
        inclusion.append(t1 - t0)
        consistency.append(t2 - t1)
    return {"leaves": n, "build_s": built, "inclusion": _percentiles(inclusion),
            "consistency": _percentiles(consistency)}


def _templates() -> list[bytes]:
    protos: list[ev.Payload] = [
        ev.HandedOff(to="hp"), ev.ClockPaused(reason="awaiting customer access to site"),
        ev.Opened(service="converged-network", priority="P2", custody="bt", reporter="desk"),
        ev.Responded()]
    out = []
    for payload in protos:
        event = ev.LedgerEvent(event_id="@ID@", agreement_id="herts-converged",
                               incident_id="@INC@", occurred_at=1_790_000_000_000_000,
                               actor="bt", payload=payload, position=1,
                               recorded_at=1_790_000_000_250_000, submitted_by="bt-gateway")
        out.append(leaf_bytes(event).replace(b'"position":1,', b'"position":%d,')
                   .replace(b"@ID@", b"ev-%08d").replace(b"@INC@", b"INC-%06d"))
    return out


def write_synthetic_bundle(directory: Path, n: int) -> Signer:
    directory.mkdir(parents=True, exist_ok=True)
    templates = _templates()
    # placeholders in key order: event_id, incident_id, position
    lines = [templates[i % 4] % (i, i // 5, i) for i in range(1, n + 1)]
    for sample in (lines[0], lines[-1]):
        event_from_leaf(sample)
    hashes = [leaf_hash(line) for line in lines]
    signer = Signer.generate(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, n, root_from_leaf_hashes(hashes)), signer)
    (directory / EVENTS).write_bytes(b"".join(line + b"\n" for line in lines))
    (directory / CHECKPOINT).write_text(note)
    (directory / PUBLIC_KEY).write_text(signer.verifier.vkey + "\n")
    (directory / LEAF_HASHES).write_bytes(b"".join(hashes))
    return signer


def _best(fn: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def verify_rate(directory: Path, key: str, runs: int = 3) -> dict[str, Any]:
    path = directory / EVENTS
    size = path.stat().st_size

    def verify() -> None:
        report = verify_bundle(directory, key=key)
        if not report.ok:
            raise AssertionError(report.summary())

    def per_line_read_split() -> list[bytes]:
        return [sha256(line).digest() for line in path.read_bytes().split(b"\n")]

    def per_line_file_iter() -> list[bytes]:
        with path.open("rb") as f:
            return [sha256(line).digest() for line in f]

    def one_call() -> bytes:
        return sha256(path.read_bytes()).digest()

    times = {"verify_bundle": _best(verify, runs),
             "sha256 per line (read, split)": _best(per_line_read_split, runs),
             "sha256 per line (for line in file)": _best(per_line_file_iter, runs),
             "sha256 of the whole file (one call)": _best(one_call, runs)}
    mb = size / 1e6
    out: dict[str, Any] = {"bytes": size, "seconds": times,
                           "MB_per_s": {k: mb / v for k, v in times.items()}}
    out["verify_vs"] = {k: times[k] / times["verify_bundle"] for k in times if k != "verify_bundle"}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    print("proofs:", proof_latency(args.events))
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp) / "bundle"
        signer = write_synthetic_bundle(directory, args.events)
        print("verify:", verify_rate(directory, signer.verifier.vkey))


if __name__ == "__main__":
    main()
