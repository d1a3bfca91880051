"""`sla-ledger export`, `verify` and `replay`: the auditor's toolkit.

    export --to DIR [--agreement A] [--target HOST:PORT | --database URL]
    verify DIR [--key VKEY] [--trusted CHECKPOINT] [--partial]
    verify --target HOST:PORT --checkpoint OLD [--key VKEY]
    replay DIR --agreement A --period P [--evaluated-at T] [--as-recorded-at CUT]

`verify DIR` and `replay` need neither server nor database. Exit codes: 0
verified, 1 verification failed (or a fork was found), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.adapters.eventstore import EventStore, open_store
from ledger.audit.bundle import CHECKPOINT, EVENTS, verify_bundle, write_bundle
from ledger.audit.checkpoint import Checkpoint, CheckpointError, Verifier, load_signer
from ledger.audit.leaf import LeafError, event_from_leaf, leaf_bytes
from ledger.audit.merkle import ProofError
from ledger.audit.monitor import LogForkError
from ledger.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, client_flags, make_client
from ledger.domain.errors import InvalidArgument
from ledger.domain.events import LedgerEvent
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.report import PeriodReport
from ledger.server.checkpoints import DEFAULT_ORIGIN, default_key_path


class UsageError(Exception):
    pass


def read_key(text: str | None) -> Verifier | None:
    """A note verifier key given inline or as a file holding one."""
    if not text:
        return None
    path = Path(text)
    value = path.read_text("utf-8").strip() if path.is_file() else text.strip()
    try:
        return Verifier.from_vkey(value)
    except CheckpointError as exc:
        raise UsageError(f"--key/--public-key {text!r}: {exc}") from None


def _read_note(path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the checkpoint {path}: {exc}") from None


# -- export -----------------------------------------------------------------


def _leaf_events(leaves: Iterator[tuple[int, bytes]]) -> Iterator[LedgerEvent]:
    for position, data in leaves:
        event = event_from_leaf(data)
        if event.position != position or leaf_bytes(event) != data:
            raise LeafError(f"position {position}: the leaf does not round-trip")
        yield event


def export_from_server(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        response = client.audit.checkpoint(refresh=True)
        key = read_key(args.public_key) or Verifier.from_vkey(response.public_key)
        size = response.tree_size
        hashes = client.audit.leaf_hashes(size)
        events = _leaf_events(client.audit.leaves(size, args.agreement or ""))
        count = write_bundle(args.to, events, response.checkpoint, key, leaf_hashes=hashes)
    print(f"exported {count} events to {args.to}: checkpoint of {size} events, key {key.vkey}")
    return EXIT_OK


def _database_key(store: EventStore, given: str | None) -> Verifier:
    key = read_key(given)
    if key is not None:
        return key
    path = default_key_path(store)
    if path is not None and path.is_file():
        return load_signer(path, DEFAULT_ORIGIN).verifier
    raise UsageError("--public-key is required (the log's note verifier key, as "
                     "`sla-ledger serve` printed it)")


def _all_events(store: EventStore) -> Iterator[LedgerEvent]:
    after = 0
    while batch := store.read_log(after, 5000):
        yield from batch
        after = batch[-1].position


def export_from_database(args: argparse.Namespace) -> int:
    """Reads the database directly (never writes): every stored event, the
    leaf hashes the Merkle projection recorded and the newest checkpoint the
    key signed. Events after that checkpoint are exported too and verify
    reports them as not covered by it: not yet signed, or appended behind the
    ledger's back."""
    from projections.audit_tree import read_leaf_hashes, stored_checkpoints
    from projections.storage import ProjectionDatabase

    if args.database.startswith("sqlite:///") and \
            not Path(args.database[len("sqlite:///"):]).is_file():
        raise UsageError(f"no database at {args.database}")  # open_store would create one
    store = open_store(args.database)
    try:
        key = _database_key(store, args.public_key)
        db = ProjectionDatabase.of_store(store)
        try:
            with db.transaction(commit=False) as tx:
                notes = stored_checkpoints(tx)
                leaves = read_leaf_hashes(tx)
        except Exception as exc:
            raise UsageError(f"the database has no audit tables ({exc}): has a ledger "
                             "with the audit log served it?") from None
        checkpoint, note = _newest_signed(notes, key)
        size = checkpoint.size
        hashes = [h for _, h in leaves[:size]]
        if [p for p, _ in leaves[:size]] != list(range(1, size + 1)):
            raise UsageError(f"the Merkle table holds {len(hashes)} of the checkpoint's {size} "
                             "leaf hashes")
        if args.agreement:
            events: Any = (e for e in store.read_agreement(args.agreement, size))
        else:
            events = _all_events(store)
        count = write_bundle(args.to, events, note, key, leaf_hashes=hashes,
                             unsigned_tail=not args.agreement)
    finally:
        store.close()
    beyond = f" ({count - size} after it)" if count > size and not args.agreement else ""
    print(f"exported {count} events to {args.to}: checkpoint of {size} events{beyond}, "
          f"key {key.vkey}")
    return EXIT_OK


