"""The grpc.aio server: auth, health, reflection, TLS, limits, graceful shutdown.

The composition root builds the servicers and hands ``build_server`` a
``register`` callback that adds them and returns their full service names::

    def register(server: grpc.aio.Server) -> list[str]:
        incidents_pb2_grpc.add_IncidentsServiceServicer_to_server(incidents, server)
        return [incidents_pb2.DESCRIPTOR.services_by_name["IncidentsService"].full_name]

    running = await build_server(config, register, extra_interceptors=[observability])
    install_signal_handlers(running, asyncio.get_running_loop())
    await running.wait_for_termination()

Shutdown (``RunningServer.stop``) first reports NOT_SERVING on every health
service, so load balancers stop routing, then stops accepting calls and gives
in-flight calls ``grace`` seconds to finish. A batch append is one database
transaction, so a call cut off after the grace period stores all or nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ledger.adapters.principals_file import PrincipalDirectory, load_principals
from ledger.grpc.auth import AuthInterceptor
from ledger.grpc.guard import GuardInterceptor
from ledger.grpc.limits import DEFAULT_LIMITS, Limits

log = structlog.get_logger("ledger.grpc.server")

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE: str = reflection.SERVICE_NAME
WRITE_SERVICES = frozenset({"ledger.v1.IncidentService", "ledger.v1.AgreementService"})


class ServerConfigError(ValueError):
    """The server configuration is unsafe or inconsistent; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = DEFAULT_LISTEN
    """host:port; port 0 binds an ephemeral port (``RunningServer.port``)."""
    principals: Path | str | None = None
    """Principals file; None = local mode (loopback only, every caller is admin)."""
    tls_cert: Path | str | None = None
    tls_key: Path | str | None = None
    tls_client_ca: Path | str | None = None
    """With a CA, clients must present a certificate it signed (mutual TLS)."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    grace_seconds: float = 10.0
    """How long in-flight calls may run on after shutdown begins."""
    extra_options: tuple[tuple[str, Any], ...] = field(default=())
    """Additional grpc channel arguments (override the defaults by name)."""
    limits: Limits = DEFAULT_LIMITS
    """Bounds on one request (events per append, id lengths, instants...)."""


def is_loopback(listen: str) -> bool:
    """Whether ``listen`` binds only the local machine (loopback IP, localhost, unix socket)."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host, sep, _port = listen.rpartition(":")
    if not sep:
        return False
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # empty (all interfaces) or a host name


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ServerConfigError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from exc


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the config, or None for plaintext."""
    if config.tls_cert is None and config.tls_key is None:
        if config.tls_client_ca is not None:
            raise ServerConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise ServerConfigError("--tls-cert and --tls-key must be given together")
    cert = _read(config.tls_cert, "TLS certificate")
    key = _read(config.tls_key, "TLS private key")
    client_ca = _read(config.tls_client_ca, "TLS client CA") if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def server_options(config: ServerConfig) -> list[tuple[str, Any]]:
    options: dict[str, Any] = {
        "grpc.max_send_message_length": config.max_message_bytes,
        "grpc.max_receive_message_length": config.max_message_bytes,
        # Ping idle clients every minute, drop them if no answer in 20 s.
        "grpc.keepalive_time_ms": 60_000,
        "grpc.keepalive_timeout_ms": 20_000,
        # Let clients (log followers) keep idle connections alive with pings.
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.http2.min_ping_interval_without_data_ms": 10_000,
        # A second server on the same port must fail to bind, not share it.
        "grpc.so_reuseport": 0,
    }
    options.update(dict(config.extra_options))
    return list(options.items())


@dataclass(eq=False)
class RunningServer:
    """A started server; ``stop`` drains it, ``wait_for_termination`` blocks until stopped."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer
    services: tuple[str, ...]
    directory: PrincipalDirectory | None
    grace_seconds: float
    tls: bool
    _stopping: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def local_mode(self) -> bool:
        return self.directory is None

    @property
    def draining(self) -> bool:
        return self._stopping is not None

    async def refuse_writes(self) -> None:
        """Reports NOT_SERVING for the services that write (the stored log was
        found altered: ledger.application.integrity); reads stay SERVING."""
        for name in self.services:
            if name in WRITE_SERVICES:
                await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def begin_drain(self) -> None:
        """Reports NOT_SERVING for every service; calls are still accepted."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: NOT_SERVING first, then refuse new calls and let in-flight
        ones finish within ``grace`` seconds (default ``grace_seconds``). Idempotent;
        concurrent callers all wait for the same shutdown."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(
                self._stop(self.grace_seconds if grace is None else grace)
            )
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        log.info("grpc server draining", port=self.port, grace_seconds=grace)
        await self.begin_drain()
        await self.server.stop(grace)
        log.info("grpc server stopped", port=self.port)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def build_server(
    config: ServerConfig,
    register: Callable[[grpc.aio.Server], list[str]],
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    clock: Callable[[], int] | None = None,
) -> RunningServer:
    """Builds, binds and starts the server.

    Interceptor order: ``extra_interceptors`` (outermost, e.g. observability),
    authentication, then the guard (limits and the status of every failure,
    ledger.grpc.guard); ``clock`` (epoch microseconds) is the guard's "now".
    Raises ``ServerConfigError`` for an unsafe or broken
    configuration, ``PrincipalsFileError`` for a bad principals file.
    """
    if config.principals is None and not is_loopback(config.listen):
        raise ServerConfigError(
            f"refusing to listen on {config.listen!r} without authentication: "
            "give a principals file (--principals) or listen on loopback "
            "(e.g. 127.0.0.1:50051)"
        )
    if config.max_message_bytes <= 0:
        raise ServerConfigError("max_message_bytes must be positive")
    directory = load_principals(config.principals) if config.principals is not None else None
    credentials = server_credentials(config)

    guard = GuardInterceptor(config.limits) if clock is None else GuardInterceptor(config.limits, clock)
    server = grpc.aio.server(
        interceptors=[*extra_interceptors, AuthInterceptor(directory), guard],
        options=server_options(config),
    )
    services = tuple(register(server))
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection([*services, HEALTH_SERVICE, REFLECTION_SERVICE], server)

    try:
        if credentials is None:
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, credentials)
    except RuntimeError as exc:  # grpc raises RuntimeError when it cannot bind
        await server.stop(None)
        raise ServerConfigError(f"cannot listen on {config.listen!r}: {exc}") from exc
    if port == 0 and not config.listen.startswith("unix"):
        await server.stop(None)
        raise ServerConfigError(f"cannot listen on {config.listen!r} (address in use?)")

    for name in services:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.start()

    _log_startup(config, port, directory, credentials is not None, services)
    return RunningServer(
        server=server,
        port=port,
        health=health,
        services=services,
        directory=directory,
        grace_seconds=config.grace_seconds,
        tls=credentials is not None,
    )


def _log_startup(
    config: ServerConfig,
    port: int,
    directory: PrincipalDirectory | None,
    tls: bool,
    services: Sequence[str],
) -> None:
    if directory is None:
        log.warning(
            "no principals file: every local caller is admin; listening on loopback only",
            listen=config.listen,
        )
    else:
        if not tls and not is_loopback(config.listen):
            log.warning(
                "bearer tokens travel in clear text: use --tls-cert/--tls-key off loopback",
                listen=config.listen,
            )
        if directory.has_certificate_identities and config.tls_client_ca is None:
            log.warning(
                "principals have client-certificate identities but --tls-client-ca is not set;"
                " they can only authenticate with bearer tokens"
            )
    log.info(
        "grpc server listening",
        listen=config.listen,
        port=port,
        tls=tls,
        mutual_tls=config.tls_client_ca is not None,
        principals=None if directory is None else len(directory),
        services=list(services),
        max_message_bytes=config.max_message_bytes,
    )


def install_signal_handlers(
    running: RunningServer, loop: asyncio.AbstractEventLoop | None = None
) -> None:
    """SIGTERM/SIGINT: graceful stop; a second signal stops at once (grace 0)."""
    loop = loop or asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def on_signal(signum: signal.Signals) -> None:
        grace = 0.0 if running.draining else None
        log.info("signal received: shutting down", signal=signum.name, immediate=grace == 0.0)
        stopping = running.server.stop(0) if grace == 0.0 else running.stop(grace)
        task = loop.create_task(stopping)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
