"""Domain errors -> rich gRPC statuses, decoded back on a real client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from ledger.client.errors import decode_error
from ledger.domain.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    TimelineViolation,
)
from ledger.grpc.errors import rich_status, status_for
from ledger.grpc.server import ServerConfig, build_server

T = TypeVar("T")

ERRORS: dict[bytes, DomainError] = {
    b"arg": InvalidArgument("events[2].occurred_at", "is more than 5 minutes in the future"),
    b"timeline": TimelineViolation("RESTORE_AFTER_OPEN", "restored before it was opened", 4),
    b"timeline-noindex": TimelineViolation("SINGLE_OPEN", "opened twice"),
    b"notfound": NotFound("agreement", "AG-9"),
    b"exists": AlreadyExists("event_id e-1 was stored with different content", 7),
    b"denied": PermissionDenied("auditors read and never write"),
    b"range": OutOfRange("position beyond the end of the log"),
    b"conflict": Conflict("incident INC-1 kept changing; retry"),
    b"base": DomainError("some rule"),
}


class Servicer:
    """Raises domain errors as the ledger's servicers do: the server's guard
    interceptor maps them, no decorator needed."""

    async def unary(self, request: bytes, context: Any) -> bytes:
        if request in ERRORS:
            raise ERRORS[request]
        if request == b"boom":
            raise RuntimeError("a bug")
        return b"ok:" + request

    def plain(self, request: bytes, context: Any) -> bytes:
        raise ERRORS[request]

    async def stream(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield b"first"
        yield b"second"
        raise ERRORS[request]


def _register(server: Any) -> list[str]:
    servicer = Servicer()
    handler = grpc.method_handlers_generic_handler(
        "test.Errors",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(servicer.unary),
            "Stream": grpc.unary_stream_rpc_method_handler(servicer.stream),
            "Plain": grpc.unary_unary_rpc_method_handler(servicer.plain),
        },
    )
    server.add_generic_rpc_handlers([handler])
    return ["test.Errors"]


def _with_server(scenario: Callable[[grpc.aio.Channel], Awaitable[T]]) -> T:
    async def main() -> T:
        running = await build_server(ServerConfig(listen="127.0.0.1:0"), _register)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                return await scenario(channel)
        finally:
            await running.stop(0)

    return asyncio.run(asyncio.wait_for(main(), 30))


def _call(request: bytes, method: str = "Unary") -> tuple[grpc.StatusCode, dict[str, Any]]:
    async def scenario(channel: grpc.aio.Channel) -> tuple[grpc.StatusCode, dict[str, Any]]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(f"/test.Errors/{method}")(request, timeout=10)
        return info.value.code(), dict(decode_error(info.value))

    return _with_server(scenario)


def test_invalid_argument_names_the_field() -> None:
    code, decoded = _call(b"arg")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert decoded["code"] == "INVALID_ARGUMENT"
    assert decoded["field_violations"] == [
        {"field": "events[2].occurred_at", "description": "is more than 5 minutes in the future"}
    ]
    assert decoded["message"] == "events[2].occurred_at: is more than 5 minutes in the future"


def test_timeline_violation_names_rule_and_index() -> None:
    code, decoded = _call(b"timeline")
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert decoded["rule"] == "RESTORE_AFTER_OPEN"
    assert decoded["index"] == 4
    assert decoded["reason"] == "INVALID_TIMELINE"
    assert decoded["metadata"] == {"rule": "RESTORE_AFTER_OPEN", "index": "4"}
    assert decoded["message"] == "restored before it was opened"


def test_timeline_violation_without_index() -> None:
    code, decoded = _call(b"timeline-noindex")
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert decoded["rule"] == "SINGLE_OPEN"
    assert "index" not in decoded


@pytest.mark.parametrize(
    ("request_", "code", "expected"),
    [
        (
            b"notfound",
            grpc.StatusCode.NOT_FOUND,
            {"resource_type": "agreement", "resource_name": "AG-9"},
        ),
        (b"exists", grpc.StatusCode.ALREADY_EXISTS, {"reason": "ALREADY_EXISTS", "index": 7}),
        (b"denied", grpc.StatusCode.PERMISSION_DENIED, {"reason": "PERMISSION_DENIED"}),
        (b"range", grpc.StatusCode.OUT_OF_RANGE, {"reason": "OUT_OF_RANGE"}),
        (b"conflict", grpc.StatusCode.ABORTED, {"reason": "CONFLICT"}),
        (b"base", grpc.StatusCode.FAILED_PRECONDITION, {"reason": "DOMAIN_RULE"}),
    ],
)
def test_other_domain_errors(
    request_: bytes, code: grpc.StatusCode, expected: dict[str, Any]
) -> None:
    got_code, decoded = _call(request_)
    assert got_code == code
    assert decoded["message"] == str(ERRORS[request_])
    for key, value in expected.items():
        assert decoded[key] == value


def test_conflict_carries_retry_delay() -> None:
    _, decoded = _call(b"conflict")
    assert 0 < decoded["retry_delay_seconds"] < 1


def test_a_bug_answers_internal_with_the_request_id_never_unknown_or_a_class_name() -> None:
    code, decoded = _call(b"boom")
    assert code == grpc.StatusCode.INTERNAL
    assert decoded["message"].startswith("internal error (request id ")
    assert "RuntimeError" not in decoded["message"] and "bug" not in decoded["message"]
    assert decoded["field_violations"] == []


def test_success_passes_through() -> None:
    async def scenario(channel: grpc.aio.Channel) -> bytes:
        result: bytes = await channel.unary_unary("/test.Errors/Unary")(b"x", timeout=10)
        return result

    assert _with_server(scenario) == b"ok:x"


def test_stream_delivers_messages_then_rich_error() -> None:
    async def scenario(channel: grpc.aio.Channel) -> tuple[list[bytes], dict[str, Any]]:
        received: list[bytes] = []
        call = channel.unary_stream("/test.Errors/Stream")(b"timeline", timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for message in call:
                received.append(message)
        return received, dict(decode_error(info.value))

    received, decoded = _with_server(scenario)
    assert received == [b"first", b"second"]
    assert decoded["code"] == "FAILED_PRECONDITION"
    assert decoded["rule"] == "RESTORE_AFTER_OPEN"


def test_a_plain_function_method_is_mapped_too() -> None:
    code, decoded = _call(b"notfound", "Plain")
    assert code == grpc.StatusCode.NOT_FOUND
    assert decoded["resource_type"] == "agreement"
    assert decoded["resource_name"] == "AG-9"


def test_rich_status_is_consistent_with_grpc_status() -> None:
    error = InvalidArgument("agreement_id", "must not be empty")
    status = rich_status(error)
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "agreement_id"
    grpc_status = status_for(error)
    assert grpc_status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_status.details == "agreement_id: must not be empty"
    assert grpc_status.trailing_metadata[0][0] == "grpc-status-details-bin"


def test_decode_error_without_details() -> None:
    class Plain(grpc.RpcError):  # type: ignore[misc]
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

        def details(self) -> str:
            return "connection refused"

        def trailing_metadata(self) -> tuple[()]:
            return ()

    assert dict(decode_error(Plain())) == {
        "code": "UNAVAILABLE",
        "message": "connection refused",
        "field_violations": [],
    }
