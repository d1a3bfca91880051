"""The write path against its raw limit (issue 9). Results: bench/README.md.

  python -m bench.append run --pg URL --sqlite-dir DIR [--rounds 3] [--seconds 4]
  python -m bench.append profile --db URL [--concurrency 8] [--seconds 6]

`run` starts, per database, the real server (`sla-ledger serve`: group
commit, the Merkle and SLA projections following, metrics and request logs
as in production) and a trivial grpc.aio service answering the same
`IncidentService.AppendEvents` (PostgreSQL: one plain psycopg INSERT per
call, autocommit, from a pool of 16 connections, or a 100-row transaction per
batch call; SQLite: one INSERT per call in a WAL file with synchronous=FULL,
or 100 rows per transaction; bench/append_baseline.py). Both run as their own processes; the load
generator (grpc.aio, this process) drives them alternately with the same
requests: baseline, ledger, baseline, ledger, ... `--rounds` times each.
With `--before DIR` (e.g. `git worktree add DIR <commit>`) that version's
server runs too, on its own database, in the same alternation.

Workloads: `new` (each call opens a new incident), `mix` (each worker walks
its own incidents through opened, responded, handed_off, resolved, one event
per call) and `batch` (100 events per call: 25 incidents of 4 events).

`profile` runs the server in this process under yappi (CPU clock, every
thread) while a load-generator subprocess drives `new` at the concurrency,
and prints the functions taking the most time (`pip install yappi`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

import grpc

from ledger.client import convert
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import format_instant
from ledger.v1 import incidents_pb2

AGREEMENT = "bench-append"
MINUTE = 60 * 10**6
METHOD = "/ledger.v1.IncidentService/AppendEvents"
PROVIDERS = ("bt", "hp", "kc")
CASES = [("new", 1), ("new", 8), ("new", 32), ("mix", 8), ("mix", 32), ("batch", 4)]


# -- requests ------------------------------------------------------------------------
class Requests:
    """Valid requests for one worker: its own incidents, times in the past."""

    def __init__(self, kind: str, prefix: str, start: int) -> None:
        self.kind, self.prefix, self.t = kind, prefix, start
        self.n = 0
        self.step = 0

    def _incident(self) -> list[dict[str, Any]]:
        self.n += 1
        self.t += MINUTE
        incident = f"{self.prefix}-{self.n}"
        holder = PROVIDERS[self.n % 3]
        other = PROVIDERS[(self.n + 1) % 3]
        raw = [
            {"type": "opened", "agreement": AGREEMENT, "service": "desktop", "priority": "P3",
             "custody": holder, "actor": "herts"},
            {"type": "responded", "actor": holder},
            {"type": "handed_off", "to": other, "actor": holder},
            {"type": "resolved", "actor": other},
        ]
        return [{"event_id": f"{incident}-{i}", "incident_id": incident,
                 "occurred_at": format_instant(self.t + i * 3 * MINUTE), **e}
                for i, e in enumerate(raw)]

    def next(self) -> bytes:
        if self.kind == "new":
            events = self._incident()[:1]
        elif self.kind == "mix":
            if self.step % 4 == 0:
                self._pending = self._incident()
            events = [self._pending[self.step % 4]]
            self.step += 1
        else:
            events = [e for _ in range(25) for e in self._incident()]
        request = incidents_pb2.AppendEventsRequest(
            events=[convert.event_to_proto(event_from_dict(e)) for e in events])
        return request.SerializeToString()


@dataclass
class Result:
    calls: int
    events: int
    failed: int
    seconds: float
    latencies: list[float]

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies) or [0.0]
        return {"events_per_s": self.events / self.seconds, "calls_per_s": self.calls / self.seconds,
                "p50_ms": 1000 * lat[len(lat) // 2],
                "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                "failed": self.failed}


async def drive(target: str, kind: str, concurrency: int, seconds: float, prefix: str,
                start: int) -> Result:
    per_call = 100 if kind == "batch" else 1
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)

        async def worker(w: int) -> None:
            nonlocal failed
            requests = Requests(kind, f"{prefix}-w{w}", start)
            while time.perf_counter() < deadline:
                body = requests.next()
                began = time.perf_counter()
                try:
                    await call(body, timeout=30)
                    latencies.append(time.perf_counter() - began)
                except grpc.aio.AioRpcError as exc:
                    failed += 1
                    print(f"  failed: {exc.code().name} {exc.details()}", file=sys.stderr)

        began = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(len(latencies), len(latencies) * per_call, failed, elapsed, latencies)


# -- orchestration ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(target: str, seconds: float = 60) -> None:
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=seconds)


def start_ledger_process(db: str, workdir: str,
                         source: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`sla-ledger serve` of this checkout, or of the one at `source`."""
    port = _free_port()
    cmd = [sys.executable, "-m", "ledger.cli.main", "serve", "--listen", f"127.0.0.1:{port}",
           "--database", db, "--metrics-listen", "127.0.0.1:0",
           "--checkpoint-key", os.path.join(workdir, f"key-{port}.pem")]
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.path.abspath(source)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=os.path.abspath(source) if source else None)
    target = f"127.0.0.1:{port}"
    _wait_ready(target)
    return proc, target


