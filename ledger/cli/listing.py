"""`sla-ledger agreements`, `agreement`, `incidents`, `amend`: the ledger's
contents in the scenario file's own naming (`P1`, `open`, positions as
numbers), whatever the wire calls them."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ledger.cli.common import make_client
from ledger.client import convert
from ledger.domain.codec import event_to_dict
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.render import fmt_seconds
from ledger.formats import table

STATUS_NAMES = {1: "open", 2: "resolved", 3: "closed", 4: "voided"}


def _instant(ts: Any) -> str:
    return format_instant(convert.timestamp_to_micros(ts, "instant"))


def _terms(msg: Any) -> dict[str, Any]:
    from ledger.domain.terms_parsing import terms_to_dict

    return terms_to_dict(convert.terms_from_proto(msg, "terms"))


def agreement_dict(msg: Any) -> dict[str, Any]:
    """An Agreement message as the scenario format writes an agreement."""
    return {
        "id": msg.id, "effective_from": _instant(msg.effective_from), "position": msg.position,
        **_terms(msg.terms),
        "amendments": [{"event_id": a.event_id, "effective_from": _instant(a.effective_from),
                        "position": a.position, **_terms(a.terms)} for a in msg.amendments],
        "maintenance_windows": [
            {"event_id": w.event_id, "service": w.service, "start": _instant(w.start),
             "end": _instant(w.end), "scheduled_at": _instant(w.scheduled_at), "position": w.position}
            for w in msg.maintenance_windows],
    }


def incident_dict(msg: Any) -> dict[str, Any]:
    return {
        "incident_id": msg.incident_id, "agreement": msg.agreement_id, "service": msg.service,
        "priority": convert.priority_name(msg.priority), "status": STATUS_NAMES.get(msg.status, ""),
        "opened_at": _instant(msg.opened_at), "custody": msg.custody, "paused": msg.paused,
        "root_cause": msg.root_cause or None, "last_position": msg.last_position,
    }


def timeline_dict(response: Any) -> dict[str, Any]:
    """GetIncident's answer: the summary and every stored event as the
    `events` command writes it, with whether it was retracted."""
    from dataclasses import replace

    entries = []
    for entry in response.timeline:
        recorded = entry.recorded
        event = replace(convert.event_from_proto(recorded.event, "event"), position=recorded.position,
                        recorded_at=convert.timestamp_to_micros(recorded.recorded_at, "recorded_at"),
                        submitted_by=recorded.submitted_by)
        entries.append({**event_to_dict(event), "retracted": entry.retracted})
    return {"incident": incident_dict(response.incident), "timeline": entries}


def cmd_agreements(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        agreements = [agreement_dict(a) for a in client.list_agreements()]
    if args.format == "json":
        print(json.dumps(agreements, indent=2, ensure_ascii=False))
        return 0
    rows = [[a["id"], a["customer"], ",".join(a["providers"]), a["timezone"], a["effective_from"],
             str(len(a["amendments"])), str(len(a["service_levels"]))] for a in agreements]
    print(table(rows, ["agreement", "customer", "providers", "timezone", "effective from",
                        "amendments", "levels"]))
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        agreement = client.get_agreement(args.agreement_id)
    print(json.dumps(agreement_dict(agreement), indent=2, ensure_ascii=False))
    return 0


def cmd_incidents(args: argparse.Namespace) -> int:
    evaluated = parse_instant(args.evaluated_at) if args.evaluated_at else None
    with make_client(args) as client:
        if args.at_risk:
            clocks = [{"due_at": format_instant(c.due_at), "incident_id": c.incident_id,
                       "agreement": c.agreement_id, "service_level": c.service_level_id,
                       "custody": c.custody, "elapsed_seconds": fmt_seconds(c.elapsed),
                       "threshold_seconds": fmt_seconds(c.threshold)}
                      for c in client.at_risk(args.agreement, evaluated_at=evaluated)]
            if args.status:
                print("sla-ledger incidents: --at-risk lists running clocks; --status does not apply",
                      file=sys.stderr)
                return 2
            if args.format == "json":
                print(json.dumps(clocks, indent=2))
            else:
                from ledger.formats import duration

                print(table([[c["due_at"], c["incident_id"], c["service_level"], c["custody"],
                               f"{duration(c['elapsed_seconds'])}/{duration(c['threshold_seconds'])}"]
                              for c in clocks],
                             ["due at", "incident", "service level", "held by", "elapsed/threshold"]))
            return 0
        incidents = [incident_dict(i) for i in client.list_incidents(args.agreement, args.status or "")]
    if args.format == "json":
        print(json.dumps(incidents, indent=2, ensure_ascii=False))
        return 0
    print(table([[i["incident_id"], i["priority"], i["status"] + (" paused" if i["paused"] else ""),
                   i["opened_at"], i["custody"], i["root_cause"] or ""] for i in incidents],
                 ["incident", "priority", "status", "opened at", "held by", "root cause"]))
    return 0


def cmd_amend(args: argparse.Namespace) -> int:
    """Amends an agreement from a file holding the terms that change (the
    scenario format's amendment): each replaces its value whole, the rest
    carry over (the server applies amendments in effective_from order)."""
    from pathlib import Path

    from ledger.domain.errors import InvalidArgument
    from ledger.domain.terms_parsing import parse_terms_changes

    try:
        text = Path(args.terms).read_text("utf-8")
        if args.terms.endswith((".yaml", ".yml")):
            import yaml

            changes = yaml.safe_load(text)
        else:
            changes = json.loads(text)
        effective = parse_instant(args.effective_from)
    except (OSError, ValueError) as exc:
        print(f"sla-ledger amend: {exc}", file=sys.stderr)
        return 2
    if not isinstance(changes, dict):
        print("sla-ledger amend: the terms file holds one object", file=sys.stderr)
        return 2
    try:
        named = parse_terms_changes(changes, "terms")
    except InvalidArgument as exc:
        print(f"sla-ledger amend: {exc}", file=sys.stderr)
        return 2
    with make_client(args) as client:
        result = client.amend_agreement(args.agreement, effective, named, args.event_id or "")
    print(json.dumps({"agreement": args.agreement, "position": result.position,
                      "duplicate": result.duplicate, "event_id": result.event_id}))
    return 0
