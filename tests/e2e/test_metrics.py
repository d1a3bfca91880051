"""Metrics over real sockets: the metrics listener, and the gRPC interceptor on
a tiny in-test aio server (names, labels and the SLA collector:
tests/unit/test_metrics.py and tests/unit/test_sla_collector.py)."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from prometheus_client import generate_latest

from ledger.observability.grpc_interceptor import ObservabilityInterceptor
from ledger.observability.listener import parse_address, start_metrics_server
from ledger.observability.metrics import LedgerMetrics
from tests.support.metrics import fresh, value

# --------------------------------------------------------------------------- listener


def test_metrics_listener_serves_the_registry() -> None:
    m = fresh()
    m.record_stored(["opened"], log_size=7)
    server = start_metrics_server("127.0.0.1:0", m.registry)
    try:
        assert server.host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert "ledger_log_size_events 7.0" in body
        assert 'ledger_events_appended_total{type="opened"} 1.0' in body
    finally:
        server.close()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9464", ":9464", "host:", "host:http", "h:70000"])
def test_parse_address_refuses(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_address(address)


# --------------------------------------------------------------------------- interceptor


async def _ok(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"ok"


async def _invalid(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "events[0].occurred_at: required")
    raise AssertionError("unreachable")


async def _not_found(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    return b""


async def _boom(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("bug")


async def _stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield b"event"


Rpc = Callable[..., Awaitable[Any]]


async def _with_server(
    m: LedgerMetrics, body: Callable[[grpc.aio.Channel], Awaitable[None]]
) -> None:
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor(m)])
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Svc",
                {
                    "Ok": grpc.unary_unary_rpc_method_handler(_ok),
                    "Invalid": grpc.unary_unary_rpc_method_handler(_invalid),
                    "NotFound": grpc.unary_unary_rpc_method_handler(_not_found),
                    "Boom": grpc.unary_unary_rpc_method_handler(_boom),
                    "Stream": grpc.unary_stream_rpc_method_handler(_stream),
                },
            )
        ]
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await body(channel)
    finally:
        await server.stop(None)


async def _code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_interceptor_records_codes_messages_and_latency() -> None:
    m = fresh()

    async def body(channel: grpc.aio.Channel) -> None:
        assert await _code_of(channel.unary_unary("/test.Svc/Ok")(b"")) == grpc.StatusCode.OK
        assert await _code_of(channel.unary_unary("/test.Svc/Ok")(b"")) == grpc.StatusCode.OK
        invalid = await _code_of(channel.unary_unary("/test.Svc/Invalid")(b""))
        assert invalid == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            await _code_of(channel.unary_unary("/test.Svc/NotFound")(b""))
            == grpc.StatusCode.NOT_FOUND
        )
        assert await _code_of(channel.unary_unary("/test.Svc/Boom")(b"")) == grpc.StatusCode.UNKNOWN
        nope = await _code_of(channel.unary_unary("/test.Svc/Nope")(b""))
        assert nope == grpc.StatusCode.UNIMPLEMENTED
        messages = [msg async for msg in channel.unary_stream("/test.Svc/Stream")(b"")]
        assert messages == [b"event"] * 3
        check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert (await check).status == health_pb2.HealthCheckResponse.SERVING

    asyncio.run(_with_server(m, body))

    unary = {"grpc_type": "unary", "grpc_service": "test.Svc"}
    assert value(m, "grpc_server_started_total", grpc_method="Ok", **unary) == 2
    assert value(m, "grpc_server_handled_total", grpc_method="Ok", grpc_code="OK", **unary) == 2
    assert value(m, "grpc_server_msg_received_total", grpc_method="Ok", **unary) == 2
    assert value(m, "grpc_server_msg_sent_total", grpc_method="Ok", **unary) == 2
    assert value(m, "grpc_server_handling_seconds_count", grpc_method="Ok", **unary) == 2
    handled = "grpc_server_handled_total"
    assert value(m, handled, grpc_method="Invalid", grpc_code="InvalidArgument", **unary) == 1
    assert value(m, handled, grpc_method="NotFound", grpc_code="NotFound", **unary) == 1
    assert value(m, handled, grpc_method="Boom", grpc_code="Unknown", **unary) == 1
    assert value(m, "grpc_server_msg_sent_total", grpc_method="Invalid", **unary) is None
    # an unregistered method never becomes a label value
    unknown = {"grpc_type": "unary", "grpc_service": "unknown", "grpc_method": "unknown"}
    assert value(m, handled, grpc_code="Unimplemented", **unknown) == 1
    assert 'grpc_method="Nope"' not in generate_latest(m.registry).decode()

    stream = {"grpc_type": "server_stream", "grpc_service": "test.Svc", "grpc_method": "Stream"}
    assert value(m, "grpc_server_started_total", **stream) == 1
    assert value(m, handled, grpc_code="OK", **stream) == 1
    assert value(m, "grpc_server_msg_sent_total", **stream) == 3
    assert value(m, "grpc_server_msg_received_total", **stream) == 1

    health = {"grpc_type": "unary", "grpc_service": "grpc.health.v1.Health", "grpc_method": "Check"}
    assert value(m, handled, grpc_code="OK", **health) == 1


def test_interceptor_counts_a_cancelled_stream() -> None:
    m = fresh()

    async def endless(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        while True:
            yield b"tick"
            await asyncio.sleep(0.01)

    async def run() -> None:
        server = grpc.aio.server(interceptors=[ObservabilityInterceptor(m)])
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "test.Svc", {"Follow": grpc.unary_stream_rpc_method_handler(endless)}
                )
            ]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_stream("/test.Svc/Follow")(b"")
                received = 0
                async for _ in call:
                    received += 1
                    if received == 5:
                        call.cancel()
                        break
            for _ in range(200):  # the server notices the cancellation asynchronously
                if value(m, "grpc_server_handled_total", grpc_code="Canceled", **labels):
                    break
                await asyncio.sleep(0.01)
        finally:
            await server.stop(None)

    labels = {"grpc_type": "server_stream", "grpc_service": "test.Svc", "grpc_method": "Follow"}
    asyncio.run(run())
    assert value(m, "grpc_server_handled_total", grpc_code="Canceled", **labels) == 1
    sent = value(m, "grpc_server_msg_sent_total", **labels)
    assert sent is not None and sent >= 5
