"""All conversion between protobuf messages and domain values lives here.

Incoming messages are reduced to the scenario-format dict and parsed by
ledger.domain.codec / terms_parsing, so validation exists once; field paths in
errors are rewritten to the proto paths the caller sent.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from ledger.domain import events as ev
from ledger.domain.agreements import TERM_NAMES, AgreementHistory, AgreementTerms, TermsChanges
from ledger.domain.codec import event_from_dict, payload_to_dict
from ledger.domain.errors import InvalidArgument
from ledger.domain.instants import format_duration, format_instant
from ledger.domain.sla.claim_list import ListedClaim, listed_claim_dict
from ledger.domain.terms_parsing import (
    WEEKDAYS,
    decimal_text,
    filler_terms,
    parse_terms,
    parse_terms_changes,
    terms_changes_to_dict,
    terms_to_dict,
)
from ledger.v1 import agreements_pb2, common_pb2, events_pb2, reports_pb2

_PRIORITY_NAMES = {1: "P1", 2: "P2", 3: "P3", 4: "P4"}
_PRIORITY_VALUES = {v: k for k, v in _PRIORITY_NAMES.items()}
_KINDS = {1: "response", 2: "resolution", 3: "availability"}
_KIND_VALUES = {v: k for k, v in _KINDS.items()}
_POLICIES = {1: "custody", 2: "root_cause"}
_POLICY_VALUES = {v: k for k, v in _POLICIES.items()}


# -- instants ------------------------------------------------------------------
def timestamp_to_micros(ts: timestamp_pb2.Timestamp, field: str) -> int:
    if ts.nanos % 1000:
        raise InvalidArgument(field, "instants have microsecond precision")
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def micros_to_timestamp(micros: int) -> timestamp_pb2.Timestamp:
    seconds, rest = divmod(micros, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=rest * 1000)


def duration_to_micros(d: duration_pb2.Duration, field: str) -> int:
    if d.nanos % 1000:
        raise InvalidArgument(field, "durations have microsecond precision")
    return d.seconds * 1_000_000 + d.nanos // 1000


def micros_to_duration(micros: int) -> duration_pb2.Duration:
    seconds, rest = divmod(micros, 1_000_000)
    return duration_pb2.Duration(seconds=seconds, nanos=rest * 1000)


def _instant_text(msg: Any, name: str, field: str) -> str:
    if not msg.HasField(name):
        raise InvalidArgument(f"{field}.{name}", "is required")
    return format_instant(timestamp_to_micros(getattr(msg, name), f"{field}.{name}"))


# -- events --------------------------------------------------------------------
def _payload_dict(kind: str, payload: Any, field: str) -> dict[str, Any]:
    if kind == "opened":
        return {"service": payload.service, "custody": payload.custody,
                "reporter": payload.reporter,
                "priority": _PRIORITY_NAMES.get(payload.priority, "")}
    if kind == "priority_changed":
        return {"priority": _PRIORITY_NAMES.get(payload.priority, "")}
    if kind == "maintenance_scheduled":
        return {"service": payload.service, "start": _instant_text(payload, "start", field),
                "end": _instant_text(payload, "end", field)}
    if kind == "agreement_registered":
        agreement = payload.agreement
        return {"effective_from": _instant_text(agreement, "effective_from", f"{field}.agreement"),
                "terms": terms_to_dict(terms_from_proto(agreement.terms, f"{field}.agreement.terms"))}
    if kind == "agreement_amended":
        changes = changes_from_proto(payload.terms, list(payload.update_mask.paths),
                                     f"{field}.terms")
        return {"effective_from": _instant_text(payload, "effective_from", field),
                "terms": terms_changes_to_dict(changes)}
    out: dict[str, Any] = {}
    for descriptor, value in payload.ListFields():
        out[descriptor.name] = value
    return out


def event_from_proto(msg: events_pb2.LedgerEvent, field: str) -> ev.LedgerEvent:
    kind = msg.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(f"{field}.kind", "one event type must be set")
    raw: dict[str, Any] = {
        "event_id": msg.event_id, "incident_id": msg.incident_id, "agreement": msg.agreement_id,
        "type": kind, "actor": msg.actor,
        "occurred_at": _instant_text(msg, "occurred_at", field),
    }
    raw.update(_payload_dict(kind, getattr(msg, kind), f"{field}.{kind}"))
    try:
        return event_from_dict(raw, field)
    except InvalidArgument as exc:
        raise InvalidArgument(_proto_path(exc.field, field, kind), exc.message) from None


_ENVELOPE_PATHS = {"agreement": "agreement_id", "type": "kind"}


def _proto_path(path: str, prefix: str, kind: str) -> str:
    """Rewrite "events[2].to" (scenario names) to "events[2].handed_off.to"."""
    if not path.startswith(prefix + "."):
        return path
    name = path[len(prefix) + 1 :]
    head = name.split(".", 1)[0].split("[", 1)[0]
    if head in _ENVELOPE_PATHS:
        return f"{prefix}.{_ENVELOPE_PATHS[head]}"
    if head in ("event_id", "incident_id", "occurred_at", "actor"):
        return path
    return f"{prefix}.{kind}.{name}"


def event_to_proto(event: ev.LedgerEvent) -> events_pb2.LedgerEvent:
    msg = events_pb2.LedgerEvent(
        event_id=event.event_id, incident_id=event.incident_id, agreement_id=event.agreement_id,
        occurred_at=micros_to_timestamp(event.occurred_at), actor=event.actor,
    )
    payload = event.payload
    target = getattr(msg, event.type)
    if isinstance(payload, ev.Opened):
        target.service, target.custody, target.reporter = payload.service, payload.custody, payload.reporter
        target.priority = _PRIORITY_VALUES[payload.priority]
    elif isinstance(payload, ev.PriorityChanged):
        target.priority = _PRIORITY_VALUES[payload.priority]
    elif isinstance(payload, ev.MaintenanceScheduled):
        target.service = payload.service
        target.start.CopyFrom(micros_to_timestamp(payload.start))
        target.end.CopyFrom(micros_to_timestamp(payload.end))
    elif isinstance(payload, ev.AgreementRegistered):
        target.agreement.CopyFrom(agreement_to_proto_terms(event.agreement_id, payload.effective_from, payload.terms))
    elif isinstance(payload, ev.AgreementAmended):
        target.effective_from.CopyFrom(micros_to_timestamp(payload.effective_from))
        terms, paths = changes_to_proto(payload.changes)
        target.terms.CopyFrom(terms)
        target.update_mask.paths.extend(paths)
    else:
        for key, value in payload_to_dict(payload).items():
            setattr(target, key, value if not hasattr(value, "as_tuple") else str(value))
        target.SetInParent()
    return msg


def recorded_to_proto(event: ev.LedgerEvent) -> events_pb2.RecordedEvent:
    return events_pb2.RecordedEvent(
        position=event.position, recorded_at=micros_to_timestamp(event.recorded_at),
        submitted_by=event.submitted_by, event=event_to_proto(event),
    )


# -- agreements ----------------------------------------------------------------
def terms_from_proto(msg: agreements_pb2.AgreementTerms, field: str) -> AgreementTerms:
    return parse_terms(_terms_dict(msg, field), field)


def changes_from_proto(msg: agreements_pb2.AgreementTerms, paths: list[str],
                       field: str) -> TermsChanges:
    """The terms an amendment names: those in `paths` (an update mask), or
    all of them when it is empty (complete terms)."""
    if not paths:
        return TermsChanges.complete(terms_from_proto(msg, field))
    raw = _terms_dict(msg, field)
    for path in paths:
        if path not in TERM_NAMES:
            raise InvalidArgument("update_mask", f"unknown field {path!r}")
    # A named maintenance_notice left unset removes the notice.
    return parse_terms_changes({p: raw.get(p) for p in paths}, field)


def changes_to_proto(changes: TermsChanges) -> tuple[agreements_pb2.AgreementTerms, list[str]]:
    """The named terms on a message, and the mask naming them."""
    return terms_to_proto(changes.apply(filler_terms())), list(changes.names)


def _terms_dict(msg: agreements_pb2.AgreementTerms, field: str) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "customer": msg.customer, "providers": list(msg.providers), "timezone": msg.timezone,
        "monthly_charge": {"currency": msg.monthly_charge.currency,
                           "minor_units": msg.monthly_charge.minor_units},
        "at_risk_percent": msg.at_risk_percent or "100",
        "policy": _POLICIES.get(msg.policy, "custody" if msg.policy == 0 else "?"),
        "services": list(msg.services),
        "calendars": {},
        "service_levels": [],
    }
    if msg.HasField("maintenance_notice"):
        raw["maintenance_notice"] = format_duration(
            duration_to_micros(msg.maintenance_notice, f"{field}.maintenance_notice"))
    if msg.HasField("dispute_window"):
        raw["dispute_window"] = format_duration(
            duration_to_micros(msg.dispute_window, f"{field}.dispute_window"))
    for i, cal in enumerate(msg.calendars):
        if cal.id in raw["calendars"]:
            raise InvalidArgument(f"{field}.calendars[{i}].id", f"duplicate calendar {cal.id!r}")
        raw["calendars"][cal.id] = {
            "timezone": cal.timezone, "holidays": list(cal.holidays),
            "weekly": [{"day": WEEKDAYS[w.day - 1] if 1 <= w.day <= 7 else "", "start": w.start,
                        "end": w.end} for w in cal.weekly],
        }
    for i, sl in enumerate(msg.service_levels):
        item: dict[str, Any] = {
            "id": sl.id, "kind": _KINDS.get(sl.kind, ""), "calendar": sl.calendar or "24x7",
            "objective": sl.objective, "credit_percent": sl.credit_percent or "0",
        }
        if sl.kind == 3:
            item["service"] = sl.service
        else:
            item["priority"] = _PRIORITY_NAMES.get(sl.priority, "")
            item["threshold"] = format_duration(
                duration_to_micros(sl.threshold, f"{field}.service_levels[{i}].threshold"))
            if sl.service:
                item["service"] = sl.service
        raw["service_levels"].append(item)
    return raw


def terms_to_proto(terms: AgreementTerms) -> agreements_pb2.AgreementTerms:
    raw = terms_to_dict(terms)
    msg = agreements_pb2.AgreementTerms(
        customer=terms.customer, providers=list(terms.providers), timezone=terms.timezone,
        monthly_charge=common_pb2.Money(currency=terms.monthly_charge.currency,
                                        minor_units=terms.monthly_charge.minor_units),
        at_risk_percent=raw["at_risk_percent"], policy=_POLICY_VALUES[terms.policy],  # type: ignore[arg-type]
        services=list(terms.services),
    )
    if terms.maintenance_notice is not None:
        msg.maintenance_notice.CopyFrom(micros_to_duration(terms.maintenance_notice))
    if terms.dispute_window is not None:
        msg.dispute_window.CopyFrom(micros_to_duration(terms.dispute_window))
    for cal in terms.calendars:
        msg.calendars.append(agreements_pb2.Calendar(
            id=cal.id, timezone=cal.timezone, holidays=[d.isoformat() for d in cal.holidays],
            weekly=[agreements_pb2.WorkingInterval(
                day=w.weekday + 1,  # type: ignore[arg-type]
                start=f"{w.start_minute // 60:02d}:{w.start_minute % 60:02d}",
                end=f"{w.end_minute // 60:02d}:{w.end_minute % 60:02d}") for w in cal.weekly],
        ))
    for sl in terms.service_levels:
        level = agreements_pb2.ServiceLevel(
            id=sl.id, kind=_KIND_VALUES[sl.kind],  # type: ignore[arg-type]
            calendar=sl.calendar, objective=decimal_text(sl.objective),
            credit_percent=decimal_text(sl.credit_percent), service=sl.service or "",
        )
        if sl.priority:
            level.priority = _PRIORITY_VALUES[sl.priority]  # type: ignore[assignment]
        if sl.threshold is not None:
            level.threshold.CopyFrom(micros_to_duration(sl.threshold))
        msg.service_levels.append(level)
    return msg


def agreement_to_proto_terms(agreement_id: str, effective_from: int, terms: AgreementTerms) -> agreements_pb2.Agreement:
    return agreements_pb2.Agreement(
        id=agreement_id, effective_from=micros_to_timestamp(effective_from),
        terms=terms_to_proto(terms),
    )


def agreement_to_proto(history: AgreementHistory) -> agreements_pb2.Agreement:
    first = history.versions[0]
    msg = agreement_to_proto_terms(history.agreement_id, first.effective_from, first.terms)
    msg.position = first.position
    for version in history.versions[1:]:
        msg.amendments.append(agreements_pb2.Amendment(
            event_id=version.event_id, effective_from=micros_to_timestamp(version.effective_from),
            terms=terms_to_proto(version.terms), position=version.position))
    for window in history.maintenance:
        msg.maintenance_windows.append(agreements_pb2.MaintenanceWindow(
            event_id=window.event_id, service=window.service,
            start=micros_to_timestamp(window.start), end=micros_to_timestamp(window.end),
            scheduled_at=micros_to_timestamp(window.scheduled_at), position=window.position))
    return msg


def priority_name(value: int) -> str:
    return _PRIORITY_NAMES.get(value, "")


def priority_value(name: str) -> int:
    return _PRIORITY_VALUES.get(name, 0)


# -- claims (sla-semantics section 11) ------------------------------------------
def claim_to_proto(claim: ListedClaim) -> reports_pb2.Claim:
    msg = reports_pb2.Claim(
        agreement_id=claim.agreement_id, incident_id=claim.incident_id,
        period=claim.period, event_id=claim.event_id, type=claim.type,
        claimed_by=claim.claimed_by, claimed_at=micros_to_timestamp(claim.claimed_at),
        claim=dict(claim.claim), awaiting=claim.awaiting, accepted_by=claim.accepted_by,
        disputed_by=claim.disputed_by, state=claim.state)
    if claim.deemed_at is not None:
        msg.deemed_at.CopyFrom(micros_to_timestamp(claim.deemed_at))
    return msg


def claim_from_proto(msg: reports_pb2.Claim) -> ListedClaim:
    return ListedClaim(
        msg.agreement_id, msg.incident_id, msg.period, msg.event_id, msg.type, msg.claimed_by,
        timestamp_to_micros(msg.claimed_at, "claimed_at"), tuple(sorted(msg.claim.items())),
        tuple(msg.awaiting), tuple(msg.accepted_by), tuple(msg.disputed_by), msg.state,
        timestamp_to_micros(msg.deemed_at, "deemed_at") if msg.HasField("deemed_at") else None)


def claim_to_dict(msg: reports_pb2.Claim) -> dict[str, Any]:
    """A claim as JSON: the dispute fields of a report, and more."""
    return listed_claim_dict(claim_from_proto(msg))
