"""The aio server: binding rules, health, reflection, limits, interceptor order, shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import structlog
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ledger.adapters.principals_file import hash_token
from ledger.grpc.server import (
    RunningServer,
    ServerConfig,
    ServerConfigError,
    build_server,
    install_signal_handlers,
    is_loopback,
)
from ledger.v1 import log_pb2, log_pb2_grpc

T = TypeVar("T")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Gate:
    """A handler that parks until released, so tests can hold a call in flight."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def slow(self, request: bytes, context: Any) -> bytes:
        self.started.set()
        await self.release.wait()
        return b"finished:" + request

    async def echo(self, request: bytes, context: Any) -> bytes:
        return request * 4 if request.startswith(b"x") else request


def _registrar(gate: Gate) -> Callable[[Any], list[str]]:
    def register(server: Any) -> list[str]:
        handler = grpc.method_handlers_generic_handler(
            "test.Gate",
            {
                "Slow": grpc.unary_unary_rpc_method_handler(gate.slow),
                "Echo": grpc.unary_unary_rpc_method_handler(gate.echo),
            },
        )
        server.add_generic_rpc_handlers([handler])
        return ["test.Gate"]

    return register


def _run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(asyncio.wait_for(main(), 30))


async def _start(gate: Gate, **config: Any) -> RunningServer:
    config.setdefault("listen", "127.0.0.1:0")
    return await build_server(ServerConfig(**config), _registrar(gate))


def _channel(running: RunningServer) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:0", True),
        ("127.0.0.5:50051", True),
        ("[::1]:50051", True),
        ("localhost:50051", True),
        ("unix:/tmp/ledger.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.1.2.3:50051", False),
        ("ledger.example:50051", False),
        ("50051", False),
    ],
)
def test_is_loopback(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", ":0", "ledger.example:0"])
def test_refuses_non_loopback_without_principals(listen: str) -> None:
    with pytest.raises(ServerConfigError, match=r"refusing to listen .* without authentication"):
        _run(_start(Gate(), listen=listen))


def test_non_loopback_allowed_with_principals(tmp_path: Path) -> None:
    principals = tmp_path / "p.yaml"
    principals.write_text(f"- {{name: a, org: o, role: admin, token_sha256: {hash_token('t')}}}")

    async def scenario() -> tuple[int, list[MutableMapping[str, Any]]]:
        with structlog.testing.capture_logs() as logs:
            running = await _start(Gate(), listen="0.0.0.0:0", principals=principals)
        await running.stop(0)
        return running.port, logs

    port, logs = _run(scenario())
    assert port > 0
    assert any("clear text" in e["event"] and e["log_level"] == "warning" for e in logs)


def test_local_mode_says_so_in_the_log() -> None:
    async def scenario() -> tuple[RunningServer, list[MutableMapping[str, Any]]]:
        with structlog.testing.capture_logs() as logs:
            running = await _start(Gate())
        await running.stop(0)
        return running, logs

    running, logs = _run(scenario())
    assert running.local_mode
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == [
        "no principals file: every local caller is admin; listening on loopback only"
    ]


def test_ephemeral_port_health_and_reflection() -> None:
    async def scenario() -> tuple[int, dict[str, Any], grpc.StatusCode, list[str]]:
        running = await _start(Gate())
        try:
            async with _channel(running) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                statuses = {
                    name: (await health.Check(health_pb2.HealthCheckRequest(service=name))).status
                    for name in ("", "test.Gate")
                }
                with pytest.raises(grpc.aio.AioRpcError) as unknown:
                    await health.Check(health_pb2.HealthCheckRequest(service="nope.Service"))
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)

                async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
                    yield reflection_pb2.ServerReflectionRequest(list_services="")

                names = [
                    service.name
                    async for reply in stub.ServerReflectionInfo(requests(), timeout=10)
                    for service in reply.list_services_response.service
                ]
                return running.port, statuses, unknown.value.code(), names
        finally:
            await running.stop(0)

    port, statuses, unknown, names = _run(scenario())
    assert port > 0
    assert statuses == {"": SERVING, "test.Gate": SERVING}
    assert unknown == grpc.StatusCode.NOT_FOUND
    assert sorted(names) == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "test.Gate",
    ]


def test_port_in_use_is_a_clear_error() -> None:
    async def scenario() -> None:
        first = await _start(Gate())
        try:
            await _start(Gate(), listen=f"127.0.0.1:{first.port}")
        finally:
            await first.stop(0)

    with pytest.raises(ServerConfigError, match=r"cannot listen on '127\.0\.0\.1:"):
        _run(scenario())


