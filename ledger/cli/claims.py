"""`sla-ledger disputes`, `accept`, `dispute`: what awaits a partner's answer
(sla-semantics section 11), and answering it as the caller's org."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ledger.cli.common import client_flags, make_client
from ledger.domain.instants import format_instant, parse_duration, parse_instant
from ledger.formats import table


def add_parsers(sub: Any) -> None:
    disputes = sub.add_parser(
        "disputes", help="claims not in effect: what awaits an answer, and what was disputed",
        description="Claims (sla-semantics section 11) as they stand at an instant: a root "
        "cause blaming another party, a provider's void, a provider's lowering of priority. "
        "A claim counts once every org it awaits accepts it, or once the agreement's "
        "dispute window passes without a dispute (its deemed instant).")
    disputes.add_argument("--agreement", default="", help="only this agreement (default: all "
                          "you can see)")
    disputes.add_argument("--period", default="", help="only incidents of this period (YYYY-MM)")
    disputes.add_argument("--awaiting", default="", help="only claims still awaiting this org's "
                          "answer")
    disputes.add_argument("--deemed-within", help="only open claims deemed accepted within this "
                          "ISO 8601 duration (e.g. P1D), soonest first")
    disputes.add_argument("--all", action="store_true", help="also list claims in effect")
    disputes.add_argument("--evaluated-at", help="RFC 3339 instant (default now)")
    disputes.add_argument("--format", choices=("table", "json"), default="table")
    client_flags(disputes)

    for name, verb in (("accept", "accept"), ("dispute", "dispute")):
        answer = sub.add_parser(name, help=f"{verb} a claim as your org (sla-semantics 11.3)")
        answer.add_argument("event_id", help="the event that made the claim")
        answer.add_argument("--agreement", default="", help="the claim's agreement (needed "
                            "only when the event id is used in several you can see)")
        if name == "dispute":
            answer.add_argument("--reason", required=True, help="why the claim is wrong")
        answer.add_argument("--at", help="when the answer was given (RFC 3339; default now)")
        answer.add_argument("--as-org", default="", help="admin only: answer on behalf of "
                            "this org")
        client_flags(answer)


def cmd_disputes(args: argparse.Namespace) -> int:
    from ledger.client.convert import claim_to_dict

    try:
        evaluated = parse_instant(args.evaluated_at) if args.evaluated_at else None
        within = parse_duration(args.deemed_within) if args.deemed_within else None
    except ValueError as exc:
        print(f"sla-ledger disputes: {exc}", file=sys.stderr)
        return 2
    with make_client(args) as client:
        claims = [claim_to_dict(c) for c in client.claims(
            agreement_id=args.agreement, period=args.period, awaiting=args.awaiting,
            evaluated_at=evaluated, deemed_within=within, include_in_effect=args.all)]
    if args.format == "json":
        print(json.dumps(claims, indent=2, ensure_ascii=False))
    else:
        print(claims_table(claims))
    return 0


def claims_table(claims: list[dict[str, Any]]) -> str:
    if not claims:
        return "no claims"
    rows = [[c["deemed_at"] or "-", c["state"], c["incident_id"],
             (c["type"] + " " + ", ".join(f"{k}={v}" for k, v in sorted(c["claim"].items()))).strip(),
             c["claimed_by"], ",".join(c["awaiting"]), c["event_id"]] for c in claims]
    return table(rows, ["deemed at", "state", "incident", "claim", "by", "awaiting", "event"],
                 cut_to_terminal=False)


def cmd_answer(args: argparse.Namespace) -> int:
    try:
        at = parse_instant(args.at) if args.at else time.time_ns() // 1000
    except ValueError as exc:
        print(f"sla-ledger {args.command}: {exc}", file=sys.stderr)
        return 2
    with make_client(args) as client:
        try:
            result = client.answer_claim(args.event_id, accept=args.command == "accept",
                                         occurred_at=at, reason=getattr(args, "reason", ""),
                                         actor=args.as_org, agreement_id=args.agreement)
        except LookupError as exc:
            print(f"sla-ledger {args.command}: {exc}", file=sys.stderr)
            return 1
    done = "accepted" if args.command == "accept" else "disputed"
    print(f"{done} {args.event_id} at {format_instant(at)} (ledger position {result.position})")
    return 0
