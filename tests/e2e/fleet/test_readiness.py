"""Readiness of a replica: NOT_SERVING (gRPC health "", /readyz 503) while it
cannot reach the database or its read models are far behind the log;
metrics say who leads and how far behind each replica is."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.application.readiness import Readiness
from ledger.observability.metrics import LedgerMetrics
from ledger.server import observability
from tests.support.clock import FakeClock
from tests.support.ledger_server import running_ledger
from tests.support.postgres import PG_URL
from tests.support.processes import wait_until


def test_readiness_follows_the_database_and_the_lag() -> None:
    head, positions = [10], {"sla": 10, "audit_merkle": 10}
    failing: list[Exception] = []

    def read_head() -> int:
        if failing:
            raise failing[0]
        return head[0]

    readiness = Readiness(read_head, lambda: dict(positions), lambda: True, max_lag=100,
                          clock=lambda: 0.0)
    assert readiness.state.ready is False  # not probed yet
    state = readiness.probe()
    assert state.ready and state.leader and state.lag == 0
    head[0] = 111
    state = readiness.probe()
    assert not state.ready and state.lag == 101 and "101 events behind" in state.reason
    positions["sla"] = 111
    positions["audit_merkle"] = 50
    assert readiness.probe().lag == 61
    failing.append(OSError("connection refused"))
    state = readiness.probe()
    assert not state.ready and "database is unreachable: connection refused" in state.reason
    readiness.hung(3)
    assert "did not answer within 3s" in readiness.state.reason


class Proxy:
    """A TCP forwarder to PostgreSQL that can be cut, as a network would be."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with suppress(OSError):
            b.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        for s in self.sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@contextmanager
def proxied(database_url: str) -> Iterator[tuple[str, Proxy]]:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(database_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else \
        f"127.0.0.1:{proxy.port}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), proxy
    finally:
        proxy.close()


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.postgres
def test_a_replica_that_loses_the_database_is_not_ready(pg_schema: str, clock: FakeClock) -> None:
    database_url = f"{PG_URL}?schema={pg_schema}"
    metrics = LedgerMetrics()
    _, stop_metrics = observability.start("127.0.0.1:0", metrics)
    port = observability.active_metrics_port()
    assert port is not None
    try:
        with proxied(database_url) as (url, proxy), \
                running_ledger(url, clock) as (ledger, target), \
                grpc.insecure_channel(target) as channel:
            observability.instrument(ledger, metrics)
            health = health_pb2_grpc.HealthStub(channel)

            def status() -> int:
                request = health_pb2.HealthCheckRequest(service="")
                return int(health.Check(request, timeout=10).status)

            serving, not_serving = (health_pb2.HealthCheckResponse.SERVING,
                                    health_pb2.HealthCheckResponse.NOT_SERVING)
            wait_until(lambda: status() == serving and _readyz(port) == 200, 30, "ready")
            wait_until(lambda: metrics.registry.get_sample_value("ledger_leader") == 1.0, 30,
                       "the only replica to lead")
            assert metrics.registry.get_sample_value("ledger_ready") == 1.0
            proxy.cut()
            wait_until(lambda: status() == not_serving, 30, "NOT_SERVING without the database")
            assert _readyz(port) == 503
            assert metrics.registry.get_sample_value("ledger_ready") == 0.0
            proxy.restore()
            wait_until(lambda: status() == serving and _readyz(port) == 200, 60, "ready again")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as alive:
                assert alive.status == 200
    finally:
        stop_metrics()