def _newest_signed(notes: list[str], key: Verifier) -> tuple[Checkpoint, str]:
    from ledger.audit.checkpoint import verify_checkpoint

    for note in notes:
        try:
            return verify_checkpoint(note, key), note
        except CheckpointError:
            continue
    raise UsageError(f"no checkpoint in the database is signed by {key.vkey}")


def cmd_export(args: argparse.Namespace) -> int:
    try:
        if Path(args.to, EVENTS).exists() or Path(args.to, CHECKPOINT).exists():
            raise UsageError(f"{args.to} already holds a bundle")
        if args.database:
            return export_from_database(args)
        return export_from_server(args)
    except (UsageError, OSError, ValueError) as exc:
        print(f"sla-ledger export: {exc}", file=sys.stderr)
        return EXIT_USAGE


# -- verify -----------------------------------------------------------------


_UNPINNED = ("no key pinned: a key taken from {source} proves only that {what} is "
             "self-consistent, not that the ledger signed it. Give --key with the ledger's "
             "published key, or --trust-bundle-key to accept {source}'s own key anyway")


def _pinned_or_refused(args: argparse.Namespace, source: str, what: str) -> None:
    if not args.key and not args.trust_bundle_key:
        raise UsageError(_UNPINNED.format(source=source, what=what))


def verify_directory(args: argparse.Namespace) -> int:
    if not Path(args.bundle, CHECKPOINT).is_file():
        raise UsageError(f"{args.bundle} is not a bundle (no {CHECKPOINT})")
    _pinned_or_refused(args, "the bundle", "the bundle")
    trusted = _read_note(args.trusted) if args.trusted else None
    report = verify_bundle(args.bundle, key=read_key(args.key), trusted=trusted,
                           partial=args.partial)
    if args.json:
        print(json.dumps({
            "ok": report.ok, "events": report.events, "key": report.key,
            "tree_size": report.checkpoint.size if report.checkpoint else None,
            "root_hash": report.checkpoint.root_hash.hex() if report.checkpoint else None,
            "signature_ok": report.signature_ok, "root_ok": report.root_ok,
            "trusted_ok": report.trusted_ok, "first_bad_position": report.first_bad_position,
            "problems": [{"position": p.position, "reason": p.reason} for p in report.problems],
            "notes": list(report.notes)}, indent=2))
    else:
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def verify_live(args: argparse.Namespace) -> int:
    """Checks that the ledger's log today extends a checkpoint kept earlier."""
    old = _read_note(args.checkpoint)
    _pinned_or_refused(args, "the server", "its log")
    with make_client(args) as client:
        key = read_key(args.key)
        if key is None:
            # a note verifies only under the key that signed it, so the
            # server cannot substitute another key for the old checkpoint's
            key = Verifier.from_vkey(client.audit.checkpoint().public_key)
        try:
            audit = client.audit.trusting(key, old)
        except CheckpointError as exc:
            print(f"FAILED: the old checkpoint does not verify with {key.vkey}: {exc}")
            return EXIT_FAILED
        before = audit.monitor.trusted if audit.monitor else None
        try:
            now = audit.update(refresh=args.refresh)
        except LogForkError as exc:
            print(f"FAILED: {exc}\n--- trusted checkpoint ---\n{exc.trusted_note}"
                  f"--- offered checkpoint ---\n{exc.offered_note}", end="")
            return EXIT_FAILED
        except (CheckpointError, ProofError) as exc:
            print(f"FAILED: the ledger's answer does not verify: {exc}")
            return EXIT_FAILED
        assert before is not None
        try:
            served = recompute_leaves(client.audit, now, before)
        except (ProofError, LeafError, InvalidArgument) as exc:
            print(f"FAILED: the events the ledger serves do not match its signed log: {exc}")
            return EXIT_FAILED
    print(f"OK: the log of {now.size} events (root {now.root_hash.hex()}) extends the "
          f"checkpoint of {before.size} events (key {key.vkey}); {served} events fetched "
          "and re-hashed into both roots")
    if args.save:
        Path(args.save).write_text(audit.trusted_note or "", "utf-8")
    return EXIT_OK


