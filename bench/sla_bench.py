"""SLA read-model benchmarks. Results and how to read them: bench/README.md.

  python -m bench.sla_bench generate --db URL     the histories (once)
  python -m bench.sla_bench rebuild --db URL      rebuild rate vs a plain psycopg read
  python -m bench.sla_bench report --db URL       GetPeriodReport p50/p99 through gRPC
  python -m bench.sla_bench lag --db URL          append-to-visible lag under steady appends
  python -m bench.sla_bench cuts --db URL         reports as recorded at a position, restatements

URL: postgresql://postgres@127.0.0.1:5432/test?schema=bench (the schema must exist).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from typing import Any

from bench.sla_history import bench_terms
from ledger.adapters.eventstore import open_store
from ledger.domain.instants import parse_instant
from ledger.domain.sla.report_json import period_report_dict

YEAR, MONTH, LAG = "bench-year", "bench-month", "bench-lag"


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cmd_generate(args: argparse.Namespace) -> None:
    from bench.sla_history import generate, register

    store = open_store(args.db)
    started = time.perf_counter()
    register(store, YEAR, "2025-11-01T00:00:00Z")
    for position in generate(store, YEAR, "2025-11-01T00:00:00Z", 12, args.year_incidents):
        print(f"\r{YEAR}: {position} events", end="", flush=True)
    register(store, MONTH, "2026-09-01T00:00:00Z")
    for position in generate(store, MONTH, "2026-10-01T00:00:00Z", 1, args.month_incidents,
                             full=False, seed=8):
        print(f"\r{MONTH}: {position} events", end="", flush=True)
    print(f"\nstored {store.max_position()} events in {time.perf_counter() - started:.0f} s")


def plain_read(url: str) -> tuple[int, float]:
    """The least work a rebuild must do: every row in order, payload decoded."""
    from urllib.parse import parse_qs, urlparse

    import psycopg

    schema = parse_qs(urlparse(url).query).get("schema", ["public"])[0]
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(url.split("?", maxsplit=1)[0]) as conn, conn.cursor(name="plain") as cur:
        cur.itersize = 5000
        cur.execute(f'SELECT l.position, e.state FROM "{schema}".ledger_log l '
                    f'JOIN "{schema}".ledger_events e ON e.originator_id = l.originator_id '
                    "AND e.originator_version = l.originator_version ORDER BY l.position")
        for _, state in cur:
            json.loads(state)
            rows += 1
    return rows, time.perf_counter() - started


def cmd_rebuild(args: argparse.Namespace) -> None:
    from projections.runner import ProjectionRunner
    from projections.sla_projection import SlaProjection

    store = open_store(args.db)
    total = store.max_position()
    rows, raw_seconds = plain_read(args.db)
    samples: list[tuple[int, float]] = []

    def committed(name: str, position: int, recorded_at: int, count: int, seconds: float) -> None:
        if position * 10 // total != (position - count) * 10 // total:
            samples.append((position, rss_mib()))

    runner = ProjectionRunner(store, [SlaProjection(store)], batch_size=args.batch,
                              on_commit=committed)
    started = time.perf_counter()
    runner.rebuild("sla")
    seconds = time.perf_counter() - started
    raw_rate, rate = rows / raw_seconds, total / seconds
    print(json.dumps({
        "events": total, "rebuild_seconds": round(seconds, 1), "rebuild_events_per_s": round(rate),
        "plain_read_rows_per_s": round(raw_rate), "ratio": round(rate / raw_rate, 3),
        "batch": args.batch, "rss_mib_at_tenths": [round(m) for _, m in samples],
    }, indent=1))


async def _report_latency(args: argparse.Namespace) -> dict[str, Any]:
    from ledger.client import LedgerClient
    from ledger.grpc.server import ServerConfig
    from ledger.server.bootstrap import start_ledger

    ledger = await start_ledger(args.db, ServerConfig(listen="127.0.0.1:0"))
    try:
        await asyncio.to_thread(ledger.runner.run_once)  # type: ignore[union-attr]
        # Bring the audit log's in-memory tree up to date now, so its first
        # periodic checkpoint does not run during the measurements.
        await asyncio.to_thread(ledger.audit.checkpoint, True)  # type: ignore[union-attr]
        out: dict[str, Any] = {}
        # (agreement, period, evaluated at, with incident ids, repetitions)
        cases = [(MONTH, "2026-10", "2026-11-05T00:00:00Z", False, args.repeat),
                 (YEAR, "2026-03", "2026-04-05T00:00:00Z", False, args.repeat),
                 (MONTH, "2026-10", "2026-11-05T00:00:00Z", True, 10),
                 # mid-month: most clocks are evaluated live, from refolded events
                 (MONTH, "2026-10", "2026-10-20T00:00:00Z", False, 2)]

        def run() -> None:
            with LedgerClient(f"127.0.0.1:{ledger.port}") as client:
                for agreement, period, when, ids, repeat in cases:
                    t = parse_instant(when)
                    timings = []
                    for i in range(repeat + 1):
                        started = time.perf_counter()
                        report = period_report_dict(client.period_report(agreement, period, evaluated_at=t,
                                                      include_incidents=ids))
                        if i >= 1:  # the first call warms caches and connections
                            timings.append(time.perf_counter() - started)
                    counted = sum(sl.get("met", 0) + sl.get("missed", 0) + sl.get("pending", 0)
                                  + sl.get("excused", 0) for sl in report["service_levels"])
                    timings.sort()
                    out[f"{agreement} {period} at {when} ids={ids}"] = {
                        "clocks": counted,
                        "p50_ms": round(statistics.median(timings) * 1000, 1),
                        "p99_ms": round(timings[max(int(len(timings) * 0.99) - 1, 0)] * 1000, 1),
                        "n": len(timings)}
        await asyncio.to_thread(run)
        return out
    finally:
        await ledger.stop()


def _month_positions(store: Any) -> tuple[int, int]:
    """(first, last) ledger positions of the month agreement's events."""
    from ledger.domain.streams import agreement_stream

    registered = store.load_stream(agreement_stream(MONTH))[0].position
    return registered + 1, store.max_position()


