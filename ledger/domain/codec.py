"""The plain-dict form of events: the scenario-file shape (spec
scenario-format.md), used for scenario files, storage and exports.

event_from_dict validates every field and raises InvalidArgument naming it
(prefixed with `field`, e.g. "events[3].to").
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ledger.domain import events as ev
from ledger.domain.agreements import PRIORITIES
from ledger.domain.errors import InvalidArgument
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.terms_parsing import (
    decimal_text,
    parse_decimal,
    parse_id,
    parse_terms,
    parse_terms_changes,
    terms_changes_to_dict,
    terms_to_dict,
)


def _instant(raw: Mapping[str, Any], key: str, field: str) -> int:
    try:
        return parse_instant(raw.get(key))  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidArgument(f"{field}.{key}", str(exc)) from None


def _text(raw: Mapping[str, Any], key: str, field: str, *, required: bool = False) -> str:
    value = raw.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field}.{key}", f"must be a string, got {value!r}")
    if required and not value:
        raise InvalidArgument(f"{field}.{key}", "is required")
    if len(value) > 4096:
        raise InvalidArgument(f"{field}.{key}", "is longer than 4096 characters")
    return value


def _priority(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get("priority")
    if value not in PRIORITIES:
        raise InvalidArgument(f"{field}.priority", f"must be one of P1..P4, got {value!r}")
    return str(value)


def _root_cause(raw: Mapping[str, Any], field: str, *, required: bool) -> str | None:
    value = raw.get("root_cause")
    if value in (None, "") and not required:
        return None
    return parse_id(value, f"{field}.root_cause")


def payload_from_dict(kind: str, raw: Mapping[str, Any], field: str, *,  # noqa: C901, PLR0911, PLR0912  a flat table: one parse per event type
                      strict: bool = True) -> ev.Payload:
    """`strict=False` only for the ledger's own stored rows (parse_decimal)."""
    if kind == "opened":
        return ev.Opened(service=parse_id(raw.get("service"), f"{field}.service"),
                         priority=_priority(raw, field),
                         custody=parse_id(raw.get("custody"), f"{field}.custody"),
                         reporter=_text(raw, "reporter", field))
    if kind == "handed_off":
        return ev.HandedOff(to=parse_id(raw.get("to"), f"{field}.to"))
    if kind == "handoff_rejected":
        return ev.HandoffRejected(reason=_text(raw, "reason", field))
    if kind == "clock_paused":
        return ev.ClockPaused(reason=_text(raw, "reason", field))
    if kind == "priority_changed":
        return ev.PriorityChanged(priority=_priority(raw, field))
    if kind == "outage_started":
        # Absent means a full outage; proto3 cannot tell absent from "".
        impact = raw.get("impact")
        if impact is None or impact == "":
            impact = "1"
        return ev.OutageStarted(impact=parse_decimal(impact, f"{field}.impact", low=Decimal(0),
                                                     high=Decimal(1), low_inclusive=False,
                                                     strict=strict))
    if kind == "resolved":
        return ev.Resolved(root_cause=_root_cause(raw, field, required=False))
    if kind == "root_cause_assigned":
        return ev.RootCauseAssigned(root_cause=_root_cause(raw, field, required=True) or "")
    if kind == "retracted":
        return ev.Retracted(target_event_id=_text(raw, "target_event_id", field, required=True),
                            reason=_text(raw, "reason", field))
    if kind == "voided":
        return ev.Voided(reason=_text(raw, "reason", field))
    if kind == "claim_accepted":
        return ev.ClaimAccepted(
            target_event_id=_text(raw, "target_event_id", field, required=True))
    if kind == "claim_disputed":
        return ev.ClaimDisputed(
            target_event_id=_text(raw, "target_event_id", field, required=True),
            reason=_text(raw, "reason", field, required=True))
    if kind == "maintenance_scheduled":
        start, end = _instant(raw, "start", field), _instant(raw, "end", field)
        if end <= start:
            raise InvalidArgument(f"{field}.end", "must be after start")
        return ev.MaintenanceScheduled(service=parse_id(raw.get("service"), f"{field}.service"),
                                       start=start, end=end)
    if kind == "agreement_registered":
        return ev.AgreementRegistered(
            effective_from=_instant(raw, "effective_from", field),
            terms=parse_terms(raw.get("terms") or {}, f"{field}.terms", strict=strict))
    if kind == "agreement_amended":
        changed = raw.get("terms")
        if not isinstance(changed, Mapping):
            raise InvalidArgument(f"{field}.terms", "must name the terms that change")
        return ev.AgreementAmended(
            effective_from=_instant(raw, "effective_from", field),
            changes=parse_terms_changes(changed, f"{field}.terms", strict=strict))
    simple = ev.PAYLOAD_TYPES.get(kind)
    if simple is None:
        raise InvalidArgument(f"{field}.type", f"unknown event type {kind!r}")
    return simple()  # type: ignore[call-arg]


