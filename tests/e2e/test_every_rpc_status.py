"""Every RPC of every ledger service, served by the real servicers behind the
real interceptors, answers each error the application can raise with its
mapped status: nothing is UNKNOWN and no servicer can forget the mapping.

The application behind the servicers is one stand-in that raises the error
under test from whichever of its methods a servicer calls first; the methods
come from the proto descriptors, so an RPC added later is covered (or fails
here until it has a request below).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, cast

import grpc
import pytest
from eventsourcing.persistence import ConnectionUnavailableError
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from ledger.client.errors import decode_error
from ledger.domain.errors import (
    AlreadyExists,
    Conflict,
    Corrupted,
    DomainError,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    TimelineViolation,
    Unavailable,
)
from ledger.grpc.audit_servicer import register_audit
from ledger.grpc.report_servicer import register_reports
from ledger.grpc.server import ServerConfig, build_server
from ledger.grpc.servicers import Executors, register_all
from ledger.v1 import (
    agreements_pb2,
    audit_pb2,
    events_pb2,
    incidents_pb2,
    log_pb2,
    reports_pb2,
)

pytestmark = pytest.mark.e2e

SERVICES = [
    module.DESCRIPTOR.services_by_name[name]
    for module, name in ((agreements_pb2, "AgreementService"), (incidents_pb2, "IncidentService"),
                         (log_pb2, "LogService"), (reports_pb2, "ReportService"),
                         (audit_pb2, "AuditService"))
]
METHODS = [method for service in SERVICES for method in service.methods]

#: Request fields a servicer checks before it calls the application.
REQUESTS: dict[str, dict[str, Any]] = {
    "AppendEvents": {"events": [events_pb2.LedgerEvent(event_id="e-1")]},
    "GetInclusionProof": {"position": 1},
}

#: What the application raises -> the status the caller must see.
ERRORS: list[tuple[BaseException, grpc.StatusCode]] = [
    (InvalidArgument("field", "is wrong"), grpc.StatusCode.INVALID_ARGUMENT),
    (TimelineViolation("SINGLE_OPEN", "opened twice", 0), grpc.StatusCode.FAILED_PRECONDITION),
    (NotFound("agreement", "AG-9"), grpc.StatusCode.NOT_FOUND),
    (AlreadyExists("event_id e-1 was stored with other content", 0),
     grpc.StatusCode.ALREADY_EXISTS),
    (PermissionDenied("auditors read and never write"), grpc.StatusCode.PERMISSION_DENIED),
    (OutOfRange("beyond the end of the log"), grpc.StatusCode.OUT_OF_RANGE),
    (Conflict("kept changing; retry"), grpc.StatusCode.ABORTED),
    (Unavailable("the database is unavailable; retry"), grpc.StatusCode.UNAVAILABLE),
    (Corrupted(7, "event content differs from its leaf hash"), grpc.StatusCode.DATA_LOSS),
    (DomainError("some other rule"), grpc.StatusCode.FAILED_PRECONDITION),
    # database conditions the adapters let through, and a bug
    (ConnectionUnavailableError("Timed out waiting for return of writer"),
     grpc.StatusCode.UNAVAILABLE),
    (sqlite3.OperationalError("database is locked"), grpc.StatusCode.ABORTED),
    (RuntimeError("a bug"), grpc.StatusCode.INTERNAL),
]


class RaisingApplication:
    """Stands in for every application service, the integrity check and the
    group committer: any method called raises ``error`` and is recorded."""

    def __init__(self) -> None:
        self.error: BaseException = RuntimeError("no error set")
        self.called: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def method(*args: object, **kwargs: object) -> Any:
            self.called.append(name)
            raise self.error

        return method


def _request(method: MethodDescriptor) -> Any:
    message_class = message_factory.GetMessageClass(method.input_type)
    return message_class(**REQUESTS.get(method.name, {}))


async def _status_of(channel: grpc.aio.Channel, method: MethodDescriptor
                     ) -> tuple[grpc.StatusCode, dict[str, Any]]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = _request(method).SerializeToString()
    try:
        if method.server_streaming:
            async for _ in channel.unary_stream(path)(request, timeout=10):
                pass
        else:
            await channel.unary_unary(path)(request, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), dict(decode_error(exc))
    return grpc.StatusCode.OK, {}


def _serve(app: RaisingApplication, error: BaseException
           ) -> dict[str, tuple[grpc.StatusCode, dict[str, Any], list[str]]]:
    application = cast(Any, app)

    def register(server: grpc.aio.Server) -> list[str]:
        executors = Executors(application, readers=1)
        names = register_all(server, application, executors, application, application,
                             integrity=application)
        names += register_reports(server, application, executors, application)
        names += register_audit(server, application, executors)
        return names

    async def main() -> dict[str, tuple[grpc.StatusCode, dict[str, Any], list[str]]]:
        running = await build_server(ServerConfig(listen="127.0.0.1:0"), register)
        answers = {}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                for method in METHODS:
                    app.error, app.called = error, []
                    code, decoded = await _status_of(channel, method)
                    answers[method.full_name] = (code, decoded, app.called)
        finally:
            await running.stop(0)
        return answers

    return asyncio.run(asyncio.wait_for(main(), 60))


def test_every_service_method_is_covered() -> None:
    assert len(METHODS) >= 19
    registered = {m.full_name for m in METHODS}
    assert "ledger.v1.LogService.ReadLog" in registered
    assert "ledger.v1.AuditService.ListLeaves" in registered


@pytest.mark.parametrize(("error", "expected"), ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
def test_every_rpc_answers_the_mapped_status(error: BaseException,
                                             expected: grpc.StatusCode) -> None:
    answers = _serve(RaisingApplication(), error)
    assert set(answers) == {m.full_name for m in METHODS}
    wrong = {name: code.name for name, (code, _, _) in answers.items() if code != expected}
    assert wrong == {}
    not_reached = sorted(name for name, (_, _, called) in answers.items() if not called)
    assert not_reached == []  # each status came from the application, not a servicer check
    for _, decoded, _ in answers.values():
        assert decoded["code"] == expected.name
        if isinstance(error, DomainError):
            assert decoded["message"] == str(error)
        assert "Error" not in decoded["message"]  # no internal class name leaks
