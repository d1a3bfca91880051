"""The events of the ledger (spec section 4 and the scenario format).

A LedgerEvent is the envelope; its payload is one frozen dataclass per type.
`position`, `recorded_at` and `submitted_by` are 0/"" until the ledger stores
the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from ledger.domain.agreements import AgreementTerms, TermsChanges


@dataclass(frozen=True, slots=True)
class Opened:
    TYPE: ClassVar[str] = "opened"
    service: str
    priority: str
    custody: str
    reporter: str = ""


@dataclass(frozen=True, slots=True)
class Responded:
    TYPE: ClassVar[str] = "responded"


@dataclass(frozen=True, slots=True)
class HandedOff:
    TYPE: ClassVar[str] = "handed_off"
    to: str


@dataclass(frozen=True, slots=True)
class HandoffRejected:
    TYPE: ClassVar[str] = "handoff_rejected"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClockPaused:
    TYPE: ClassVar[str] = "clock_paused"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClockResumed:
    TYPE: ClassVar[str] = "clock_resumed"


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    TYPE: ClassVar[str] = "priority_changed"
    priority: str


@dataclass(frozen=True, slots=True)
class OutageStarted:
    TYPE: ClassVar[str] = "outage_started"
    impact: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class OutageEnded:
    TYPE: ClassVar[str] = "outage_ended"


@dataclass(frozen=True, slots=True)
class Resolved:
    TYPE: ClassVar[str] = "resolved"
    root_cause: str | None = None


@dataclass(frozen=True, slots=True)
class Reopened:
    TYPE: ClassVar[str] = "reopened"


@dataclass(frozen=True, slots=True)
class Closed:
    TYPE: ClassVar[str] = "closed"


@dataclass(frozen=True, slots=True)
class RootCauseAssigned:
    TYPE: ClassVar[str] = "root_cause_assigned"
    root_cause: str


@dataclass(frozen=True, slots=True)
class Retracted:
    TYPE: ClassVar[str] = "retracted"
    target_event_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Voided:
    TYPE: ClassVar[str] = "voided"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClaimAccepted:
    """An awaited org accepts a claim (spec 11.3)."""

    TYPE: ClassVar[str] = "claim_accepted"
    target_event_id: str


@dataclass(frozen=True, slots=True)
class ClaimDisputed:
    """An awaited org disputes a claim (spec 11.3)."""

    TYPE: ClassVar[str] = "claim_disputed"
    target_event_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MaintenanceScheduled:
    TYPE: ClassVar[str] = "maintenance_scheduled"
    service: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AgreementRegistered:
    TYPE: ClassVar[str] = "agreement_registered"
    effective_from: int
    terms: AgreementTerms


@dataclass(frozen=True, slots=True)
class AgreementAmended:
    """Only the terms that change (10.18); the agreement's history applies
    amendments in effective_from order, whatever order they were stored in."""

    TYPE: ClassVar[str] = "agreement_amended"
    effective_from: int
    changes: TermsChanges


IncidentPayload = (
    Opened
    | Responded
    | HandedOff
    | HandoffRejected
    | ClockPaused
    | ClockResumed
    | PriorityChanged
    | OutageStarted
    | OutageEnded
    | Resolved
    | Reopened
    | Closed
    | RootCauseAssigned
    | Retracted
    | Voided
    | ClaimAccepted
    | ClaimDisputed
)
AgreementPayload = MaintenanceScheduled | AgreementRegistered | AgreementAmended
Payload = IncidentPayload | AgreementPayload

INCIDENT_EVENT_TYPES: tuple[type[IncidentPayload], ...] = (
    Opened,
    Responded,
    HandedOff,
    HandoffRejected,
    ClockPaused,
    ClockResumed,
    PriorityChanged,
    OutageStarted,
    OutageEnded,
    Resolved,
    Reopened,
    Closed,
    RootCauseAssigned,
    Retracted,
    Voided,
    ClaimAccepted,
    ClaimDisputed,
)
PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.TYPE: cls
    for cls in (*INCIDENT_EVENT_TYPES, MaintenanceScheduled, AgreementRegistered, AgreementAmended)
}


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    event_id: str
    agreement_id: str
    incident_id: str
    occurred_at: int
    actor: str
    payload: Payload
    position: int = 0
    recorded_at: int = 0
    submitted_by: str = ""

    @property
    def type(self) -> str:
        return self.payload.TYPE

    @property
    def is_incident_event(self) -> bool:
        return isinstance(self.payload, INCIDENT_EVENT_TYPES)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where one appended event stands in the log; ``duplicate``: it was
    already stored under that id (appends are idempotent by event id)."""

    event_id: str
    position: int
    duplicate: bool
