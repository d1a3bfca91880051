"""The gRPC side of the metrics catalogue: go-grpc-prometheus buckets, code
spellings and method types, and the methods of the ledger's services."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health_pb2

from ledger.v1 import agreements_pb2, audit_pb2, incidents_pb2, log_pb2, reports_pb2

#: prometheus.DefBuckets of Go, as go-grpc-prometheus uses them.
GRPC_HANDLING_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

#: grpc.StatusCode -> the code name Go's codes.Code.String() gives (go-grpc-prometheus).
GRPC_CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


class GrpcMethod(NamedTuple):
    service: str
    method: str
    type: str


def grpc_type(request_streaming: bool, response_streaming: bool) -> str:
    if request_streaming:
        return "bidi_stream" if response_streaming else "client_stream"
    return "server_stream" if response_streaming else "unary"


def grpc_methods(service_descriptors: Iterable[Any]) -> list[GrpcMethod]:
    """The methods of protobuf ``ServiceDescriptor``s, for ``initialize_grpc_methods``."""
    return [
        GrpcMethod(
            service.full_name,
            method.name,
            grpc_type(method.client_streaming, method.server_streaming),
        )
        for service in service_descriptors
        for method in service.methods
    ]


def ledger_grpc_methods() -> list[GrpcMethod]:
    """Every method of the ledger.v1 services (plus the standard health service)."""
    files = (agreements_pb2, audit_pb2, incidents_pb2, log_pb2, reports_pb2, health_pb2)
    return grpc_methods(
        service for module in files for service in module.DESCRIPTOR.services_by_name.values()
    )