def recompute_leaves(audit: Any, now: Checkpoint, old: Checkpoint) -> int:
    """Fetches the events the caller may see and re-hashes them: each must hash
    to its leaf, and the leaves must give both signed roots. Checking stored
    leaf hashes alone would pass while the events served had been edited."""
    from ledger.audit.merkle import leaf_hash, root_from_leaf_hashes

    hashes = audit.leaf_hashes(now.size)
    if len(hashes) != now.size:
        raise ProofError(f"{len(hashes)} leaf hashes for a tree of {now.size}")
    seen = 0
    for position, data in audit.leaves(now.size):
        event = event_from_leaf(data)
        if event.position != position or leaf_bytes(event) != data:
            raise LeafError(f"position {position}: the event does not round-trip to its leaf")
        if not 1 <= position <= now.size or leaf_hash(data) != hashes[position - 1]:
            raise ProofError(f"position {position}: the event served does not hash to its leaf")
        seen += 1
    for checkpoint in (now, old):
        if checkpoint.size and root_from_leaf_hashes(hashes[:checkpoint.size]) != checkpoint.root_hash:
            raise ProofError(f"the leaves do not give the root of the checkpoint of "
                             f"{checkpoint.size} events")
    return seen


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        if args.bundle:
            return verify_directory(args)
        if args.checkpoint:
            return verify_live(args)
        if args.database:
            from ledger.cli.scrub import verify_database

            return verify_database(args, lambda store: _database_key(store, args.key))
        raise UsageError("give a bundle directory, --checkpoint OLD to check a live "
                         "ledger (--target), or --database URL for a full scrub")
    except UsageError as exc:
        print(f"sla-ledger verify: {exc}", file=sys.stderr)
        return EXIT_USAGE


# -- replay -----------------------------------------------------------------


def read_bundle_events(directory: str) -> list[LedgerEvent]:
    events = []
    with Path(directory, EVENTS).open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                events.append(event_from_leaf(line.rstrip(b"\n")))
            except (LeafError, InvalidArgument) as exc:
                raise UsageError(f"{EVENTS} line {number}: {exc}") from None
    return events


def replay_report(events: list[LedgerEvent], log_size: int, agreement_id: str, period: str,
                  evaluated_at: int, cut: str | None) -> PeriodReport:
    """The period report computed from the bundle's events, as the server
    computes it (ledger.application.reports) for the same question."""
    from ledger.domain.history import history_from_events
    from ledger.domain.sla.api import compute_period_report

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise UsageError(f"--period must be YYYY-MM, got {period!r}")
    as_recorded: int | str | None = None
    upto = log_size
    if cut and re.fullmatch(r"\d+", cut):
        upto = as_recorded = int(cut)
        if upto > log_size:
            raise UsageError(f"knowledge cut {upto} is beyond the end of the bundle ({log_size})")
    elif cut:
        instant = parse_instant(cut)
        upto = max((e.position for e in events if e.recorded_at <= instant), default=0)
        as_recorded = format_instant(instant)
    mine = [e for e in events if e.agreement_id == agreement_id and e.position <= upto]
    history = history_from_events(agreement_id, [e for e in mine if not e.incident_id])
    if history is None:
        raise UsageError(f"the bundle has no agreement {agreement_id!r} (as recorded at {upto})")
    incidents: dict[str, list[LedgerEvent]] = {}
    for event in mine:
        if event.incident_id:
            incidents.setdefault(event.incident_id, []).append(event)
    return compute_period_report(history, incidents, period, evaluated_at, upto, as_recorded)