def test_max_message_size_applies_both_ways() -> None:
    async def scenario() -> tuple[bytes, grpc.StatusCode, grpc.StatusCode]:
        running = await _start(Gate(), max_message_bytes=1024)
        try:
            async with _channel(running) as channel:
                echo = channel.unary_unary("/test.Gate/Echo")
                small = await echo(b"y" * 1000, timeout=10)
                with pytest.raises(grpc.aio.AioRpcError) as too_big_in:
                    await echo(b"y" * 2000, timeout=10)
                with pytest.raises(grpc.aio.AioRpcError) as too_big_out:
                    await echo(b"x" * 600, timeout=10)  # the reply is 4x
                return small, too_big_in.value.code(), too_big_out.value.code()
        finally:
            await running.stop(0)

    small, inbound, outbound = _run(scenario())
    assert small == b"y" * 1000
    assert inbound == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert outbound == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_extra_interceptors_run_outside_auth_and_see_the_principal(tmp_path: Path) -> None:
    principals = tmp_path / "p.yaml"
    principals.write_text(
        f"- {{name: noc, org: herts, role: provider, token_sha256: {hash_token('tok')}}}"
    )
    seen: list[dict[str, Any]] = []

    class Canonical(grpc.aio.ServerInterceptor):  # type: ignore[misc]
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = await continuation(details)
            inner = handler.unary_unary

            async def wrapped(request: Any, context: Any) -> Any:
                try:
                    return await inner(request, context)
                finally:
                    seen.append(dict(structlog.contextvars.get_contextvars()))

            return grpc.unary_unary_rpc_method_handler(wrapped)

    async def scenario() -> None:
        running = await build_server(
            ServerConfig(listen="127.0.0.1:0", principals=principals),
            _registrar(Gate()),
            extra_interceptors=[Canonical()],
        )
        try:
            async with _channel(running) as channel:
                echo = channel.unary_unary("/test.Gate/Echo")
                await echo(b"hi", metadata=(("authorization", "Bearer tok"),), timeout=10)
                with pytest.raises(grpc.aio.AioRpcError):
                    await echo(b"hi", timeout=10)
        finally:
            await running.stop(0)

    _run(scenario())
    assert seen[0] == {"principal": "noc", "org": "herts", "role": "provider"}
    assert "tok" not in repr(seen[0].values())
    assert seen[1] == {}  # refused call: nothing bound, nothing leaked from the first


def test_stop_reports_not_serving_then_lets_in_flight_calls_finish() -> None:
    gate = Gate()

    async def scenario() -> tuple[list[int], bytes, grpc.StatusCode]:
        running = await _start(gate, grace_seconds=20)
        async with _channel(running) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="test.Gate")
            )
            statuses = [(await watch.read()).status]
            in_flight = asyncio.ensure_future(
                channel.unary_unary("/test.Gate/Slow")(b"batch", timeout=20)
            )
            await gate.started.wait()
            stopping = asyncio.ensure_future(running.stop())
            statuses.append((await watch.read()).status)
            assert running.draining
            watch.cancel()
            gate.release.set()
            reply = await in_flight
            await stopping
            await running.stop()  # idempotent
        async with _channel(running) as late:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await late.unary_unary("/test.Gate/Echo")(b"", timeout=5)
        return statuses, reply, refused.value.code()

    statuses, reply, late_code = _run(scenario())
    assert statuses == [SERVING, NOT_SERVING]
    assert reply == b"finished:batch"
    assert late_code == grpc.StatusCode.UNAVAILABLE


def test_sigterm_drains_and_a_second_signal_stops_at_once() -> None:
    gate = Gate()

    async def scenario() -> tuple[int, grpc.StatusCode]:
        running = await _start(gate, grace_seconds=60)
        install_signal_handlers(running, asyncio.get_running_loop())
        async with _channel(running) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            await watch.read()
            in_flight = asyncio.ensure_future(
                channel.unary_unary("/test.Gate/Slow")(b"", timeout=30)
            )
            await gate.started.wait()
            signal.raise_signal(signal.SIGTERM)
            draining = (await watch.read()).status
            signal.raise_signal(signal.SIGTERM)  # impatient operator: no more grace
            await running.wait_for_termination()
            with pytest.raises(grpc.aio.AioRpcError) as cut:
                await in_flight
            return draining, cut.value.code()

    draining, cut = _run(scenario())
    assert draining == NOT_SERVING
    assert cut in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def test_reflection_serves_ledger_descriptors_for_buf_curl() -> None:
    service = log_pb2.DESCRIPTOR.services_by_name["LogService"].full_name

    def register(server: Any) -> list[str]:
        unimplemented = log_pb2_grpc.LogServiceServicer()  # type: ignore[abstract]
        log_pb2_grpc.add_LogServiceServicer_to_server(unimplemented, server)
        return [service]

    async def scenario() -> list[str]:
        running = await build_server(ServerConfig(listen="127.0.0.1:0"), register)
        try:
            async with _channel(running) as channel:
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)

                async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
                    yield reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)

                files: list[str] = []
                async for reply in stub.ServerReflectionInfo(requests(), timeout=10):
                    for raw in reply.file_descriptor_response.file_descriptor_proto:
                        files.append(descriptor_pb2.FileDescriptorProto.FromString(raw).name)
                return files
        finally:
            await running.stop(0)

    assert "ledger/v1/log.proto" in _run(scenario())
