"""The composition root: the one place that wires store, services, servicers
and the server together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from ledger.adapters.eventstore import EventStore, open_store
from ledger.application.group_commit import GroupCommitter
from ledger.application.integrity import Integrity
from ledger.application.ledger_service import LedgerService
from ledger.application.log_feed import LogFeed
from ledger.application.observer import LedgerObserver, Observers
from ledger.application.readiness import Readiness, ReadinessState
from ledger.application.scrub import Scrub
from ledger.domain.events import LedgerEvent
from ledger.grpc.server import RunningServer, ServerConfig, build_server
from ledger.grpc.servicers import Executors, register_all
from projections.leadership import PgLeadership, SoloLeadership
from projections.statistics import keep_statistics

if TYPE_CHECKING:
    from ledger.application.audit import AuditService
    from ledger.application.incident_list import IncidentListing
    from ledger.application.reports import ReportService
    from ledger.application.statements import StatementService
    from ledger.server.checkpoints import AuditConfig
    from ledger.web.server import RunningConsole
    from projections.runner import ProjectionRunner


def wall_clock_micros() -> int:
    return time.time_ns() // 1000

# How long shutdown waits for a background round (a checkpoint, an ANALYZE)
# already in a worker thread before it stops waiting.
ROUND_GRACE_SECONDS = 10.0


@dataclass
class Ledger:
    """A running ledger: the server plus what it owns, for orderly shutdown."""

    running: RunningServer
    store: EventStore
    service: LedgerService
    executors: Executors
    feed: LogFeed
    extras: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    runner: ProjectionRunner | None = None
    audit: AuditService | None = None
    integrity: Integrity | None = None
    scrub: Scrub | None = None
    # What the web console reads through: the services the servicers use.
    reports: ReportService | None = None
    statements: StatementService | None = None
    listing: IncidentListing | None = None
    observers: Observers = field(default_factory=Observers)
    leadership: PgLeadership | SoloLeadership | None = None
    readiness: Readiness | None = None

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self, grace: float | None = None) -> None:
        await self.running.stop(grace)
        # Handlers were cancelled at the end of the grace period; a thread
        # still in the database finishes within its statement timeout.
        await asyncio.to_thread(self.executors.shutdown, 5.0)
        for close in self.extras:
            await close()
        self.store.close()


def build_projections(store: EventStore, observer: LedgerObserver | None = None,
                      **options: Any) -> ProjectionRunner:
    """The read models every process keeps (server, rebuild, tests), behind one runner."""
    from projections.audit_tree import MerkleProjection
    from projections.runner import ProjectionRunner
    from projections.sla_projection import SlaProjection

    on_commit = observer.projected if observer is not None else None
    return ProjectionRunner(store, [MerkleProjection(), SlaProjection(store)],
                            on_commit=on_commit, **options)


async def probe_readiness(readiness: Readiness, running: RunningServer,
                          interval: float = 1.0, timeout: float = 3.0) -> None:
    """Every `interval`: probe, and set the overall gRPC health status (what
    load balancers check) to match. A probe that does not answer within
    `timeout` (a database that hangs rather than refuses) counts as unready."""
    from grpc_health.v1 import health_pb2

    probe: asyncio.Task[ReadinessState] | None = None
    while True:
        if probe is None or probe.done():
            probe = asyncio.ensure_future(asyncio.to_thread(readiness.probe))
        try:
            ready = (await asyncio.wait_for(asyncio.shield(probe), timeout)).ready
        except TimeoutError:
            readiness.hung(timeout)
            ready = False
        if not running.draining:
            await running.health.set("", health_pb2.HealthCheckResponse.SERVING if ready
                                     else health_pb2.HealthCheckResponse.NOT_SERVING)
        await asyncio.sleep(interval)


def build_leadership(store: EventStore, runner: ProjectionRunner) -> PgLeadership | SoloLeadership:
    """PostgreSQL: replicas elect one projection and signing leader;
    SQLite: this process is the only one."""
    if not store.is_postgres:
        return SoloLeadership(runner.db)
    # A change of leader wakes the runner: to start applying, or to stop.
    return PgLeadership(store, on_change=lambda _leading: runner.notify())


async def start_ledger(  # noqa: C901, PLR0915  the composition root: every part built and started in order, read whole so the start and stop order can be checked
    database: str,
    config: ServerConfig,
    *,
    clock: Callable[[], int] = wall_clock_micros,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    audit: AuditConfig | None = None,
    observers: Sequence[LedgerObserver] = (),
) -> Ledger:
    """Builds and starts the whole ledger; `observers` hear of every append,
    stored batch, projection commit and signed checkpoint."""
    from ledger.application.audit import AuditService
    from ledger.application.incident_list import IncidentListing
    from ledger.application.reports import ReportService
    from ledger.application.statements import StatementService
    from ledger.grpc.audit_servicer import register_audit
    from ledger.grpc.report_servicer import register_reports
    from ledger.server.checkpoints import (
        AuditConfig,
        checkpoint_periodically,
        checkpoint_signer,
        final_checkpoint,
    )
    from projections.audit_log import AuditLog
    from projections.sla_projection import SlaProjection
    from projections.sla_read_model import SlaReadModel

    store = await asyncio.to_thread(open_store, database)
    feed = LogFeed(asyncio.get_running_loop())
    feed.last_position = await asyncio.to_thread(store.max_position)
    audit_config = audit or AuditConfig()
    observer = Observers(observers)
    try:
        signer = await asyncio.to_thread(checkpoint_signer, store, audit_config)
        runner = await asyncio.to_thread(build_projections, store, observer)
        leadership = build_leadership(store, runner)
        runner.leading = leadership.leading
        audit_log = await asyncio.to_thread(AuditLog, runner.db, signer, origin=audit_config.origin,
                                            leadership=leadership)
    except BaseException:
        store.close()
        raise
    audit_log.on_signed = observer.checkpoint_signed

    class Wake(LedgerObserver):
        def stored(self, events: Sequence[LedgerEvent]) -> None:
            feed.notify(events[-1].position)
            runner.notify(events[-1].position)

    # Followers wake before the observers count the batch.
    observer.observers.insert(0, Wake())
    service = LedgerService(store, clock, on_stored=observer.stored)
    integrity = Integrity(audit_log.leaf_hash, lambda: audit_log.size)
    integrity.listeners.append(lambda breach: audit_log.halt(
        f"the stored log was altered at position {breach.position}"))
    audit_service = AuditService(store, audit_log, service, clock, catch_up=runner.run_once,
                                 integrity=integrity)
    executors = Executors(GroupCommitter(service, observer))

    # Reports and listings wait for the SLA models only, not the Merkle leaves.
    def sla_ready(position: int, timeout: float) -> bool:
        return runner.wait_for(position, timeout, (SlaProjection.name,))

    sla_model = SlaReadModel(store, ready=sla_ready)
    listing = IncidentListing(service, sla_model)
    reports = ReportService(store, clock, sla_model, verify=integrity.verify)
    statements = StatementService(reports, audit_service)

    def register(server: grpc.aio.Server) -> list[str]:
        names = register_all(server, service, executors, feed, listing,
                             stall_seconds=config.limits.follower_stall_seconds,
                             integrity=integrity, limits=config.limits)
        names += register_reports(server, reports, executors, statements, config.limits)
        names += register_audit(server, audit_service, executors)
        return names

    try:
        running = await build_server(config, register, extra_interceptors=interceptors, clock=clock)
    except BaseException:
        executors.shutdown()
        store.close()
        raise
    loop = asyncio.get_running_loop()
    wanted = asyncio.Event()
    stopping = asyncio.Event()

    def checkpoint_wanted() -> None:  # from the leadership thread
        loop.call_soon_threadsafe(wanted.set)

    leadership.on_checkpoint_wanted = checkpoint_wanted
    leadership.start()
    runner.start()
    listener = None
    if store.is_postgres:
        from ledger.adapters.pg_listen import LogListener

        def woken(position: int) -> None:
            feed.notify(position)
            runner.notify(position)

        # Other servers on the database append too: follow them at once.
        listener = LogListener(store, woken)
        listener.start()
    checkpoints = loop.create_task(
        checkpoint_periodically(audit_service, audit_config.interval, wanted, stopping))

    def refuse_writes(_breach: object) -> None:  # told from whichever thread noticed
        loop.call_soon_threadsafe(lambda: loop.create_task(running.refuse_writes()))

    integrity.listeners.append(refuse_writes)
    scrub = Scrub(store, integrity, audit_log.leaf_rows, lambda: audit_log.size, audit_log.leaf_hash,
                  audit_log.check_pairs)
    scrubbing = (loop.create_task(scrub.run(audit_config.scrub_rate))
                 if audit_config.scrub_rate > 0 else None)

    readiness = Readiness(store.max_position, runner.refresh_positions, leadership.leading)
    probing = loop.create_task(probe_readiness(readiness, running))
    statistics = loop.create_task(keep_statistics(runner.db, leadership.leading, stopping=stopping))

    async def stop_audit() -> None:
        if listener is not None:
            listener.stop()
        probing.cancel()
        readiness.close()
        stopping.set()
        wanted.set()
        if scrubbing is not None:
            scrubbing.cancel()
        scrub.close()
        # Rounds in progress finish (each bounded by its statements' timeouts);
        # every task is awaited, so none is left pending when the loop closes.
        rounds = {checkpoints, statistics}
        _, overdue = await asyncio.wait(rounds, timeout=ROUND_GRACE_SECONDS)
        for task in overdue:
            task.cancel()
        await asyncio.gather(probing, *rounds, *([scrubbing] if scrubbing else []), return_exceptions=True)
        runner.stop()
        final_checkpoint(runner, audit_service)
        leadership.stop()

    return Ledger(running, store, service, executors, feed,
                  extras=[stop_audit], runner=runner, audit=audit_service,
                  reports=reports, statements=statements, listing=listing,
                  observers=observer, integrity=integrity, scrub=scrub,
                  leadership=leadership, readiness=readiness)


async def start_console(ledger: Ledger, listen: str,
                        clock: Callable[[], int] = wall_clock_micros) -> RunningConsole:
    """The web console beside the gRPC server, on the same event loop and
    reading through the same services (and the same principals)."""
    from ledger.web.app import ConsoleServices
    from ledger.web.server import serve_console

    assert ledger.reports is not None and ledger.statements is not None and ledger.listing is not None
    services = ConsoleServices(ledger=ledger.service, reports=ledger.reports,
                               statements=ledger.statements, listing=ledger.listing,
                               run=ledger.executors.read, clock=clock)
    return await serve_console(services, ledger.running.directory, listen)