def cmd_replay(args: argparse.Namespace) -> int:
    from ledger.cli.reports import print_report

    try:
        if not args.no_verify:
            report = verify_bundle(args.bundle, key=read_key(args.key), partial=args.partial)
            if not report.ok:
                print(report.summary(), file=sys.stderr)
                print("sla-ledger replay: the bundle does not verify (--no-verify to replay "
                      "it anyway)", file=sys.stderr)
                return EXIT_FAILED
        events = read_bundle_events(args.bundle)
        checkpoint = Checkpoint.from_text(
            _read_note(str(Path(args.bundle, CHECKPOINT))).split("\n\n", 1)[0] + "\n")
        size = max(checkpoint.size, events[-1].position if events else 0)
        evaluated = parse_instant(args.evaluated_at) if args.evaluated_at else \
            time.time_ns() // 1000
        result = replay_report(events, size, args.agreement, args.period, evaluated,
                               args.as_recorded_at)
    except (UsageError, OSError, ValueError) as exc:
        print(f"sla-ledger replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print_report(result, args.format)
    return EXIT_OK


# -- arguments --------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    export = sub.add_parser("export", help="write an export bundle (events, checkpoint, key)",
                            description="Write an export bundle: events as JSON Lines (their "
                            "leaf encoding), the signed checkpoint, the public key and the "
                            "ledger's leaf hashes. From a server (--target) or read-only from "
                            "the database (--database).")
    export.add_argument("--to", required=True, help="directory to write (must not hold a bundle)")
    export.add_argument("--agreement", help="only this agreement's events (a partial bundle)")
    export.add_argument("--database", help="read this database directly instead of a server")
    export.add_argument("--public-key", help="the log's verifier key (or a file with it)")
    client_flags(export)

    verify = sub.add_parser("verify", help="verify a bundle offline, or a live ledger "
                            "against an earlier checkpoint")
    verify.add_argument("bundle", nargs="?", help="bundle directory (offline: no server)")
    verify.add_argument("--key", help="pin the log's verifier key (or a file with it)")
    verify.add_argument("--trust-bundle-key", action="store_true",
                        help="without --key, accept the key the bundle (or the server) "
                        "presents: proves consistency only, not who signed")
    verify.add_argument("--trusted", help="a checkpoint from an earlier audit the bundle "
                        "must extend")
    verify.add_argument("--partial", action="store_true",
                        help="the bundle holds a subset of the positions (--agreement export)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--checkpoint", help="live: a checkpoint kept from an earlier audit")
    verify.add_argument("--refresh", action="store_true",
                        help="live: ask the ledger to sign a checkpoint of its log as it is now")
    verify.add_argument("--save", help="live: write the newly trusted checkpoint here")
    verify.add_argument("--database", help="full scrub of this database, read-only: events "
                        "against leaves, stored subtrees and signed checkpoints against them")
    client_flags(verify)

    replay = sub.add_parser("replay", help="recompute a period report from a bundle alone")
    replay.add_argument("bundle", help="bundle directory")
    replay.add_argument("--agreement", required=True)
    replay.add_argument("--period", required=True, help="YYYY-MM in the agreement's time zone")
    replay.add_argument("--evaluated-at", help="RFC 3339 instant (default now)")
    replay.add_argument("--as-recorded-at", help="knowledge cut: ledger position or RFC 3339 instant")
    replay.add_argument("--format", choices=("table", "json", "csv"), default="table")
    replay.add_argument("--key", help="pin the log's verifier key (or a file with it)")
    replay.add_argument("--partial", action="store_true", help="the bundle is partial")
    replay.add_argument("--no-verify", action="store_true", help="replay without verifying")
