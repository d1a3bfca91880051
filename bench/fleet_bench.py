"""Fleet benchmarks: replica startup and memory, proof latency from the
database, three replicas against one. Results and how to read them:
bench/README.md.

  python -m bench.fleet_bench proofs --db URL [--leaves 1000000] [--samples 2000]
      a stored tree of N leaves (leaves, subtree hashes and the tracking
      position inserted directly, as the Merkle projection would have stored
      them): startup time and RSS of a fresh process opening the log and
      answering its first proof, at 0 and N leaves, against the previous
      design (every leaf hash read into memory) in the same run; then
      inclusion/consistency proof latency (p50/p99) read from the database
  python -m bench.fleet_bench replicas --db URL [--seconds 20] [--clients 12]
      append throughput of 1 replica and of 3 replicas on one PostgreSQL,
      the same total client concurrency, alternating, best of --runs
  python -m bench.fleet_bench failover --db URL [--runs 5]
      three replicas: seconds from kill -9 of the leader to another replica
      holding the leadership lock, --runs times (the killed one restarted)

URL: postgresql://postgres@127.0.0.1:5432/test (each run makes and drops
its own schemas).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from hashlib import sha256
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]


def _schema(url: str, prefix: str) -> tuple[str, str]:
    base = url.split("?", 1)[0]
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}?schema={schema}", schema


def _drop(url: str, schema: str) -> None:
    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def fill_tree(url: str, leaves: int) -> float:
    """Stores a tree of `leaves` synthetic leaf hashes the way the Merkle
    projection does (leaves, subtrees, tracking position), by COPY."""
    from ledger.adapters.eventstore import open_store
    from ledger.audit.merkle import Frontier
    from projections.audit_tree import MerkleProjection
    from projections.storage import ProjectionDatabase, ensure_position, write_position

    started = time.perf_counter()
    store = open_store(url)
    try:
        db = ProjectionDatabase.of_store(store)
        db.create_tracking_table()
        with db.transaction() as tx:
            MerkleProjection().create_tables(tx)
            ensure_position(tx, MerkleProjection.name)
        base = sha256(b"bench").digest()
        frontier = Frontier()
        chunk = 100_000
        for start in range(0, leaves, chunk):
            hashes = [sha256(base + p.to_bytes(4, "big")).digest()
                      for p in range(start + 1, min(leaves, start + chunk) + 1)]
            nodes = []
            for digest in hashes:
                nodes += frontier.append(digest)
            with db.transaction() as tx:
                tx.insert_rows(tx.table("audit_leaves"), "position, leaf_hash",
                               [(start + i + 1, h) for i, h in enumerate(hashes)])
                tx.insert_rows(tx.table("audit_nodes"), "level, idx, hash", nodes)
                write_position(tx, MerkleProjection.name, start + len(hashes), 0)
        with db.transaction() as tx:
            tx.execute(f"ANALYZE {tx.table('audit_nodes')}")
            tx.execute(f"ANALYZE {tx.table('audit_leaves')}")
    finally:
        store.close()
    return time.perf_counter() - started


# One fresh process per measurement: what a replica pays at startup.
STARTUP = r"""
import json, resource, sys, time
started = time.perf_counter()
from ledger.adapters.eventstore import open_store
from ledger.audit.checkpoint import Signer
from projections.storage import ProjectionDatabase
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store = open_store(sys.argv[1])
db = ProjectionDatabase.of_store(store)
t0 = time.perf_counter()
if sys.argv[2] == "db":
    from projections.audit_log import AuditLog
    log = AuditLog(db, Signer.generate("bench.example/log"))
    size = log.size
    if size:
        log.sign(time.time_ns() // 1000)
        log.inclusion_proof(size // 2)
else:  # the previous design: every leaf hash in memory
    from ledger.audit.memstore import MemoryHashStore
    from ledger.audit.merkle import MerkleTree
    from projections.audit_tree import read_leaf_hashes
    with db.transaction(commit=False) as tx:
        hashes = [h for _, h in read_leaf_hashes(tx)]
    tree = MerkleTree(MemoryHashStore.from_leaf_hashes(hashes))
    del hashes
    if tree.size:
        tree.root(); tree.inclusion_proof(tree.size // 2)
first_proof = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"open_and_first_proof_s": round(first_proof, 3),
                  "peak_rss_mib": round(rss / 1024, 1),
                  "rss_growth_mib": round((rss - rss0) / 1024, 1)}))