# What every event may carry, and what the ledger adds when it stores one
# (`sla-ledger events` writes those; a file may carry them back).
EVENT_KEYS = frozenset({"event_id", "incident_id", "type", "occurred_at", "actor", "agreement"})
STORED_KEYS = frozenset({"position", "recorded_at", "submitted_by"})


def unknown_event_keys(raw: Mapping[str, Any]) -> list[str]:
    """The keys of an event object that no event of its type has."""
    payload = ev.PAYLOAD_TYPES.get(str(raw.get("type")))
    allowed = EVENT_KEYS | STORED_KEYS | set(getattr(payload, "__slots__", ()))
    return sorted(k for k in raw if k not in allowed)


def event_from_dict(raw: Mapping[str, Any], field: str = "event") -> ev.LedgerEvent:
    if not isinstance(raw, Mapping):
        raise InvalidArgument(field, "must be an object")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise InvalidArgument(f"{field}.type", "is required")
    payload = payload_from_dict(kind, raw, field)
    incident_id = _text(raw, "incident_id", field)
    is_incident = isinstance(payload, ev.INCIDENT_EVENT_TYPES)
    if is_incident:
        parse_id(incident_id, f"{field}.incident_id")
    elif incident_id:
        raise InvalidArgument(f"{field}.incident_id", f"{kind} is not an incident event")
    agreement = _text(raw, "agreement", field)
    if agreement:
        parse_id(agreement, f"{field}.agreement")
    elif kind in ("opened", "maintenance_scheduled", "agreement_registered", "agreement_amended"):
        raise InvalidArgument(f"{field}.agreement", f"is required on {kind}")
    event_id = _text(raw, "event_id", field, required=True)
    if len(event_id) > 128:
        raise InvalidArgument(f"{field}.event_id", "is longer than 128 characters")
    actor = _text(raw, "actor", field)
    if actor:
        parse_id(actor, f"{field}.actor")
    return ev.LedgerEvent(
        event_id=event_id, agreement_id=agreement, incident_id=incident_id,
        occurred_at=_instant(raw, "occurred_at", field), actor=actor, payload=payload,
        position=int(raw.get("position") or 0),
        recorded_at=parse_instant(raw["recorded_at"]) if raw.get("recorded_at") else 0,
        submitted_by=str(raw.get("submitted_by") or ""),
    )


def event_from_stored(raw: Mapping[str, Any]) -> ev.LedgerEvent:
    """The decoder for the store's own rows (event_to_dict with stored=True):
    identifiers and lengths were checked when the event was appended, so
    only the values are rebuilt. About 3x cheaper than event_from_dict, which
    matters when a projection replays a million events."""
    return ev.LedgerEvent(
        event_id=raw["event_id"], agreement_id=raw.get("agreement") or "",
        incident_id=raw.get("incident_id") or "", occurred_at=parse_instant(raw["occurred_at"]),
        actor=raw.get("actor") or "",
        payload=payload_from_dict(raw["type"], raw, "event", strict=False),
        position=int(raw.get("position") or 0),
        recorded_at=parse_instant(raw["recorded_at"]) if raw.get("recorded_at") else 0,
        submitted_by=str(raw.get("submitted_by") or ""),
    )


def payload_to_dict(payload: ev.Payload) -> dict[str, Any]:
    if isinstance(payload, ev.OutageStarted):
        return {"impact": decimal_text(payload.impact)}
    if isinstance(payload, ev.MaintenanceScheduled):
        return {"service": payload.service, "start": format_instant(payload.start),
                "end": format_instant(payload.end)}
    if isinstance(payload, ev.AgreementRegistered):
        return {"effective_from": format_instant(payload.effective_from),
                "terms": terms_to_dict(payload.terms)}
    if isinstance(payload, ev.AgreementAmended):
        return {"effective_from": format_instant(payload.effective_from),
                "terms": terms_changes_to_dict(payload.changes)}
    out: dict[str, Any] = {}
    for name in payload.__slots__:
        value = getattr(payload, name)
        if value not in (None, ""):
            out[name] = value
    return out


def event_to_dict(event: ev.LedgerEvent, *, stored: bool = True) -> dict[str, Any]:
    """Inverse of event_from_dict. With stored, includes position, recorded_at
    and submitted_by."""
    out: dict[str, Any] = {"event_id": event.event_id}
    if event.incident_id:
        out["incident_id"] = event.incident_id
    out["type"] = event.type
    out["occurred_at"] = format_instant(event.occurred_at)
    out["actor"] = event.actor
    if event.agreement_id:
        out["agreement"] = event.agreement_id
    out.update(payload_to_dict(event.payload))
    if stored:
        out["position"] = event.position
        out["recorded_at"] = format_instant(event.recorded_at)
        out["submitted_by"] = event.submitted_by
    return out
