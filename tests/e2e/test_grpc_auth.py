"""Bearer-token authentication over a real grpc.aio server on an ephemeral port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ledger.adapters.principals_file import hash_token
from ledger.client.errors import decode_error
from ledger.domain.access import LOCAL_ADMIN, Principal
from ledger.grpc.auth import (
    NoPrincipalError,
    current_principal,
    optional_principal,
    principal_scope,
)
from ledger.grpc.server import ServerConfig, build_server

T = TypeVar("T")

PROVIDER_TOKEN = "s3cret-provider-token"
AUDITOR_TOKEN = "s3cret-auditor-token"


def _whoami() -> bytes:
    principal = current_principal()
    bound = structlog.contextvars.get_contextvars()
    return json.dumps(
        {
            "name": principal.name,
            "org": principal.org,
            "role": principal.role,
            "log": {k: bound.get(k) for k in ("principal", "org", "role")},
        }
    ).encode()


async def _unary(request: bytes, context: Any) -> bytes:
    return _whoami()


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield _whoami()
    yield _whoami()


async def _client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
    async for _ in requests:
        pass
    return _whoami()


def _register(server: Any) -> list[str]:
    handler = grpc.method_handlers_generic_handler(
        "test.Who",
        {
            "Ami": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
            "Collect": grpc.stream_unary_rpc_method_handler(_client_stream),
        },
    )
    server.add_generic_rpc_handlers([handler])
    return ["test.Who"]


@pytest.fixture
def principals(tmp_path: Path) -> Path:
    path = tmp_path / "principals.yaml"
    path.write_text(
        "principals:\n"
        f"  - {{name: herts-noc, org: herts, role: provider,"
        f" token_sha256: {hash_token(PROVIDER_TOKEN)}}}\n"
        f"  - {{name: watchdog, org: regulator, role: auditor,"
        f" token_sha256: {hash_token(AUDITOR_TOKEN)}}}\n"
    )
    return path


def _with_server(
    principals: Path | None, scenario: Callable[[grpc.aio.Channel], Awaitable[T]]
) -> T:
    async def main() -> T:
        config = ServerConfig(listen="127.0.0.1:0", principals=principals)
        running = await build_server(config, _register)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                return await scenario(channel)
        finally:
            await running.stop(0)

    return asyncio.run(asyncio.wait_for(main(), 30))


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _ami(channel: grpc.aio.Channel, metadata: Any = None) -> dict[str, Any]:
    reply = await channel.unary_unary("/test.Who/Ami")(b"", metadata=metadata, timeout=10)
    result: dict[str, Any] = json.loads(reply)
    return result


async def _refused(channel: grpc.aio.Channel, metadata: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await channel.unary_unary("/test.Who/Ami")(b"", metadata=metadata, timeout=10)
    return info.value


def test_valid_bearer_token_resolves_principal_and_binds_log_context(principals: Path) -> None:
    who = _with_server(principals, lambda ch: _ami(ch, _bearer(PROVIDER_TOKEN)))
    assert who == {
        "name": "herts-noc",
        "org": "herts",
        "role": "provider",
        "log": {"principal": "herts-noc", "org": "herts", "role": "provider"},
    }


def test_scheme_is_case_insensitive(principals: Path) -> None:
    metadata = (("authorization", f"bearer {AUDITOR_TOKEN}"),)
    who = _with_server(principals, lambda ch: _ami(ch, metadata))
    assert (who["name"], who["role"]) == ("watchdog", "auditor")


def test_invalid_token_is_unauthenticated_without_echo(principals: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        error = _with_server(principals, lambda ch: _refused(ch, _bearer("wrong-token-xyz")))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    decoded = decode_error(error)
    assert decoded["message"] == "invalid bearer token"
    assert decoded["reason"] == "INVALID_TOKEN"
    assert "wrong-token-xyz" not in repr(decoded)
    refusals = [e for e in logs if e["event"] == "unauthenticated call refused"]
    assert refusals
    assert refusals[0]["reason"] == "INVALID_TOKEN"
    assert refusals[0]["method"] == "/test.Who/Ami"
    assert "wrong-token-xyz" not in repr(logs)


def test_missing_credentials(principals: Path) -> None:
    error = _with_server(principals, lambda ch: _refused(ch, None))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <token>" in (error.details() or "")
    assert decode_error(error)["reason"] == "MISSING_CREDENTIALS"


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer "),),
        (("authorization", f"Bearer {PROVIDER_TOKEN}"), ("authorization", "Bearer x")),
    ],
)
def test_malformed_authorization(principals: Path, metadata: Any) -> None:
    error = _with_server(principals, lambda ch: _refused(ch, metadata))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert decode_error(error)["reason"] == "MALFORMED_CREDENTIALS"
    assert PROVIDER_TOKEN not in (error.details() or "")


def test_streaming_methods_are_authenticated(principals: Path) -> None:
    async def scenario(channel: grpc.aio.Channel) -> tuple[list[str], grpc.StatusCode, str]:
        stream = channel.unary_stream("/test.Who/Stream")
        names = [
            json.loads(m)["name"]
            async for m in stream(b"", metadata=_bearer(PROVIDER_TOKEN), timeout=10)
        ]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in stream(b"", timeout=10):
                pass

        async def requests() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        collect = channel.stream_unary("/test.Who/Collect")
        reply = await collect(requests(), metadata=_bearer(AUDITOR_TOKEN), timeout=10)
        return names, refused.value.code(), json.loads(reply)["name"]

    names, refused_code, collector = _with_server(principals, scenario)
    assert names == ["herts-noc", "herts-noc"]
    assert refused_code == grpc.StatusCode.UNAUTHENTICATED
    assert collector == "watchdog"


def test_concurrent_calls_keep_their_own_principal(principals: Path) -> None:
    async def scenario(channel: grpc.aio.Channel) -> list[str]:
        tokens = [PROVIDER_TOKEN, AUDITOR_TOKEN] * 20
        replies = await asyncio.gather(*(_ami(channel, _bearer(t)) for t in tokens))
        return [r["name"] for r in replies]

    names = _with_server(principals, scenario)
    assert names == ["herts-noc", "watchdog"] * 20


def test_local_mode_every_caller_is_admin() -> None:
    async def scenario(channel: grpc.aio.Channel) -> list[dict[str, Any]]:
        return [await _ami(channel), await _ami(channel, _bearer("anything"))]

    for who in _with_server(None, scenario):
        assert (who["name"], who["org"], who["role"]) == (
            LOCAL_ADMIN.name,
            LOCAL_ADMIN.org,
            LOCAL_ADMIN.role,
        )


def test_health_and_reflection_need_no_credentials(principals: Path) -> None:
    async def scenario(channel: grpc.aio.Channel) -> tuple[int, list[str]]:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="test.Who"), timeout=10)
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names: list[str] = []
        async for response in reflection.ServerReflectionInfo(requests(), timeout=10):
            names += [s.name for s in response.list_services_response.service]
        return reply.status, names

    status, names = _with_server(principals, scenario)
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert "test.Who" in names


def test_current_principal_outside_a_call() -> None:
    assert optional_principal() is None
    with pytest.raises(NoPrincipalError):
        current_principal()
    someone = Principal("x", "org-x", "customer")
    with principal_scope(someone):
        assert current_principal() is someone
    assert optional_principal() is None
