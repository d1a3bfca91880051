"""Logging: configure_logging's output, one canonical line per RPC with its
context, and no token ever in the logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
import structlog
from prometheus_client import CollectorRegistry

from ledger.observability.grpc_interceptor import ObservabilityInterceptor, request_id_from
from ledger.observability.logging import REDACTED, configure_logging, redact_secrets
from ledger.observability.metrics import LedgerMetrics

TOKEN = "s3cr3t-T0KEN-value-9f8e7d"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog.contextvars.clear_contextvars()
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


# --------------------------------------------------------------------------- configure_logging


def test_json_lines_with_iso_utc_timestamps_and_context() -> None:
    buf = io.StringIO()
    configure_logging(stream=buf)  # not a terminal: JSON
    structlog.contextvars.bind_contextvars(request_id="req-1", incident_id="INC-1003")
    structlog.get_logger("ledger.test").info("stored", position=7)
    [entry] = lines(buf)
    assert entry["event"] == "stored"
    assert entry["position"] == 7
    assert entry["level"] == "info"
    assert entry["logger"] == "ledger.test"
    assert entry["request_id"] == "req-1"
    assert entry["incident_id"] == "INC-1003"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", entry["timestamp"])


class GonePipe(io.StringIO):
    """A stream whose reader has gone: every write fails as a pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_stream_whose_reader_has_gone_drops_lines_instead_of_raising() -> None:
    # A server orphaned by its supervisor logs "draining" as it stops: a raise
    # there kept it running after SIGTERM.
    configure_logging(stream=GonePipe())
    log = structlog.get_logger("ledger.test")
    log.info("grpc server draining")
    log.warning("still quiet")
    log.error("and again")


def test_console_on_a_terminal_and_level_filter() -> None:
    tty = Tty()
    configure_logging(stream=tty, level="WARNING")
    log = structlog.get_logger("ledger.test")
    log.info("hidden")
    log.warning("shown", password="hunter2")
    out = tty.getvalue()
    assert "hidden" not in out
    assert "shown" in out
    assert "hunter2" not in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.splitlines()[0])


def test_stdlib_logging_goes_through_the_same_pipeline() -> None:
    buf = io.StringIO()
    configure_logging(json=True, stream=buf)
    logging.getLogger("grpc._server").warning("handshake failed: authorization=Bearer %s", TOKEN)
    [entry] = lines(buf)
    assert entry["logger"] == "grpc._server"
    assert entry["level"] == "warning"
    assert TOKEN not in buf.getvalue()


def test_reconfiguring_does_not_duplicate_output() -> None:
    buf = io.StringIO()
    configure_logging(json=True, stream=buf)
    configure_logging(json=True, stream=buf)
    logging.getLogger("x").warning("once")
    assert len(lines(buf)) == 1


def test_redaction_processor() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "calling with Bearer abc.def",
            "authorization": "Bearer abc.def",
            "api_key": "k",
            "Client-Secret": "s",
            "db": {"password": "p", "host": "db"},
            "metadata": [("authorization", "Bearer abc.def"), ("x-request-id", "r1")],
            "request_id": "r1",
        },
    )
    assert event["authorization"] == REDACTED
    assert event["api_key"] == REDACTED
    assert event["Client-Secret"] == REDACTED
    assert event["db"] == {"password": REDACTED, "host": "db"}
    assert event["metadata"] == [("authorization", REDACTED), ("x-request-id", "r1")]
    assert event["event"] == f"calling with Bearer {REDACTED}"
    assert event["request_id"] == "r1"


def test_tracebacks_carry_no_local_variables() -> None:
    buf = io.StringIO()
    configure_logging(json=True, stream=buf)

    def authenticate(bearer: str) -> None:
        raise ValueError("bad")

    try:
        authenticate(TOKEN)
    except ValueError:
        structlog.get_logger("t").exception("failed")
    assert "ValueError" in buf.getvalue()
    assert TOKEN not in buf.getvalue()


# --------------------------------------------------------------------------- canonical RPC lines


