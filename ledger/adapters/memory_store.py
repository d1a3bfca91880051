"""An event store in memory: the EventStore port (ledger.application.ports)
without a database, for the application's unit tests and for tools that
replay a log they already hold. It keeps the SQL stores' contract (the
store contract suite runs on it): gap-free positions from 1, one stream
version per event, (agreement_id, event_id) unique, a refused batch stores
nothing, and events are kept in their stored bytes, so what a read returns
is exactly what the SQL stores return.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ledger.adapters.stored_state import decode_state, encode_state
from ledger.application.ports import StreamWrite, VersionConflict
from ledger.domain.errors import DomainError
from ledger.domain.events import LedgerEvent
from ledger.domain.streams import log_stream, stream_for


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One row of the log (the SQL stores' ``ledger_log``) with the event's bytes."""

    position: int
    event_id: str
    content_hash: str
    stream: uuid.UUID
    version: int
    recorded_at: int
    log_stream: str  # "incident:ID" or "agreement:ID", as ledger_log.stream
    agreement_id: str
    state: bytes

    def event(self) -> LedgerEvent:
        return decode_state(self.state, self.position)


class MemoryEventStore:
    def __init__(self) -> None:
        self.log: list[LogEntry] = []  # log[i].position == i + 1
        self.streams: dict[uuid.UUID, list[LogEntry]] = {}
        self._ids: dict[tuple[str, str], LogEntry] = {}
        self._lock = threading.Lock()

    # -- writes --------------------------------------------------------------
    def append(self, writes: Sequence[StreamWrite], recorded_at: int,
               expect: dict[str, int] | None = None) -> list[int]:
        with self._lock:
            for name, version in (expect or {}).items():
                if len(self.streams.get(stream_for(name), ())) != version:
                    raise VersionConflict(f"stream {name} moved")
            rows: list[LogEntry] = []
            versions: dict[uuid.UUID, int] = {}
            ids: set[tuple[str, str]] = set()
            for write in writes:
                version = versions.get(write.stream, len(self.streams.get(write.stream, ())))
                if write.expected_version != version:
                    raise VersionConflict(f"stream {write.name} is at version {version}, "
                                          f"not {write.expected_version}")
                for event, digest in zip(write.events, write.content_hashes, strict=True):
                    key = (event.agreement_id, event.event_id)
                    if key in self._ids or key in ids:
                        raise VersionConflict(f"event_id {event.event_id!r} is taken")
                    ids.add(key)
                    version += 1
                    rows.append(LogEntry(
                        len(self.log) + len(rows) + 1, event.event_id, digest, write.stream,
                        version, recorded_at, log_stream(write.name), event.agreement_id,
                        encode_state(replace(event, recorded_at=recorded_at))))
                versions[write.stream] = version
            for row in rows:
                self.log.append(row)
                self.streams.setdefault(row.stream, []).append(row)
                self._ids[(row.agreement_id, row.event_id)] = row
            return [row.position for row in rows]

    # -- reads ---------------------------------------------------------------
    def _upto(self, upto: int | None) -> int:
        return len(self.log) if upto is None else min(upto, len(self.log))

    def stream_versions(self, names: Sequence[str]) -> dict[str, int]:
        with self._lock:
            return {name: len(self.streams.get(stream_for(name), ())) for name in names}

    def load_stream(self, stream: uuid.UUID) -> list[LedgerEvent]:
        with self._lock:
            rows = list(self.streams.get(stream, ()))
        return [row.event() for row in rows]

    def load_streams(self, names: Sequence[str]) -> dict[str, list[LedgerEvent]]:
        return {name: self.load_stream(stream_for(name)) for name in names}

    def _rows(self, after: int, upto: int | None) -> list[LogEntry]:
        with self._lock:
            return self.log[max(after, 0):self._upto(upto)]

    def read_log(self, after: int, limit: int = 1000,
                 upto: int | None = None) -> list[LedgerEvent]:
        return [row.event() for row in self._rows(after, upto)[:limit]]

    def read_log_raw(self, after: int, limit: int,
                     upto: int | None = None) -> list[tuple[int, bytes]]:
        return [(row.position, row.state) for row in self._rows(after, upto)[:limit]]

    def read_agreement(self, agreement_id: str, upto: int | None = None,
                       after: int = 0) -> list[LedgerEvent]:
        return [row.event() for row in self._rows(after, upto) if row.agreement_id == agreement_id]

    def read_streams(self, agreement_id: str, streams: Sequence[str],
                     upto: int) -> dict[str, list[LedgerEvent]]:
        wanted = set(streams)
        out: dict[str, list[LedgerEvent]] = {}
        for row in self._rows(0, upto):
            if row.agreement_id == agreement_id and row.log_stream in wanted:
                out.setdefault(row.log_stream, []).append(row.event())
        return out

    def max_position(self) -> int:
        with self._lock:
            return len(self.log)

    def position_recorded_by(self, recorded_at: int) -> int:
        with self._lock:
            return max((r.position for r in self.log if r.recorded_at <= recorded_at), default=0)

    def lookup_event_ids(
        self, keys: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], tuple[str, int]]:
        with self._lock:
            return {key: (row.content_hash, row.position) for key in keys
                    if (row := self._ids.get(key)) is not None}

    def find_event(self, event_id: str) -> list[tuple[str, int]]:
        with self._lock:
            return [(r.agreement_id, r.position) for r in self.log if r.event_id == event_id]

    def incident_agreements(self, incident_ids: Sequence[str]) -> dict[str, set[str]]:
        wanted = {f"incident:{i}" for i in incident_ids}
        out: dict[str, set[str]] = {}
        with self._lock:
            for row in self.log:
                if row.log_stream in wanted:
                    out.setdefault(row.log_stream.split(":", 1)[1], set()).add(row.agreement_id)
        return out

    def stream_names(self, prefix: str, agreement_id: str | None = None) -> list[str]:
        with self._lock:
            return sorted({r.log_stream for r in self.log if r.log_stream.startswith(prefix)
                           and (agreement_id is None or r.agreement_id == agreement_id)})

    def database_error(self, exc: BaseException) -> DomainError | None:
        return None  # nothing here fails in a way a retry could cure

    def close(self) -> None:
        pass