"""


def _startup(url: str, mode: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", STARTUP, url, mode], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def cmd_proofs(args: argparse.Namespace) -> dict[str, Any]:
    from ledger.adapters.eventstore import open_store
    from ledger.audit.checkpoint import Signer
    from projections.audit_log import AuditLog
    from projections.storage import ProjectionDatabase

    empty, empty_schema = _schema(args.db, "fleet_empty")
    full, full_schema = _schema(args.db, "fleet_full")
    try:
        fill_tree(empty, 0)
        filled = fill_tree(full, args.leaves)
        startup: dict[str, Any] = {}
        for _ in range(args.runs):  # alternating, best of
            for label, url in (("0", empty), (str(args.leaves), full)):
                for mode in ("db", "memory"):
                    result = _startup(url, mode)
                    key = f"{mode}@{label}"
                    if key not in startup or result["open_and_first_proof_s"] < \
                            startup[key]["open_and_first_proof_s"]:
                        startup[key] = result
        store = open_store(full)
        try:
            log = AuditLog(ProjectionDatabase.of_store(store), Signer.generate("bench.example/log"))
            log.sign(time.time_ns() // 1000)
            rng = random.Random(15)
            db = ProjectionDatabase.of_store(store)
            inclusion, consistency, baseline = [], [], []
            for _ in range(args.samples):
                size = rng.randint(args.leaves // 2, args.leaves)
                position, first = rng.randint(1, size), rng.randint(1, size)
                t0 = time.perf_counter()
                log.inclusion_proof(position, size)
                t1 = time.perf_counter()
                log.consistency_proof(first, size)
                t2 = time.perf_counter()
                # The raw limit, interleaved: one read transaction fetching one
                # leaf row by its key (what any database-backed answer costs).
                with db.transaction(commit=False) as tx:
                    tx.fetchall(f"SELECT leaf_hash FROM {tx.table('audit_leaves')} "
                                "WHERE position = ?", (position,))
                inclusion.append(t1 - t0)
                consistency.append(t2 - t1)
                baseline.append(time.perf_counter() - t2)
        finally:
            store.close()
    finally:
        _drop(args.db, empty_schema)
        _drop(args.db, full_schema)

    def pct(values: list[float], q: float) -> float:
        return round(sorted(values)[int(q * (len(values) - 1))] * 1000, 3)

    return {"leaves": args.leaves, "fill_s": round(filled, 1), "startup": startup,
            "inclusion_ms": {"p50": pct(inclusion, 0.5), "p99": pct(inclusion, 0.99)},
            "consistency_ms": {"p50": pct(consistency, 0.5), "p99": pct(consistency, 0.99)},
            "baseline_one_row_tx_ms": {"p50": pct(baseline, 0.5), "p99": pct(baseline, 0.99)},
            "inclusion_to_baseline_p50": round(pct(inclusion, 0.5) / pct(baseline, 0.5), 2),
            "samples": args.samples, "load_average": os.getloadavg()}


# -- replicas ------------------------------------------------------------


def _append_load(targets: list[str], seconds: float, clients: int, tag: str) -> int:
    from ledger.client import LedgerClient
    from tests.support.histories import opened

    done = threading.Event()
    counts = [0] * clients

    def client(number: int) -> None:
        conns = [LedgerClient(t, timeout=30) for t in targets]
        turn = itertools.cycle(conns[number % len(conns):] + conns[:number % len(conns)])
        try:
            for n in itertools.count():
                if done.is_set():
                    return
                next(turn).append([opened(f"{tag}-{number}-{n}", f"INC-{tag}-{number}-{n}")])
                counts[number] += 1
        finally:
            for c in conns:
                c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)  # a benchmark's measuring window, not synchronisation
    done.set()
    for t in threads:
        t.join(60)
    return sum(counts)


def cmd_replicas(args: argparse.Namespace) -> dict[str, Any]:
    from ledger.audit.checkpoint import load_or_create_signer
    from ledger.client import LedgerClient
    from tests.support.histories import register_herts_remotely
    from tests.support.processes import LedgerProcess

    url, schema = _schema(args.db, "fleet_replicas")
    key = Path(tempfile.mkdtemp()) / "key.pem"
    load_or_create_signer(key, "fleet.test/log")
    replicas = [LedgerProcess(f"r{i}", url, key, interval=5.0, origin="fleet.test/log")
                for i in range(3)]
    results: dict[str, list[float]] = {"1": [], "3": []}
    try:
        for r in replicas:
            r.start()
        with LedgerClient(replicas[0].target) as admin:
            register_herts_remotely(admin)
        _append_load([replicas[0].target], 3, args.clients, "warm")
        for run in range(args.runs):
            for n in ("1", "3"):
                targets = [r.target for r in replicas[:int(n)]]
                count = _append_load(targets, args.seconds, args.clients, f"r{run}x{n}")
                results[n].append(count / args.seconds)
    finally:
        for r in replicas:
            r.stop()
        _drop(args.db, schema)
    best = {n: round(max(v), 1) for n, v in results.items()}
    return {"clients": args.clients, "seconds": args.seconds, "runs": args.runs,
            "events_per_s": {n: [round(x, 1) for x in v] for n, v in results.items()},
            "best": best, "ratio_3_to_1": round(best["3"] / best["1"], 3),
            "cpus": os.cpu_count(),
            "bench_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def cmd_failover(args: argparse.Namespace) -> dict[str, Any]:
    from ledger.audit.checkpoint import load_or_create_signer
    from tests.support.processes import LedgerProcess, leader_pid, wait_until

    url, schema = _schema(args.db, "fleet_failover")
    key = Path(tempfile.mkdtemp()) / "key.pem"
    load_or_create_signer(key, "fleet.test/log")
    replicas = [LedgerProcess(f"r{i}", url, key, origin="fleet.test/log") for i in range(3)]

    def leader() -> LedgerProcess | None:
        pid = leader_pid(args.db, schema)
        return next((r for r in replicas if r.process is not None
                     and r.process.poll() is None and r.pid == pid), None)

    seconds: list[float] = []
    try:
        for r in replicas:
            r.start()
        for _ in range(args.runs):
            old = wait_until(leader, 60, "a leader")
            old.kill()
            killed_at = time.perf_counter()
            wait_until(leader, 60, "a new leader")
            seconds.append(time.perf_counter() - killed_at)
            old.start()
    finally:
        for r in replicas:
            r.stop()
        _drop(args.db, schema)
    ordered = sorted(seconds)
    return {"runs": args.runs, "failover_s": [round(x, 3) for x in seconds],
            "median_s": round(ordered[len(ordered) // 2], 3), "max_s": round(ordered[-1], 3),
            "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_bench")
    sub = parser.add_subparsers(dest="command", required=True)
    proofs = sub.add_parser("proofs")
    proofs.add_argument("--db", required=True)
    proofs.add_argument("--leaves", type=int, default=1_000_000)
    proofs.add_argument("--samples", type=int, default=2000)
    proofs.add_argument("--runs", type=int, default=2)
    replicas = sub.add_parser("replicas")
    replicas.add_argument("--db", required=True)
    replicas.add_argument("--seconds", type=float, default=20)
    replicas.add_argument("--clients", type=int, default=12)
    replicas.add_argument("--runs", type=int, default=2)
    failover = sub.add_parser("failover")
    failover.add_argument("--db", required=True)
    failover.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    commands = {"proofs": cmd_proofs, "replicas": cmd_replicas, "failover": cmd_failover}
    result = commands[args.command](args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