class FakeAuth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Binds the principal like ledger.grpc.auth does (inner to the observability interceptor)."""

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def wrapped(request: bytes, context: grpc.aio.ServicerContext) -> Any:
            structlog.contextvars.bind_contextvars(principal="bt-itsm", org="bt", role="provider")
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(wrapped)


async def _append(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    structlog.contextvars.bind_contextvars(incident_id="INC-1003")
    # A careless servicer logging everything it got: still no token in the output.
    structlog.get_logger("ledger.servicer").info(
        "appending", metadata=list(context.invocation_metadata() or ())
    )
    return b"ok"


async def _refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not_paused: clock_resumed")
    raise AssertionError("unreachable")


async def _stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"a"
    yield b"b"


def _serve_and_call(calls: Callable[[grpc.aio.Channel], Awaitable[None]]) -> None:
    async def run() -> None:
        metrics = LedgerMetrics(CollectorRegistry(), process_metrics=False)
        server = grpc.aio.server(interceptors=[ObservabilityInterceptor(metrics), FakeAuth()])
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "ledger.v1.IncidentService",
                    {
                        "AppendEvents": grpc.unary_unary_rpc_method_handler(_append),
                        "Refuse": grpc.unary_unary_rpc_method_handler(_refuse),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "ledger.v1.LogService",
                    {"ReadLog": grpc.unary_stream_rpc_method_handler(_stream)},
                ),
            ]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await calls(channel)
        finally:
            await server.stop(None)

    asyncio.run(run())


AUTH = (("authorization", f"Bearer {TOKEN}"),)


def test_one_canonical_line_per_rpc_with_bound_context() -> None:
    buf = io.StringIO()
    configure_logging(json=True, stream=buf)

    async def calls(channel: grpc.aio.Channel) -> None:
        append = channel.unary_unary("/ledger.v1.IncidentService/AppendEvents")
        await append(b"", metadata=(*AUTH, ("x-request-id", "req-42")))
        await append(b"", metadata=AUTH)
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary("/ledger.v1.IncidentService/Refuse")(b"", metadata=AUTH)
        assert [m async for m in channel.unary_stream("/ledger.v1.LogService/ReadLog")(b"")] == [
            b"a",
            b"b",
        ]

    _serve_and_call(calls)
    entries = lines(buf)
    rpc = [e for e in entries if e["event"] == "rpc"]
    assert len(rpc) == 4  # exactly one per call

    first = rpc[0]
    assert first["grpc_service"] == "ledger.v1.IncidentService"
    assert first["grpc_method"] == "AppendEvents"
    assert first["grpc_type"] == "unary"
    assert first["grpc_code"] == "OK"
    assert first["request_id"] == "req-42"
    assert first["principal"] == "bt-itsm"
    assert first["org"] == "bt"
    assert first["incident_id"] == "INC-1003"
    assert first["peer"].startswith("ipv")
    assert isinstance(first["duration_ms"], float)
    assert first["level"] == "info"

    # a request without x-request-id gets a generated one
    assert re.fullmatch(r"[0-9a-f]{32}", rpc[1]["request_id"])
    # lines logged during the call carry the request context
    inner = [e for e in entries if e["event"] == "appending"]
    assert [e["request_id"] for e in inner] == ["req-42", rpc[1]["request_id"]]
    assert all(e["rpc_method"] == "ledger.v1.IncidentService/AppendEvents" for e in inner)

    refused = rpc[2]
    assert refused["grpc_code"] == "FailedPrecondition"
    assert refused["grpc_details"] == "not_paused: clock_resumed"

    stream = rpc[3]
    assert stream["grpc_type"] == "server_stream"
    assert stream["messages_sent"] == 2
    assert "principal" not in stream  # nothing leaks from one call into the next


def test_no_token_ever_appears_in_captured_logs() -> None:
    buf = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=buf)

    async def calls(channel: grpc.aio.Channel) -> None:
        append = channel.unary_unary("/ledger.v1.IncidentService/AppendEvents")
        await append(b"", metadata=(*AUTH, ("x-api-key", TOKEN), ("x-request-id", "not an id")))
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary("/ledger.v1.IncidentService/Missing")(b"", metadata=AUTH)

    _serve_and_call(calls)
    output = buf.getvalue()
    assert '"event": "rpc"' in output
    assert '"event": "appending"' in output  # the careless line was logged ...
    assert TOKEN not in output  # ... but never the token
    assert REDACTED in output


def test_canonical_line_with_capture_logs() -> None:
    with structlog.testing.capture_logs() as captured:

        async def calls(channel: grpc.aio.Channel) -> None:
            await channel.unary_unary("/ledger.v1.IncidentService/AppendEvents")(b"", metadata=AUTH)

        _serve_and_call(calls)
    [line] = [e for e in captured if e["event"] == "rpc"]
    assert line["log_level"] == "info"
    assert line["grpc_code"] == "OK"
    assert line["principal"] == "bt-itsm"
    assert TOKEN not in repr(line)


@pytest.mark.parametrize(
    ("metadata", "kept"),
    [
        ((("x-request-id", "abc-123"),), True),
        ((("X-Request-Id", "abc-123"),), True),
        ((("x-request-id", "a b"),), False),
        ((("x-request-id", "x" * 200),), False),
        ((), False),
    ],
)
def test_request_id_from_metadata(metadata: tuple[tuple[str, str], ...], kept: bool) -> None:
    rid = request_id_from(metadata)
    assert (rid == "abc-123") is kept
