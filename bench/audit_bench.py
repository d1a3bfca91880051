"""Verifiable-log benchmarks: appends with the Merkle projection, proof latency,
bundle verification. Results and how to read them: bench/README.md.

  python -m bench.audit_bench append --db URL [--events 20000] [--batch 10]
      append throughput through LedgerService, without and with the Merkle
      projection maintained by the projection runner (alternating runs, best of)
  python -m bench.audit_bench proofs --db URL [--leaves 1000000]
      inclusion and consistency proof latency of the DB-backed AuditLog (each
      call syncs with audit_leaves first, as the service does) at 1M leaves
  python -m bench.audit_bench verify [--events 1000000]
      verify_bundle of a 1M-event bundle against plain SHA-256 of the same bytes

URL: sqlite:///path.db or postgresql://postgres@127.0.0.1:5432/test?schema=s
(a schema that exists; each run uses fresh schemas/files derived from it).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
import uuid
from hashlib import sha256
from pathlib import Path
from typing import Any

from bench.audit_synthetic import proof_latency, verify_rate, write_synthetic_bundle
from ledger.adapters.eventstore import open_store
from ledger.adapters.scenario import read_scenario
from ledger.audit.checkpoint import Signer
from ledger.domain import events as ev
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.instants import parse_instant
from ledger.domain.terms_parsing import parse_terms

DEMO = Path(__file__).resolve().parents[1] / "ledger" / "demo" / "herts-2026-10.json"
T0 = parse_instant("2026-10-01T00:00:00Z")


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    import os

    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "system": platform.platform()}


def fresh_url(url: str, tag: str) -> str:
    """A private database for one run: a new schema, or a new SQLite file."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        return f"sqlite:///{path.with_name(f'{path.stem}-{tag}-{uuid.uuid4().hex[:6]}.db')}"
    import psycopg

    base = url.split("?", 1)[0]
    schema = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}?schema={schema}"


def drop(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).unlink(missing_ok=True)
        return
    import psycopg

    schema = url.split("schema=", 1)[1]
    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _batches(events: int, batch: int) -> list[list[ev.LedgerEvent]]:
    """Opened events of new incidents (always valid), `batch` per append."""
    out = []
    for b in range(events // batch):
        out.append([ev.LedgerEvent(
            event_id=f"e-{b}-{i}", agreement_id="herts-converged", incident_id=f"B-{b}-{i}",
            occurred_at=T0 + b * 1000 + i, actor="bt",
            payload=ev.Opened(service="converged-network", priority="P3", custody="bt"))
            for i in range(batch)])
    return out


def append_run(url: str, events: int, batch: int, merkle: bool) -> dict[str, float]:
    from ledger.application.ledger_service import LedgerService
    from projections.audit_tree import MerkleProjection
    from projections.runner import ProjectionRunner

    store = open_store(url)
    try:
        raw = read_scenario(str(DEMO)).agreements[0]
        clock = [T0]

        def tick() -> int:
            clock[0] += 1000
            return clock[0]

        runner = ProjectionRunner(store, [MerkleProjection()]) if merkle else None
        notify = (lambda stored: runner.notify(stored[-1].position)) if runner else None
        service = LedgerService(store, tick, on_stored=notify)
        service.register_agreement(LOCAL_ADMIN, "reg", raw["id"],
                                   parse_instant(raw["effective_from"]), parse_terms(raw))
        if runner is not None:
            runner.run_once()
            runner.start()
        work = _batches(events, batch)
        started = time.perf_counter()
        for chunk in work:
            service.append(LOCAL_ADMIN, chunk)
        appended = time.perf_counter() - started
        if runner is not None:
            if not runner.wait_for(store.max_position(), 600):
                raise RuntimeError("the Merkle projection did not catch up")
            runner.stop()
        total = time.perf_counter() - started
        return {"events_per_s": events / total, "append_s": appended, "total_s": total}
    finally:
        store.close()


def cmd_append(args: argparse.Namespace) -> dict[str, Any]:
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.runs):
        for merkle in (False, True):
            url = fresh_url(args.db, "append")
            try:
                result = append_run(url, args.events, args.batch, merkle)
            finally:
                drop(url)
            key = "with_merkle" if merkle else "without"
            if key not in best or result["events_per_s"] > best[key]["events_per_s"]:
                best[key] = result
    overhead = 1 - best["with_merkle"]["events_per_s"] / best["without"]["events_per_s"]
    return {"events": args.events, "batch": args.batch, "runs": args.runs, **best,
            "throughput_cost": f"{overhead:.1%}"}


