"""Streams that end safely: subscribers that drop, die or stop reading never
crash, hang or leak in the server, and the CLI exits quietly on a closed pipe."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from ledger.v1 import log_pb2, log_pb2_grpc
from tests.e2e.faults.harness import token, two_agreements
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).with_name("sla-ledger"))


def _env(name: str = "admin") -> dict[str, str]:
    return {**os.environ, "SLA_LEDGER_TOKEN": token(name)}


def test_dropped_killed_and_piped_subscribers_leave_the_server_serving(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    with two_agreements(database_url, clock, tmp_path) as fixture:
        total = fixture.ledger.store.max_position()
        # `sla-ledger events --from 0 | head -2`: the demo's own suggestion.
        for _ in range(5):
            piped = subprocess.run(
                ["bash", "-o", "pipefail", "-c", f"'{CLI}' events --target {fixture.target} "
                 "--from 0 | head -2"], check=False, env=_env(), capture_output=True, text=True, timeout=60)
            assert piped.returncode == 0, piped.stderr
            assert piped.stderr == "" and len(piped.stdout.splitlines()) == 2
        # Followers killed with SIGKILL mid-stream, and followers that cancel.
        for _ in range(3):
            # `with`: the pipes are closed here, not left to the collector.
            with subprocess.Popen([CLI, "events", "--target", fixture.target, "--follow"],
                                  env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as follower:
                assert follower.stdout is not None
                assert follower.stdout.readline()  # streaming has begun
                follower.send_signal(signal.SIGKILL)
                follower.wait(30)
        with grpc.insecure_channel(fixture.target) as channel:
            stub = log_pb2_grpc.LogServiceStub(channel)
            metadata = [("authorization", f"Bearer {token('admin')}")]
            for _ in range(5):
                stream = stub.ReadLog(log_pb2.ReadLogRequest(follow=True), metadata=metadata)
                next(stream)
                stream.cancel()
            # the server is up and serves the whole log to the next caller
            got = list(stub.ReadLog(log_pb2.ReadLogRequest(), metadata=metadata, timeout=30))
        assert len(got) == total


class _StuckContext:
    """A call whose reader never reads: every write waits for ever."""

    def __init__(self) -> None:
        self.aborted: tuple[Any, str] | None = None

    async def write(self, message: Any) -> None:
        await asyncio.Event().wait()

    async def abort(self, code: Any, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()

    def cancelled(self) -> bool:
        return False


def test_a_follower_that_stops_reading_is_ended_resource_exhausted(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    from ledger.grpc.auth import principal_scope
    from ledger.grpc.servicers import LogServicer

    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture:
        ledger = fixture.ledger
        servicer = LogServicer(ledger.service, ledger.executors, ledger.feed, stall_seconds=0.05)
        context = _StuckContext()

        async def follow() -> None:
            from ledger.domain.access import LOCAL_ADMIN

            with principal_scope(LOCAL_ADMIN):
                await servicer.ReadLog(log_pb2.ReadLogRequest(follow=True), context)

        with pytest.raises(grpc.aio.AbortError):
            asyncio.run(asyncio.wait_for(follow(), 30))
    assert context.aborted is not None
    assert context.aborted[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "after_position" in context.aborted[1]


def test_messages_written_with_context_write_are_counted() -> None:
    """ReadLog writes its messages itself (to bound a stalled reader): the
    observability interceptor still counts each one sent."""
    from ledger.grpc.server import ServerConfig, build_server
    from ledger.observability.grpc_interceptor import ObservabilityInterceptor
    from ledger.observability.metrics import LedgerMetrics

    metrics = LedgerMetrics()

    async def three(request: bytes, context: Any) -> None:
        for _ in range(3):
            await context.write(b"m")

    def register(server: Any) -> list[str]:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "test.Writes", {"Three": grpc.unary_stream_rpc_method_handler(three)})])
        return ["test.Writes"]

    async def scenario() -> list[bytes]:
        running = await build_server(ServerConfig(listen="127.0.0.1:0"), register,
                                     extra_interceptors=[ObservabilityInterceptor(metrics)])
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                return [m async for m in channel.unary_stream("/test.Writes/Three")(b"", timeout=10)]
        finally:
            await running.stop(0)

    assert asyncio.run(scenario()) == [b"m"] * 3
    assert metrics.registry.get_sample_value("grpc_server_msg_sent_total", {
        "grpc_type": "server_stream", "grpc_service": "test.Writes",
        "grpc_method": "Three"}) == 3


def test_shutdown_ends_within_its_grace_whatever_a_handler_is_doing(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    import threading

    release, entered, left = threading.Event(), threading.Event(), threading.Event()
    failures: list[grpc.StatusCode] = []
    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture:
        store = fixture.ledger.service.store
        original = store.read_log

        def stuck(*args: Any, **kwargs: Any) -> Any:  # a handler's read held "in the database"
            if threading.current_thread().name.startswith("ledger-reader"):
                entered.set()
                release.wait(60)
                left.set()
            return original(*args, **kwargs)

        store.read_log = stuck

        def follow() -> None:
            with grpc.insecure_channel(fixture.target) as channel:
                try:
                    list(log_pb2_grpc.LogServiceStub(channel).ReadLog(
                        log_pb2.ReadLogRequest(follow=True), timeout=60,
                        metadata=[("authorization", f"Bearer {token('admin')}")]))
                except grpc.RpcError as exc:
                    failures.append(exc.code())

        caller = threading.Thread(target=follow, daemon=True)
        caller.start()
        assert entered.wait(30)
    # The fixture has stopped the server (1 s grace, then a bounded wait for
    # its threads) while the handler is still held: the stop did not wait
    # for the handler to finish.
    assert not left.is_set()
    release.set()
    caller.join(30)
    assert failures and failures[0] != grpc.StatusCode.UNKNOWN


def test_a_taken_metrics_port_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CLI, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", f"127.0.0.1:{port}",
             "--database", f"sqlite:///{tmp_path / 'ledger.db'}"],
            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot serve metrics" in result.stderr and "Traceback" not in result.stderr