def _percentiles(timings: list[float]) -> dict[str, float]:
    timings = sorted(timings)
    return {"p50_ms": round(statistics.median(timings) * 1000, 1),
            "p99_ms": round(timings[max(int(len(timings) * 0.99) - 1, 0)] * 1000, 1),
            "n": len(timings)}


async def _cut_latency(args: argparse.Namespace) -> dict[str, Any]:  # noqa: C901, PLR0915  a benchmark told top to bottom: setup, timed reports, restatements, replay
    """Reports as recorded at a position (issue 11): the month report at the
    latest knowledge, at the middle of the month's events and at the last
    position, in turn in each round so noise falls on all three alike; then
    restatements between two cuts."""
    import grpc

    from ledger.client import LedgerClient
    from ledger.grpc.server import ServerConfig
    from ledger.server.bootstrap import start_ledger

    ledger = await start_ledger(args.db, ServerConfig(listen="127.0.0.1:0"))
    try:
        await asyncio.to_thread(ledger.runner.run_once)  # type: ignore[union-attr]
        await asyncio.to_thread(ledger.audit.checkpoint, True)  # type: ignore[union-attr]
        first, last = _month_positions(ledger.store)
        middle = (first + last) // 2
        t = parse_instant("2026-11-05T00:00:00Z")
        cases: dict[str, int | None] = {"latest": None, f"at {middle} (middle)": middle,
                                        f"at {last} (last)": last}
        restatements = {f"{middle} -> {middle + 1000}": (middle, middle + 1000),
                        f"{last - 1000} -> {last}": (last - 1000, last),
                        f"{middle} -> {last}": (middle, last)}

        def run() -> dict[str, Any]:
            out: dict[str, Any] = {"month_positions": [first, last]}
            with LedgerClient(f"127.0.0.1:{ledger.port}") as client:
                timings: dict[str, list[float]] = {name: [] for name in cases}
                counts: dict[str, int] = {}
                for i in range(args.repeat + 1):
                    for name, cut in cases.items():
                        started = time.perf_counter()
                        report = period_report_dict(client.period_report(MONTH, "2026-10", evaluated_at=t,
                                                      as_recorded_position=cut,
                                                      include_incidents=False))
                        if i >= 1:  # the first round warms caches and connections
                            timings[name].append(time.perf_counter() - started)
                        counts[name] = sum(
                            sl.get(o, 0) for sl in report["service_levels"]
                            for o in ("met", "missed", "pending", "excused"))
                for name, samples in timings.items():
                    out[f"report {name}"] = {"clocks": counts[name], **_percentiles(samples)}
                for name, (a, b) in restatements.items():
                    samples = []
                    repeat = 3 if b - a > 10_000 else args.repeat // 2
                    try:
                        for i in range(repeat + 1):
                            started = time.perf_counter()
                            restated = client.restatement(
                                MONTH, "2026-10", evaluated_at=t,
                                from_cut={"as_recorded_position": a},
                                to_cut={"as_recorded_position": b})
                            if i >= 1:
                                samples.append(time.perf_counter() - started)
                    except grpc.RpcError as error:  # e.g. a response past the size limit
                        out[f"restatement {name}"] = {"error": str(error.code()),
                                                      "seconds": round(time.perf_counter()
                                                                       - started, 2)}
                        continue
                    out[f"restatement {name}"] = {"events": len(restated["events"]),
                                                  "changes": len(restated["changes"]),
                                                  **_percentiles(samples)}
            return out
        out = await asyncio.to_thread(run)
        if args.replay:
            from ledger.application.reports import Cut, ReportService
            from ledger.domain.access import LOCAL_ADMIN
            from projections.sla_read_model import SlaReadModel

            def replay() -> None:
                model = ReportService(ledger.store, lambda: t, SlaReadModel(ledger.store))
                reference = ReportService(ledger.store, lambda: t)
                started = time.perf_counter()
                expected = period_report_dict(reference.period_report(LOCAL_ADMIN, MONTH, "2026-10", t,
                                                   Cut(position=middle), False))
                out["replay at middle (in process, once)"] = {
                    "seconds": round(time.perf_counter() - started, 1),
                    "equals_read_model": period_report_dict(model.period_report(
                        LOCAL_ADMIN, MONTH, "2026-10", t, Cut(position=middle), False)) == expected}
            await asyncio.to_thread(replay)
        return out
    finally:
        await ledger.stop()