def cmd_proofs(args: argparse.Namespace) -> dict[str, Any]:
    from projections.audit_log import AuditLog
    from projections.audit_tree import MerkleProjection
    from projections.storage import ProjectionDatabase

    url = fresh_url(args.db, "proofs")
    store = open_store(url)
    try:
        db = ProjectionDatabase.of_store(store)
        with db.transaction() as tx:
            MerkleProjection().create_tables(tx)
        base = sha256(b"bench").digest()
        started = time.perf_counter()
        for start in range(0, args.leaves, 50_000):
            rows = [(p, sha256(base + p.to_bytes(4, "big")).digest())
                    for p in range(start + 1, min(args.leaves, start + 50_000) + 1)]
            with db.transaction() as tx:
                tx.executemany(f"INSERT INTO {tx.table('audit_leaves')} VALUES (?, ?)", rows)
        db.create_tracking_table()
        with db.transaction() as tx:  # as the projection would have left it
            from projections.storage import ensure_position, write_position

            ensure_position(tx, MerkleProjection.name)
            write_position(tx, MerkleProjection.name, args.leaves, 0)
        filled = time.perf_counter() - started
        started = time.perf_counter()  # includes the one-time backfill of audit_nodes
        log = AuditLog(db, Signer.generate("bench.example/log"))
        loaded = time.perf_counter() - started
        log.sign(T0)
        rng = random.Random(1)
        inclusion, consistency = [], []
        for _ in range(args.samples):
            size = rng.randint(1, args.leaves)
            position, first = rng.randint(1, size), rng.randint(1, size)
            t0 = time.perf_counter()
            log.inclusion_proof(position, size)
            t1 = time.perf_counter()
            log.consistency_proof(first, size)
            t2 = time.perf_counter()
            inclusion.append(t1 - t0)
            consistency.append(t2 - t1)
    finally:
        store.close()
        drop(url)

    def pct(samples: list[float]) -> dict[str, float]:
        s = sorted(samples)
        return {q: round(s[min(len(s) - 1, int(len(s) * f))] * 1e3, 3)
                for q, f in (("p50_ms", 0.5), ("p99_ms", 0.99), ("max_ms", 1.0))}

    return {"leaves": args.leaves, "fill_table_s": round(filled, 1),
            "load_tree_at_start_s": round(loaded, 2), "db_inclusion": pct(inclusion),
            "db_consistency": pct(consistency),
            "in_memory": proof_latency(args.leaves, args.samples)}


def cmd_verify(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "bundle"
        signer = write_synthetic_bundle(directory, args.events)
        return {"events": args.events, **verify_rate(directory, signer.verifier.vkey)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    append = sub.add_parser("append")
    append.add_argument("--db", required=True)
    append.add_argument("--events", type=int, default=20_000)
    append.add_argument("--batch", type=int, default=10)
    append.add_argument("--runs", type=int, default=3)
    proofs = sub.add_parser("proofs")
    proofs.add_argument("--db", required=True)
    proofs.add_argument("--leaves", type=int, default=1_000_000)
    proofs.add_argument("--samples", type=int, default=2000)
    verify = sub.add_parser("verify")
    verify.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    command = {"append": cmd_append, "proofs": cmd_proofs, "verify": cmd_verify}[args.command]
    print(json.dumps({"machine": machine(), args.command: command(args)}, indent=2))


if __name__ == "__main__":
    main()