def start_trivial_process(db: str, workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    port_file = os.path.join(workdir, f"trivial-{uuid.uuid4().hex}.port")
    proc = subprocess.Popen([sys.executable, "-m", "bench.append_baseline", "--db", db,
                             "--port-file", port_file])
    port = ""
    for _ in range(600):
        if os.path.exists(port_file):
            with open(port_file) as f:
                port = f.read()
            if port:
                break
        time.sleep(0.1)
    target = f"127.0.0.1:{port}"
    _wait_ready(target)
    return proc, target


def register(target: str) -> None:
    from bench.sla_history import bench_terms
    from ledger.client import LedgerClient
    from ledger.domain.instants import parse_instant

    with LedgerClient(target) as client:
        client.register_agreement(AGREEMENT, parse_instant("2026-01-01T00:00:00Z"),
                                  bench_terms(AGREEMENT), event_id=f"register:{AGREEMENT}")


def _sibling(db: str, suffix: str) -> str:
    """A second, empty database next to `db` (a new schema on PostgreSQL)."""
    if db.startswith("sqlite"):
        return f"{db.rsplit('.db', 1)[0]}-{suffix}.db"
    from urllib.parse import parse_qs, urlparse

    import psycopg

    schema = f"{parse_qs(urlparse(db).query).get('schema', ['public'])[0]}_{suffix}"
    with psycopg.connect(db.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{db.split('?', 1)[0]}?schema={schema}"


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _run_case(name: str, kind: str, concurrency: int, servers: list[tuple[str, str]],
              rounds: int, seconds: float, start: int) -> dict[str, Any]:
    """One workload against every server, alternating, `rounds` times each."""
    runs: dict[str, list[dict[str, float]]] = {who: [] for who, _ in servers}
    for r in range(rounds):
        for who, target in servers:
            prefix = f"{kind}{concurrency}-{who}-{r}-{uuid.uuid4().hex[:6]}"
            result = asyncio.run(drive(target, kind, concurrency, seconds, prefix, start))
            runs[who].append(result.summary())
            s = runs[who][-1]
            print(f"{name} {kind} c{concurrency} {who:8s} round {r + 1}: "
                  f"{s['events_per_s']:8.0f} events/s  p50 {s['p50_ms']:6.1f} ms  "
                  f"p99 {s['p99_ms']:6.1f} ms  failed {s['failed']:.0f}", flush=True)
    case: dict[str, Any] = {"database": name, "workload": kind, "concurrency": concurrency,
                            **{who: {k: _stats([x[k] for x in xs]) for k in xs[0]}
                               for who, xs in runs.items()}}
    case["ratio"] = (case["ledger"]["events_per_s"]["median"]
                     / case["trivial"]["events_per_s"]["median"])
    if "before" in case:
        case["ratio_before"] = (case["before"]["events_per_s"]["median"]
                                / case["trivial"]["events_per_s"]["median"])
    print(f"==> {name} {kind} c{concurrency}: ratio {case['ratio']:.2f}"
          + (f" (before: {case['ratio_before']:.2f})" if "before" in case else ""),
          flush=True)
    return case


def cmd_run(args: argparse.Namespace) -> None:
    workdir = tempfile.mkdtemp(prefix="bench-append-")
    databases = []
    if args.pg:
        databases.append(("postgresql", args.pg))
    if args.sqlite_dir:
        os.makedirs(args.sqlite_dir, exist_ok=True)
        run_id = uuid.uuid4().hex[:6]
        databases.append(("sqlite", f"sqlite:///{os.path.abspath(args.sqlite_dir)}/ledger-{run_id}.db"))
    report: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, shared", "cases": []}
    # Incidents are independent: every worker's start a month ago (one
    # minute further per incident) keeps every instant in the past.
    start = time.time_ns() // 1000 - 30 * 24 * 60 * MINUTE
    for name, db in databases:
        trivial_db = (f"{db.rsplit('.db', 1)[0]}-plain.db" if name == "sqlite" else db)
        ledger, ledger_target = start_ledger_process(db, workdir)
        trivial, trivial_target = start_trivial_process(trivial_db, workdir)
        servers = [("trivial", trivial_target), ("ledger", ledger_target)]
        procs = [ledger, trivial]
        if args.before:
            before, before_target = start_ledger_process(_sibling(db, "before"), workdir,
                                                         args.before)
            procs.append(before)
            servers.insert(1, ("before", before_target))
            register(before_target)
        try:
            register(ledger_target)
            for kind, concurrency in CASES:
                if not args.only or f"{kind}{concurrency}" in args.only:
                    report["cases"].append(
                        _run_case(name, kind, concurrency, servers, args.rounds, args.seconds, start))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


def cmd_drive(args: argparse.Namespace) -> None:
    start = time.time_ns() // 1000 - 30 * 24 * 60 * MINUTE
    result = asyncio.run(drive(args.target, args.kind, args.concurrency, args.seconds,
                               f"prof-{uuid.uuid4().hex[:6]}", start))
    print(json.dumps(result.summary()))


def cmd_profile(args: argparse.Namespace) -> None:
    import yappi

    from ledger.grpc.server import ServerConfig
    from ledger.server import observability
    from ledger.server.bootstrap import start_ledger

    async def main() -> None:
        interceptors, stop_metrics = observability.start("127.0.0.1:0")
        ledger = await start_ledger(args.db, ServerConfig(listen="127.0.0.1:0"),
                                    interceptors=interceptors, observers=[observability.observer()])
        observability.instrument(ledger)
        target = f"127.0.0.1:{ledger.port}"
        await asyncio.to_thread(register, target)
        yappi.set_clock_type("cpu")
        yappi.start()
        drive_cmd = [sys.executable, "-m", "bench.append", "drive", "--target", target,
                     "--kind", args.kind, "--concurrency", str(args.concurrency),
                     "--seconds", str(args.seconds)]
        proc = await asyncio.create_subprocess_exec(*drive_cmd, stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        yappi.stop()
        print("load:", out.decode().strip())
        await ledger.stop(1.0)
        stop_metrics()

    asyncio.run(main())
    stats = yappi.get_func_stats()
    stats.sort("tsub", "desc")
    stats.print_all(out=sys.stdout, columns={0: ("name", 90), 1: ("ncall", 10),
                                             3: ("tsub", 8), 4: ("ttot", 8)})
    print("\nper thread (CPU seconds):")  # names: see the thread_name_prefix of each pool
    for thread in yappi.get_thread_stats():
        print(f"  {thread.name:30s} {thread.ttot:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.append")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--pg", help="postgresql://...?schema=S (the schema must exist)")
    run.add_argument("--sqlite-dir")
    run.add_argument("--rounds", type=int, default=3)
    run.add_argument("--seconds", type=float, default=4.0)
    run.add_argument("--only", nargs="*", help="cases, e.g. new8 batch4")
    run.add_argument("--before", help="a checkout of an earlier version, run as a third server")
    run.add_argument("--out")
    drive_p = sub.add_parser("drive")
    drive_p.add_argument("--target", required=True)
    drive_p.add_argument("--kind", default="new")
    drive_p.add_argument("--concurrency", type=int, default=8)
    drive_p.add_argument("--seconds", type=float, default=6.0)
    prof = sub.add_parser("profile")
    prof.add_argument("--db", required=True)
    prof.add_argument("--kind", default="new", choices=("new", "mix", "batch"))
    prof.add_argument("--concurrency", type=int, default=8)
    prof.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    if args.cmd == "run":
        cmd_run(args)
    elif args.cmd == "drive":
        cmd_drive(args)
    else:
        cmd_profile(args)


if __name__ == "__main__":
    main()
