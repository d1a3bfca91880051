"""The composition root: the one place that wires store, services, servicers
and the server together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from ledger.adapters.eventstore import EventStore, open_store
from ledger.application.ledger_service import LedgerService
from ledger.application.log_feed import LogFeed
from ledger.grpc.server import RunningServer, ServerConfig, build_server
from ledger.grpc.servicers import Executors, register_all


def wall_clock_micros() -> int:
    return time.time_ns() // 1000


@dataclass
class Ledger:
    """A running ledger: the server plus what it owns, for orderly shutdown."""

    running: RunningServer
    store: EventStore
    service: LedgerService
    executors: Executors
    feed: LogFeed
    extras: list[Callable[[], None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self, grace: float | None = None) -> None:
        await self.running.stop(grace)
        self.executors.shutdown()
        for close in self.extras:
            close()
        self.store.close()


async def start_ledger(
    database: str,
    config: ServerConfig,
    *,
    clock: Callable[[], int] = wall_clock_micros,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> Ledger:
    from ledger.application.reports import ReportService
    from ledger.grpc.report_servicer import register_reports

    store = await asyncio.to_thread(open_store, database)
    feed = LogFeed(asyncio.get_running_loop())
    feed.last_position = await asyncio.to_thread(store.max_position)
    service = LedgerService(store, clock, on_stored=lambda events: feed.notify(events[-1].position))
    executors = Executors()

    def register(server: grpc.aio.Server) -> list[str]:
        names = register_all(server, service, executors, feed)
        names += register_reports(server, ReportService(store, clock), executors)
        return names

    try:
        running = await build_server(config, register, extra_interceptors=interceptors)
    except BaseException:
        executors.shutdown()
        store.close()
        raise
    return Ledger(running, store, service, executors, feed)
