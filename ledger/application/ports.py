"""The ports: what the application needs from the world outside it, as
Protocols. The event store (ledger.adapters.eventstore on SQLite and
PostgreSQL, ledger.adapters.memory_store in memory), the SLA read model
(projections.sla_read_model) and the transparency log (projections.audit_log)
implement them; the composition root wires the implementations in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.audit.checkpoint import Signer
from ledger.audit.tlog import InclusionProof, SignedCheckpoint
from ledger.domain.agreements import AgreementHistory
from ledger.domain.errors import DomainError
from ledger.domain.events import LedgerEvent
from ledger.domain.sla.facts import IncidentFacts
from ledger.domain.sla.report import PeriodReport

# -- the event store ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamWrite:
    """Events appended to one stream, valid only if it is still at `expected_version`."""

    name: str
    stream: uuid.UUID
    expected_version: int
    events: tuple[LedgerEvent, ...]
    content_hashes: tuple[str, ...]


class VersionConflict(Exception):
    """Another writer appended to one of the streams (or used an event_id) first."""


class EventStore(Protocol):
    """An append-only log of streams with gap-free positions from 1 and
    durable idempotency keys ((agreement_id, event_id) -> content hash)."""

    def append(self, writes: Sequence[StreamWrite], recorded_at: int,
               expect: dict[str, int] | None = None) -> list[int]:
        """Store every write in one transaction; returns positions in order.
        `expect` maps streams validated against but not written to the
        version they had. Raises VersionConflict and stores nothing if any
        stream moved or an event id was taken."""
        ...

    def stream_versions(self, names: Sequence[str]) -> dict[str, int]: ...

    def load_stream(self, stream: uuid.UUID) -> list[LedgerEvent]: ...

    def load_streams(self, names: Sequence[str]) -> dict[str, list[LedgerEvent]]: ...

    def read_log(self, after: int, limit: int = 1000,
                 upto: int | None = None) -> list[LedgerEvent]: ...

    def read_agreement(self, agreement_id: str, upto: int | None = None,
                       after: int = 0) -> list[LedgerEvent]: ...

    def max_position(self) -> int: ...

    def position_recorded_by(self, recorded_at: int) -> int: ...

    def lookup_event_ids(
        self, keys: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], tuple[str, int]]: ...

    def find_event(self, event_id: str) -> list[tuple[str, int]]: ...

    def incident_agreements(self, incident_ids: Sequence[str]) -> dict[str, set[str]]: ...

    def stream_names(self, prefix: str, agreement_id: str | None = None) -> list[str]: ...

    def database_error(self, exc: BaseException) -> DomainError | None:
        """The retryable error a failure of this store stands for (nothing
        was stored), or None if it is not a condition a retry can cure."""
        ...


# -- the SLA read model ---------------------------------------------------------


class SlaReadModel(Protocol):
    """The SLA figures folded ahead of the questions, bitemporally."""

    def caught_up(self) -> bool: ...

    def holds(self, position: int) -> bool: ...

    def period_report(
        self, agreement_id: str, period: str, evaluated_at: int, *, keep_ids: bool,
        authorize: Callable[[AgreementHistory | None], AgreementHistory],
        position: int | None = None, as_recorded_at: int | str | None = None,
    ) -> PeriodReport | None: ...

    def outcome_ids(self, agreement_id: str, period: str, evaluated_at: int, position: int,
                    incidents: set[str]) -> dict[str, dict[str, list[str]]] | None: ...

    def incident_facts(self, incident_id: str, evaluated_at: int,
                       agreement_id: str) -> tuple[int, IncidentFacts] | None: ...

    def incident_rows(self, agreements: list[str] | None, after: str, opened_from: int | None,
                      opened_to: int | None, limit: int) -> list[tuple[IncidentFacts, int]]: ...

    def claim_facts(self, agreement_id: str, period: str | None,
                    evaluated_at: int) -> tuple[int, list[IncidentFacts]]: ...

    def running(self, agreement_id: str | None,
                evaluated_at: int) -> tuple[int, list[IncidentFacts]]: ...


# -- the transparency log -------------------------------------------------------


class Leadership(Protocol):
    def leading(self) -> bool: ...

    def request_checkpoint(self) -> None: ...


class AuditLog(Protocol):
    """The Merkle tree over the log, its signed checkpoints and proofs."""

    @property
    def signer(self) -> Signer: ...

    @property
    def leadership(self) -> Leadership: ...

    @property
    def size(self) -> int: ...

    def latest(self) -> SignedCheckpoint | None: ...

    def sign(self, now: int) -> SignedCheckpoint: ...

    def due(self, now: int, interval: int) -> bool: ...

    def tree_size(self, tree_size: int = 0) -> int: ...

    def inclusion_proof(self, position: int, tree_size: int = 0) -> InclusionProof: ...

    def consistency_proof(self, first: int,
                          second: int = 0) -> tuple[int, int, tuple[bytes, ...]]: ...

    def leaf_hashes(self, start: int, count: int, tree_size: int = 0) -> tuple[int, bytes]: ...
