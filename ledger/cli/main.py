"""`sla-ledger`: run the ledger and talk to it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import grpc

from ledger.cli.common import (
    DEFAULT_DATABASE,
    DEFAULT_TARGET,
    EXIT_FAILED,
    EXIT_REJECTED,
    EXIT_USAGE,
    client_flags,
    from_environment,
    make_client,
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sla-ledger")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915  the CLI's whole argument table, one add_argument per statement
    parser = argparse.ArgumentParser(
        prog="sla-ledger",
        description="Event-sourced SLA accountability ledger for jointly delivered services.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gRPC server",
                           description="Run the ledger's gRPC server. Every flag has an "
                           "SLA_LEDGER_<FLAG> environment variable (e.g. SLA_LEDGER_DATABASE).")
    serve.add_argument("--listen", default=DEFAULT_TARGET,
                       help="host:port to listen on (default %(default)s)")
    serve.add_argument("--database", default=DEFAULT_DATABASE,
                       help="sqlite:///path.db or postgresql://user@host:port/db (default %(default)s)")
    serve.add_argument("--principals",
                       help="principals file (token hashes); without it: loopback only, callers are admin")
    serve.add_argument("--tls-cert", help="server certificate (PEM)")
    serve.add_argument("--tls-key", help="server private key (PEM)")
    serve.add_argument("--tls-client-ca",
                       help="CA for client certificates: enables mutual TLS")
    serve.add_argument("--metrics-listen", default="127.0.0.1:9464",
                       help="host:port of the Prometheus metrics listener (default %(default)s)")
    serve.add_argument("--checkpoint-key",
                       help="Ed25519 key file signing the log's checkpoints (generated if "
                       "missing); default next to a SQLite database, required on PostgreSQL")
    serve.add_argument("--checkpoint-origin", default="sla-ledger",
                       help="the log's name in its checkpoints and key (default %(default)s)")
    serve.add_argument("--scrub-rate", type=int, default=2000,
                       help="events re-hashed per second by the background integrity scrub "
                       "(0: off; default %(default)s)")
    serve.add_argument("--checkpoint-interval", type=float,
                       default=60.0,
                       help="sign a checkpoint at least every SECONDS while the log grows "
                       "(default %(default)s)")
    serve.add_argument("--http-listen",
                       help="host:port of the read-only web console (default: no console)")
    serve.add_argument("--demo", action="store_true",
                       help="load the worked Hertfordshire scenario once the server is up")
    from_environment(serve)

    load = sub.add_parser("load", help="append a scenario file through the API")
    load.add_argument("file", help="scenario file (JSON or YAML)")
    load.add_argument("--json", action="store_true", help="print the summary as JSON")
    load.add_argument("--dry-run", action="store_true",
                      help="check every event against the server (AppendEvents validate_only) "
                      "and store nothing")
    client_flags(load)

    incident = sub.add_parser("incident", help="show an incident (timeline, or SLA clocks as JSON)")
    incident.add_argument("incident_id")
    incident.add_argument("--agreement", help="the incident's agreement (ids are scoped by "
                          "agreement; needed only when you see the id in more than one)")
    incident.add_argument("--format", choices=("json", "timeline"), default="json")
    incident.add_argument("--evaluated-at", help="RFC 3339 instant (default now)")
    incident.add_argument("--as-recorded-at", help="knowledge cut: ledger position or RFC 3339 instant")
    client_flags(incident)

    agreement = sub.add_parser("agreement", help="show an agreement with its amendments")
    agreement.add_argument("agreement_id")
    client_flags(agreement)

    agreements = sub.add_parser("agreements", help="the agreements you may see")
    agreements.add_argument("--format", choices=("table", "json"), default="table")
    client_flags(agreements)

    incidents = sub.add_parser("incidents", help="an agreement's incidents, or its clocks at risk")
    incidents.add_argument("--agreement", default="", help="only this agreement's (default: all you may see)")
    incidents.add_argument("--status", choices=("open", "resolved", "closed", "voided"))
    incidents.add_argument("--at-risk", action="store_true",
                           help="running clocks ordered by due_at instead of incidents")
    incidents.add_argument("--evaluated-at", help="with --at-risk: RFC 3339 instant (default now)")
    incidents.add_argument("--format", choices=("table", "json"), default="table")
    client_flags(incidents)

    amend = sub.add_parser("amend", help="amend an agreement's terms from a given instant")
    amend.add_argument("--agreement", required=True)
    amend.add_argument("--effective-from", required=True, help="RFC 3339 instant")
    amend.add_argument("--terms", required=True,
                       help="JSON/YAML file with the terms that change (scenario amendment format)")
    amend.add_argument("--event-id", help="idempotency key (default: a new one)")
    client_flags(amend)

    events = sub.add_parser("events", help="the global log as JSON Lines")
    events.add_argument("--from", dest="after", type=int, default=0,
                        help="print events after this position (default 0)")
    events.add_argument("--follow", action="store_true", help="keep following new events")
    events.add_argument("--agreement", default="", help="only this agreement's events")
    client_flags(events)

    report = sub.add_parser("report", help="period report of an agreement")
    report.add_argument("--agreement", required=True)
    report.add_argument("--period", required=True, help="YYYY-MM in the agreement's time zone")
    report.add_argument("--evaluated-at", help="RFC 3339 instant (default now)")
    report.add_argument("--as-recorded-at", help="knowledge cut: ledger position or RFC 3339 instant")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    client_flags(report)

    statement = sub.add_parser("statement", help="the monthly statement as one self-contained HTML file")
    statement.add_argument("--agreement", required=True)
    statement.add_argument("--period", required=True, help="YYYY-MM in the agreement's time zone")
    statement.add_argument("--evaluated-at", help="RFC 3339 instant (default now)")
    statement.add_argument("--as-recorded-at", help="knowledge cut: ledger position or RFC 3339 instant")
    statement.add_argument("--out", required=True, help="the HTML file to write ('-': standard output)")
    client_flags(statement)

    restatement = sub.add_parser("restatement", help="what changed in a period report between two knowledge cuts")
    restatement.add_argument("--agreement", required=True)
    restatement.add_argument("--period", required=True)
    restatement.add_argument("--from", dest="from_cut", required=True, help="position or instant")
    restatement.add_argument("--to", dest="to_cut", help="position or instant (default: now)")
    restatement.add_argument("--evaluated-at")
    client_flags(restatement)

    from ledger.cli.audit import add_parsers
    from ledger.cli.claims import add_parsers as add_claims
    from ledger.cli.principals import add_parser as add_principal
    from ledger.cli.projections import add_parser as add_rebuild

    add_parsers(sub)
    add_claims(sub)
    add_rebuild(sub, DEFAULT_DATABASE)
    add_principal(sub)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from ledger.cli.serve import serve

    return asyncio.run(serve(args))


def cmd_load(args: argparse.Namespace) -> int:
    from ledger.adapters.scenario import read_scenario
    from ledger.cli.load import load_scenario, progress_bar
    from ledger.domain.errors import InvalidArgument

    try:
        scenario = read_scenario(args.file)
    except (OSError, InvalidArgument) as exc:
        print(f"sla-ledger load: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with make_client(args) as client:
        summary = load_scenario(client, scenario, progress_bar(), dry_run=args.dry_run)
    stored = "would store" if args.dry_run else "stored"
    if args.json:
        out: dict[str, Any] = {"dry_run": args.dry_run, "stored": summary.stored,
                               "duplicates": summary.duplicates, "rejected": summary.rejected}
        if args.dry_run:
            out["unchecked"] = summary.unchecked
        print(json.dumps(out, indent=2))
    else:
        print(f"{scenario.path}: {stored} {summary.stored}, duplicates {summary.duplicates}, "
              f"rejected {len(summary.rejected)}"
              + (f", unchecked {summary.unchecked} (their agreement is not stored yet)"
                 if summary.unchecked else "")
              + (" (dry run: nothing stored)" if args.dry_run else ""))
        for item in summary.rejected:
            where = f"line {item['line']}, " if item.get("line") else ""
            label = item.get("where") or f"events[{item['index']}]"
            print(f"  rejected {label} ({where}{item.get('type')} {item.get('event_id')}): {item['reason']}")
    # A rejection is not a usage error: scripts tell them apart by the code.
    return EXIT_REJECTED if summary.rejected else 0


def cmd_events(args: argparse.Namespace) -> int:
    from ledger.domain.codec import event_to_dict

    with make_client(args) as client:
        for _, event in client.read_log(args.after, follow=args.follow, agreement_id=args.agreement):
            print(json.dumps(event_to_dict(event), separators=(",", ":")), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    from ledger.cli.audit import cmd_export, cmd_replay, cmd_verify
    from ledger.cli.claims import cmd_answer, cmd_disputes
    from ledger.cli.listing import cmd_agreement, cmd_agreements, cmd_amend, cmd_incidents
    from ledger.cli.principals import cmd_principal
    from ledger.cli.projections import cmd_rebuild
    from ledger.cli.reports import cmd_incident, cmd_report, cmd_restatement, cmd_statement

    args = build_parser().parse_args(argv)
    handlers = {"serve": cmd_serve, "load": cmd_load, "incident": cmd_incident,
                "agreement": cmd_agreement, "events": cmd_events, "report": cmd_report,
                "restatement": cmd_restatement, "statement": cmd_statement, "export": cmd_export, "verify": cmd_verify,
                "replay": cmd_replay, "rebuild": cmd_rebuild, "agreements": cmd_agreements,
                "incidents": cmd_incidents, "amend": cmd_amend, "principal": cmd_principal,
                "disputes": cmd_disputes, "accept": cmd_answer, "dispute": cmd_answer}
    try:
        return handlers[args.command](args)
    except grpc.RpcError as exc:
        from ledger.client.errors import decode_error

        decoded = decode_error(exc)
        rule = f" [{decoded['rule']}]" if "rule" in decoded else ""
        print(f"sla-ledger {args.command}: {decoded['code']}{rule}: {decoded['message']}",
              file=sys.stderr)
        for violation in decoded["field_violations"]:
            print(f"  {violation['field']}: {violation['description']}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`sla-ledger events | head`): nothing more to
        # say. Point stdout at /dev/null so the interpreter's final flush
        # does not fail a second time and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
