"""A seeded fuzzer of gRPC requests: every RPC of every ledger service gets
random bytes, corrupted valid bodies, and well-formed messages full of
extreme values (instants past year 9999 or before year 1, nanos outside
[0, 10^9), int64 limits, 20,000-character ids, impossible periods,
unknown enum values), plus real scenario events with one field made extreme.

Deterministic for a seed: the same seed sends the same requests.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pkgutil
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor
from google.protobuf.message import DecodeError, Message

from ledger.cli.common import demo_scenario_path
from ledger.client import convert
from ledger.domain.codec import event_from_dict
from ledger.v1 import events_pb2, incidents_pb2, log_pb2


def _service_modules() -> list[Any]:
    """Every generated ledger.v1 module: an RPC added later is fuzzed too."""
    import ledger.v1

    return [importlib.import_module(f"ledger.v1.{m.name}")
            for m in pkgutil.iter_modules(ledger.v1.__path__) if m.name.endswith("_pb2")]


SERVICES = tuple(_service_modules())

STRINGS = (
    "", "herts-converged", "agr-b", "INC-1003", "INC-1012", "bt", "hp", "herts", "acme", "zeta",
    "P1", "2026-10", "0000-01", "9999-12", "2026-13", "2026-00", "-001-01", "24x7", "Europe/London",
    "Not/AZone", "1", "0.5", "-1", "1e309", "NaN", ".5", "x" * 20_000, "\x00", "é" * 300,
    "../../etc/passwd", "' OR 1=1 --", "%s%s%n", "\ud7ff", "25:99", "2026-02-30", "GBP", "",
)
INT64 = (0, 1, -1, 2, 109, 110, 218, 10**6, 2**31, 2**62, 2**63 - 1, -(2**63))
INT32 = (0, 1, -1, 100, 1000, 1001, 2**31 - 1, -(2**31))
SECONDS = (0, 1, -1, 1_790_000_000, 1_793_000_000, -62_135_596_801, -62_135_596_800,
           253_402_300_799, 253_402_300_800, 32_503_680_000, 2**63 - 1, -(2**63), 4_102_444_800)
NANOS = (0, 1, -1, 999_999_999, 1_000_000_000, 500, 2**31 - 1, -(2**31))


@dataclass(frozen=True)
class Method:
    path: str  # /ledger.v1.Service/Method
    request: type[Message]
    streaming: bool


def methods() -> list[Method]:
    found = []
    for module in SERVICES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                cls = getattr(module, method.input_type.name)
                found.append(Method(f"/{service.full_name}/{method.name}", cls,
                                    method.server_streaming))
    return found


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        data = json.loads(Path(demo_scenario_path()).read_text())
        self.events = [convert.event_to_proto(event_from_dict(e, "e")) for e in data["events"]]

    # -- values ----------------------------------------------------------------
    # Any: descriptors come as the pure-Python or the upb class, which the stubs keep apart
    def _scalar(self, field: Any) -> Any:  # noqa: PLR0911  one case per protobuf scalar type
        rng = self.rng
        t = field.type
        if t == descriptor.FieldDescriptor.TYPE_STRING:
            return rng.choice(STRINGS) if rng.random() < 0.85 else _random_text(rng)
        if t == descriptor.FieldDescriptor.TYPE_BYTES:
            return rng.randbytes(rng.choice((0, 1, 32, 100)))
        if t == descriptor.FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if t == descriptor.FieldDescriptor.TYPE_ENUM:
            return rng.choice((0, 1, 2, 3, 4, 5, 7, 99, -1))
        if t in (descriptor.FieldDescriptor.TYPE_INT64, descriptor.FieldDescriptor.TYPE_SINT64,
                 descriptor.FieldDescriptor.TYPE_SFIXED64):
            return rng.choice(INT64)
        if t in (descriptor.FieldDescriptor.TYPE_UINT64, descriptor.FieldDescriptor.TYPE_FIXED64):
            return rng.choice((0, 1, 2**63, 2**64 - 1))
        if t in (descriptor.FieldDescriptor.TYPE_UINT32, descriptor.FieldDescriptor.TYPE_FIXED32):
            return rng.choice((0, 1, 2**32 - 1))
        if t in (descriptor.FieldDescriptor.TYPE_DOUBLE, descriptor.FieldDescriptor.TYPE_FLOAT):
            return rng.choice((0.0, -1.0, 1e308, float("nan"), float("inf")))
        return rng.choice(INT32)

    def fill(self, message: Message, depth: int = 0) -> Message:  # noqa: C901, PLR0912  one case per well-known and field kind, the fuzzer's whole grammar in one place
        rng = self.rng
        name = message.DESCRIPTOR.full_name
        if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            stamp: Any = message  # a Timestamp or Duration, known only by its descriptor
            stamp.seconds = rng.choice(SECONDS) if name.endswith("Timestamp") else \
                rng.choice((0, 1, -1, 3600, 315_576_000_001, -(2**63), 2**63 - 1))
            stamp.nanos = rng.choice(NANOS)
            return message
        for field in message.DESCRIPTOR.fields:
            if rng.random() < 0.45:
                continue
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                target = getattr(message, field.name)
                for _ in range(rng.choice((1, 2))):
                    key = rng.choice(STRINGS)[:50]
                    value_field = field.message_type.fields_by_name["value"]
                    if value_field.message_type is None:
                        target[key] = self._scalar(value_field)
                continue
            if field.is_repeated:
                count = rng.choice((0, 1, 2, 3, 5))
                for _ in range(count):
                    if field.message_type is not None:
                        if depth < 4:
                            self.fill(getattr(message, field.name).add(), depth + 1)
                    else:
                        getattr(message, field.name).append(self._scalar(field))
            elif field.message_type is not None:
                if depth < 4:
                    self.fill(getattr(message, field.name), depth + 1)
                    getattr(message, field.name).SetInParent()
            else:
                # a value the protobuf runtime refuses to hold (a surrogate) is skipped
                with contextlib.suppress(ValueError, TypeError):
                    setattr(message, field.name, self._scalar(field))
        return message

    def _extreme_event(self) -> events_pb2.LedgerEvent:
        """A real scenario event with one field (or a timestamp) made extreme."""
        rng = self.rng
        event = events_pb2.LedgerEvent()
        event.CopyFrom(rng.choice(self.events))
        kind = event.WhichOneof("kind")
        choice = rng.random()
        if choice < 0.35:
            event.occurred_at.seconds = rng.choice(SECONDS)
            event.occurred_at.nanos = rng.choice(NANOS)
        elif choice < 0.6:
            field = rng.choice(("event_id", "incident_id", "actor", "agreement_id"))
            setattr(event, field, rng.choice(STRINGS))
        elif kind is not None:
            self.fill(getattr(event, kind), 1)
        if rng.random() < 0.3:
            event.event_id = f"fuzz-{rng.randrange(10**9)}"
        return event

    # -- requests ----------------------------------------------------------------
    def body(self, method: Method) -> bytes:
        """One request body for ``method``: valid-shaped, extreme or corrupt."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return rng.randbytes(rng.choice((1, 3, 10, 64, 500)))
        if method.request is incidents_pb2.AppendEventsRequest and roll < 0.5:
            request: Message = incidents_pb2.AppendEventsRequest(
                events=[self._extreme_event() for _ in range(rng.choice((1, 1, 2, 5)))])
        else:
            request = self.fill(method.request())
        if method.streaming and hasattr(request, "follow"):
            request.follow = False  # a follower would run until its deadline
        data = request.SerializeToString()
        if roll > 0.85 and data:
            data = _corrupt(rng, data)
        return data


def _random_text(rng: random.Random) -> str:
    return "".join(chr(rng.choice((rng.randrange(32, 127), rng.randrange(0x80, 0xD7FF))))
                   for _ in range(rng.choice((1, 5, 40, 200))))


def _corrupt(rng: random.Random, data: bytes) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.choice((1, 2, 4))):
        action = rng.random()
        if action < 0.4 and mutable:
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        elif action < 0.7 and mutable:
            del mutable[rng.randrange(len(mutable)):]
        else:
            at = rng.randrange(len(mutable) + 1)
            mutable[at:at] = rng.randbytes(rng.choice((1, 5, 20)))
    return bytes(mutable)


def follows(method: Method, body: bytes) -> bool:
    """Whether a corrupted body still decodes as a following ReadLog."""
    if method.request is not log_pb2.ReadLogRequest:
        return False
    try:
        return bool(log_pb2.ReadLogRequest.FromString(body).follow)
    except DecodeError:
        return False


def plan(seed: int, count: int) -> Iterator[tuple[Method, bytes]]:
    fuzzer = Fuzzer(seed)
    every = methods()
    for i in range(count):
        method = every[i % len(every)] if i < len(every) else fuzzer.rng.choice(every)
        yield method, fuzzer.body(method)