def cmd_cuts(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_cut_latency(args)), indent=1))


def cmd_report(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_report_latency(args)), indent=1))


async def _lag(args: argparse.Namespace) -> dict[str, Any]:
    from ledger.client import LedgerClient
    from ledger.domain.codec import event_from_dict
    from ledger.grpc.server import ServerConfig
    from ledger.server.bootstrap import start_ledger

    ledger = await start_ledger(args.db, ServerConfig(listen="127.0.0.1:0"))
    runner: Any = ledger.runner
    await asyncio.to_thread(runner.run_once)
    visible: dict[int, float] = {}
    done = threading.Event()
    previous = runner.on_commit

    def committed(name: str, position: int, *rest: Any) -> None:
        if previous is not None:
            previous(name, position, *rest)
        if name == "sla":
            visible.setdefault(position, time.perf_counter())
    runner.on_commit = committed

    def run() -> list[float]:
        lags: list[float] = []
        acked: list[tuple[int, float]] = []
        with LedgerClient(f"127.0.0.1:{ledger.port}") as client:
            # Its own agreement, so the report benchmark's month stays as generated.
            if ledger.service.agreement(LAG) is None:
                client.register_agreement(LAG, parse_instant("2026-09-01T00:00:00Z"),
                                          bench_terms(LAG))
            period = 1 / args.rate
            start = time.perf_counter()
            for n in range(args.appends):
                time.sleep(max(0.0, start + n * period - time.perf_counter()))
                raw = {"event_id": f"lag-{os.getpid()}-{n}", "incident_id": f"LAG-{os.getpid()}-{n}",
                       "type": "opened", "occurred_at": "2026-10-20T10:00:00Z", "actor": "herts",
                       "agreement": LAG, "service": "desktop", "priority": "P3", "custody": "hp"}
                (result,) = client.append([event_from_dict(raw)])
                acked.append((result.position, time.perf_counter()))
        runner.wait_for(acked[-1][0], 30)
        commits = sorted(visible.items())
        for position, at in acked:
            seen = next(t for p, t in commits if p >= position)
            lags.append(seen - at)
        done.set()
        return lags

    try:
        lags = sorted(await asyncio.to_thread(run))
    finally:
        await ledger.stop()
    return {"appends": len(lags), "rate_per_s": args.rate,
            "p50_ms": round(statistics.median(lags) * 1000, 1),
            "p99_ms": round(lags[int(len(lags) * 0.99) - 1] * 1000, 1),
            "max_ms": round(lags[-1] * 1000, 1)}


def cmd_lag(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_lag(args)), indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sla_bench")
    parser.add_argument("command", choices=["generate", "rebuild", "report", "lag", "cuts"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--year-incidents", type=int, default=100_000)
    parser.add_argument("--month-incidents", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="appends per second (lag)")
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--replay", action="store_true",
                        help="cuts: also replay the middle cut once and compare")
    args = parser.parse_args()
    {"generate": cmd_generate, "rebuild": cmd_rebuild, "report": cmd_report,
     "lag": cmd_lag, "cuts": cmd_cuts}[args.command](args)


if __name__ == "__main__":
    main()
