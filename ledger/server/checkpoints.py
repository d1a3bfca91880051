"""Wiring of the verifiable log for the composition root (ledger/server/bootstrap.py):
the checkpoint signing key and the periodic checkpoints.

Key: `--checkpoint-key PATH` (SLA_LEDGER_CHECKPOINT_KEY). A missing file is
generated (Ed25519, PEM, mode 0600) and its public key logged and printed.
Without a path, the embedded SQLite default keeps its key next to the
database (`ledger.db` -> `ledger.checkpoint-key.pem`); on PostgreSQL `serve`
requires a path, and `start_ledger` alone (tests, embedding) signs with an
ephemeral key and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ledger.adapters.eventstore import EventStore
from ledger.application.audit import AuditService
from ledger.audit.checkpoint import Signer, load_or_create_signer
from projections.runner import ProjectionRunner

log = logging.getLogger("ledger.audit")

DEFAULT_ORIGIN = "sla-ledger"
DEFAULT_INTERVAL = 60.0
DEFAULT_SCRUB_RATE = 2000


@dataclass(frozen=True, slots=True)
class AuditConfig:
    key_path: str | None = None  # None: next to a SQLite database, else ephemeral
    origin: str = DEFAULT_ORIGIN  # the log's identity: checkpoint origin and key name
    interval: float = DEFAULT_INTERVAL  # seconds between checkpoints while the log grows
    scrub_rate: int = DEFAULT_SCRUB_RATE  # events re-hashed per second in the background (0: off)


def default_key_path(store: EventStore) -> Path | None:
    """`<database stem>.checkpoint-key.pem` next to a SQLite file; None on PostgreSQL."""
    if store.is_postgres:
        return None
    db_name = str(getattr(store.recorder.datastore.pool, "db_name", ""))
    if not db_name or ":memory:" in db_name:
        return None
    path = Path(db_name)
    return path.with_name(f"{path.stem}.checkpoint-key.pem")


def checkpoint_signer(store: EventStore, config: AuditConfig) -> Signer:
    path = Path(config.key_path) if config.key_path else default_key_path(store)
    if path is None:
        signer = Signer.generate(config.origin)
        log.warning("no --checkpoint-key: checkpoints are signed with an ephemeral key %s "
                    "that is lost on restart", signer.verifier.vkey)
        return signer
    signer, generated = load_or_create_signer(path, config.origin)
    if generated:
        message = (f"generated the checkpoint signing key {os.fspath(path)}; "
                   f"public key (give it to partners and auditors):\n  {signer.verifier.vkey}")
        print(message, file=sys.stderr, flush=True)
        log.warning("generated checkpoint key %s, public key %s", path, signer.verifier.vkey)
    else:
        log.info("checkpoint key %s, public key %s", path, signer.verifier.vkey)
    return signer


async def checkpoint_periodically(audit: AuditService, interval: float,
                                  wanted: asyncio.Event | None = None,
                                  stopping: asyncio.Event | None = None) -> None:
    """Signs a checkpoint at least every `interval` seconds while the log
    grows, and at once when `wanted` is set (a follower asked the leader).
    Returns when `stopping` is set (with `wanted`, to wake it), after the round
    in progress: cancelling the task would not stop that round's worker thread,
    which would go on signing while the store closes under it."""
    micros = int(interval * 1_000_000)
    wanted = wanted or asyncio.Event()
    stopping = stopping or asyncio.Event()
    while not stopping.is_set():
        asked = wanted.is_set()
        wanted.clear()
        try:
            signed = await asyncio.to_thread(audit.checkpoint_if_due, 0 if asked else micros, asked)
            if signed is not None:
                log.info("signed checkpoint of %d events", signed.checkpoint.size)
        except Exception:  # the next round retries; proofs keep working
            log.exception("periodic checkpoint failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wanted.wait(), interval)


def final_checkpoint(runner: ProjectionRunner, audit: AuditService) -> None:
    """At shutdown: covers every stored event with a checkpoint, so a database
    export of a stopped ledger verifies completely."""
    try:
        runner.run_once()
        signed = audit.checkpoint_if_due(0)
    except Exception:
        log.exception("final checkpoint failed")
        return
    if signed is not None:
        log.info("signed a final checkpoint of %d events", signed.checkpoint.size)
