"""Reading a refusal back: the ``google.rpc.Status`` a ledger server puts in the
``grpc-status-details-bin`` trailer (the table in ``ledger.grpc.errors``),
decoded into plain data a caller can act on without parsing prose."""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DETAILS_KEY = "grpc-status-details-bin"


class FieldViolation(TypedDict):
    field: str
    description: str


class DecodedError(TypedDict):
    """What ``decode_error`` extracts; optional keys appear only when present."""

    code: str  # grpc.StatusCode name, e.g. "INVALID_ARGUMENT"
    message: str
    field_violations: list[FieldViolation]
    reason: NotRequired[str]  # ErrorInfo.reason
    metadata: NotRequired[dict[str, str]]  # ErrorInfo.metadata
    rule: NotRequired[str]  # the timeline rule broken
    index: NotRequired[int]  # position of the offending event in the request
    resource_type: NotRequired[str]
    resource_name: NotRequired[str]
    retry_delay_seconds: NotRequired[float]


def decode_error(rpc_error: grpc.RpcError) -> DecodedError:
    """Reads the rich details of a failed call (sync or aio) into plain data."""
    code = rpc_error.code() if hasattr(rpc_error, "code") else grpc.StatusCode.UNKNOWN
    message = rpc_error.details() if hasattr(rpc_error, "details") else str(rpc_error)
    decoded: DecodedError = {
        "code": code.name if isinstance(code, grpc.StatusCode) else str(code),
        "message": message or "",
        "field_violations": [],
    }
    status = _rich_status_of(rpc_error)
    if status is None:
        return decoded
    for packed in status.details:
        _decode_detail(packed, decoded)
    return decoded


def _rich_status_of(rpc_error: grpc.RpcError) -> status_pb2.Status | None:
    if not hasattr(rpc_error, "trailing_metadata"):
        return None
    try:
        found = rpc_status.from_call(rpc_error)
    except ValueError:
        found = None  # code/message mismatch: fall back to the raw trailer
    if found is not None:
        return cast(status_pb2.Status, found)
    for key, value in rpc_error.trailing_metadata() or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def _decode_detail(packed: any_pb2.Any, decoded: DecodedError) -> None:
    if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
        bad = error_details_pb2.BadRequest()
        packed.Unpack(bad)
        decoded["field_violations"].extend(
            {"field": v.field, "description": v.description} for v in bad.field_violations
        )
    elif packed.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
        failure = error_details_pb2.PreconditionFailure()
        packed.Unpack(failure)
        for violation in failure.violations:
            if violation.type == "TIMELINE":
                decoded["rule"] = violation.subject
    elif packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
        info = error_details_pb2.ErrorInfo()
        packed.Unpack(info)
        decoded["reason"] = info.reason
        decoded["metadata"] = dict(info.metadata)
        if "rule" in info.metadata:
            decoded["rule"] = info.metadata["rule"]
        if info.metadata.get("index", "").lstrip("-").isdigit():
            decoded["index"] = int(info.metadata["index"])
    elif packed.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
        resource = error_details_pb2.ResourceInfo()
        packed.Unpack(resource)
        decoded["resource_type"] = resource.resource_type
        decoded["resource_name"] = resource.resource_name
    elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
        retry = error_details_pb2.RetryInfo()
        packed.Unpack(retry)
        decoded["retry_delay_seconds"] = retry.retry_delay.ToTimedelta().total_seconds()
