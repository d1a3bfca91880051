"""The auditor's toolkit end to end, on SQLite and PostgreSQL: a real ledger
stores the worked scenario and signs a checkpoint; then the database is
edited behind its back with SQL, exported (`sla-ledger export --database`,
reading the tampered rows) and verified offline against the checkpoint
issued before the edit, which must name the first position that differs.
And the clean round trip: export, verify, replay reproduces the expected
report of the worked scenario."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.adapters.eventstore import EventStore, open_store
from ledger.adapters.scenario import read_scenario
from ledger.cli.load import load_scenario
from ledger.cli.main import main
from ledger.client import LedgerClient
from ledger.domain.instants import parse_instant
from ledger.domain.sla.report_json import period_report_dict
from ledger.server.checkpoints import AuditConfig
from projections.storage import ProjectionDatabase
from tests.support.ledger_server import running_ledger
from tests.support.scenarios import EXPECTED, SCENARIO, assert_same, without_position

T = parse_instant("2026-11-05T00:00:00Z")
STORED = 112  # the scenario's events plus the agreement's registration

pytestmark = pytest.mark.e2e


@dataclass
class Signed:
    url: str
    vkey: str
    note: Path  # the checkpoint issued before any edit
    target: str = ""


def serve_scenario(url: str, tmp_path: Path, audit: AuditConfig | None = None) -> Signed:
    audit = audit or AuditConfig(key_path=str(tmp_path / "log-key.pem"), origin="ledger.test/log")
    with running_ledger(url, lambda: T, audit=audit) as (_, target), \
            LedgerClient(target) as client:
        assert load_scenario(client, read_scenario(SCENARIO)).stored == STORED
        response = client.audit.checkpoint(refresh=True)
    assert response.tree_size == STORED
    note = tmp_path / "checkpoint-before.txt"
    note.write_text(response.checkpoint)
    return Signed(url, response.public_key, note)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


# -- tampering, with SQL on the ledger's own tables ----------------------------


def _row(store: EventStore, position: int) -> tuple[Any, int, bytes]:
    rows = store.query(f"SELECT l.originator_id, l.originator_version, e.state FROM "
                       f"{store.log_table} l JOIN {store.events_table} e ON "
                       "e.originator_id = l.originator_id AND "
                       "e.originator_version = l.originator_version WHERE l.position = ?",
                       (position,))
    originator, version, state = rows[0]
    return originator, int(version), bytes(state)


def _set_state(tx: Any, store: EventStore, originator: Any, version: int, state: bytes) -> None:
    tx.execute(f"UPDATE {store.events_table} SET state = ? WHERE originator_id = ? AND "
               "originator_version = ?", (state, originator, version))


def change_payload_byte(store: EventStore, tx: Any) -> int:
    """One byte of a payload value (a handoff's `to`) in the stored JSON."""
    for position in range(2, STORED + 1):
        originator, version, state = _row(store, position)
        at = state.find(b'"to":"')
        if at >= 0:
            i = at + len(b'"to":"')
            flipped = state[:i] + bytes([state[i] ^ 0x01]) + state[i + 1:]
            _set_state(tx, store, originator, version, flipped)
            return position
    raise AssertionError("no handoff in the scenario")


def change_occurred_at(store: EventStore, tx: Any) -> int:
    position = 30
    originator, version, state = _row(store, position)
    body = json.loads(state)
    old = body["occurred_at"]  # YYYY-MM-DDTHH:MM:SS...: one second later or earlier
    body["occurred_at"] = old[:17] + ("58" if old[17:19] == "59" else "59") + old[19:]
    _set_state(tx, store, originator, version, json.dumps(body, sort_keys=True,
                                                          separators=(",", ":")).encode())
    return position


def delete_row(store: EventStore, tx: Any) -> int:
    position = 40
    originator, version, _ = _row(store, position)
    tx.execute(f"DELETE FROM {store.events_table} WHERE originator_id = ? AND "
               "originator_version = ?", (originator, version))
    return position


def swap_positions(store: EventStore, tx: Any) -> int:
    log = store.log_table
    tx.execute(f"UPDATE {log} SET position = -1 WHERE position = 50")
    tx.execute(f"UPDATE {log} SET position = 50 WHERE position = 60")
    tx.execute(f"UPDATE {log} SET position = 60 WHERE position = -1")
    return 50


def append_row(store: EventStore, tx: Any) -> int:
    """A copy of an incident event with a new id, at the end of its stream and
    of the log, inserted the way the ledger would have stored it."""
    originator, _, state = _row(store, STORED)
    versions = store.query(f"SELECT MAX(originator_version) FROM {store.events_table} "
                           "WHERE originator_id = ?", (originator,))
    version = int(versions[0][0]) + 1
    body = json.loads(state)
    body["event_id"] = "forged-behind-the-ledger"
    topic, stream, agreement, recorded = store.query(
        f"SELECT e.topic, l.stream, l.agreement_id, l.recorded_at FROM {store.log_table} l "
        f"JOIN {store.events_table} e ON e.originator_id = l.originator_id AND "
        "e.originator_version = l.originator_version WHERE l.position = ?", (STORED,))[0]
    tx.execute(f"INSERT INTO {store.events_table} (originator_id, originator_version, topic, "
               "state) VALUES (?, ?, ?, ?)",
               (originator, version, topic, json.dumps(body, sort_keys=True,
                                                       separators=(",", ":")).encode()))
    tx.execute(f"INSERT INTO {store.log_table} (position, event_id, content_hash, originator_id, "
               "originator_version, recorded_at, stream, agreement_id) VALUES "
               "(?, ?, ?, ?, ?, ?, ?, ?)",
               (STORED + 1, body["event_id"], "0" * 64, originator, version, recorded, stream,
                agreement))
    return STORED + 1


TAMPERS: list[Callable[[EventStore, Any], int]] = [
    change_payload_byte, change_occurred_at, delete_row, swap_positions, append_row]


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda f: f.__name__)
def test_database_edits_are_located_by_verify(database_url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              tamper: Callable[[EventStore, Any], int]) -> None:
    signed = serve_scenario(database_url, tmp_path)
    store = open_store(database_url)
    try:
        with ProjectionDatabase.of_store(store).transaction() as tx:
            expected = tamper(store, tx)
    finally:
        store.close()
    bundle = tmp_path / "bundle"
    code, out = run(capsys, "export", "--to", str(bundle), "--database", database_url,
                    "--public-key", signed.vkey)
    assert code == 0, out
    code, out = run(capsys, "verify", str(bundle), "--key", signed.vkey, "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert report["signature_ok"]
    assert report["first_bad_position"] == expected, report["problems"]
    code, out = run(capsys, "verify", str(bundle), "--key", signed.vkey)
    assert code == 1 and f"first bad position: {expected}" in out
    code, out = run(capsys, "verify", str(bundle), "--key", signed.vkey,
                    "--trusted", str(signed.note))
    assert code == 1


def test_an_untouched_database_exports_a_bundle_that_verifies(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signed = serve_scenario(database_url, tmp_path)
    bundle = tmp_path / "bundle"
    assert run(capsys, "export", "--to", str(bundle), "--database", database_url,
               "--public-key", signed.vkey)[0] == 0
    code, out = run(capsys, "verify", str(bundle), "--key", signed.vkey,
                    "--trusted", str(signed.note))
    assert code == 0, out
    assert out.startswith(f"OK: {STORED} events verify")


# -- the round trip of the worked scenario --------------------------------------


def test_export_verify_replay_reproduces_the_worked_scenario(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads(EXPECTED.read_text())
    audit = AuditConfig(key_path=str(tmp_path / "log-key.pem"))
    full, partial = tmp_path / "full", tmp_path / "herts"
    with running_ledger(database_url, lambda: T, audit=audit) as (_, target), \
            LedgerClient(target) as client:
        summary = load_scenario(client, read_scenario(SCENARIO))
        served = period_report_dict(client.period_report("herts-converged", "2026-10", evaluated_at=T))
        cut = summary.position_after(82)
        served_81 = period_report_dict(client.period_report("herts-converged", "2026-10", evaluated_at=T,
                                         as_recorded_position=cut))
        assert run(capsys, "export", "--to", str(full), "--target", target)[0] == 0
        assert run(capsys, "export", "--to", str(partial), "--target", target,
                   "--agreement", "herts-converged")[0] == 0
        vkey = client.audit.checkpoint().public_key

    code, out = run(capsys, "verify", str(full), "--key", vkey)
    assert code == 0, out
    code, out = run(capsys, "verify", str(partial), "--key", vkey, "--partial")
    assert code == 0, out

    replay = ["replay", "--agreement", "herts-converged", "--period", "2026-10",
              "--evaluated-at", "2026-11-05T00:00:00Z", "--key", vkey, "--format", "json"]
    code, out = run(capsys, replay[0], str(full), *replay[1:])
    assert code == 0, out
    report = json.loads(out)
    assert report == served  # byte for byte what the server says
    assert_same(report, without_position(expected["reports"][0]))

    code, out = run(capsys, replay[0], str(full), *replay[1:], "--as-recorded-at", str(cut))
    assert code == 0, out
    assert json.loads(out) == served_81
    assert_same(json.loads(out), without_position(expected["reports"][1]))

    code, out = run(capsys, replay[0], str(partial), *replay[1:], "--partial")
    assert code == 0, out
    assert json.loads(out) == served

    code, table = run(capsys, "replay", str(full), "--agreement", "herts-converged",
                      "--period", "2026-10", "--evaluated-at", "2026-11-05T00:00:00Z")
    assert code == 0 and "p1-resolution" in table


def test_replay_refuses_a_bundle_that_does_not_verify(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    signed = serve_scenario(url, tmp_path, AuditConfig())  # the key next to the database
    assert (tmp_path / "ledger.checkpoint-key.pem").stat().st_mode & 0o777 == 0o600
    bundle = tmp_path / "bundle"
    assert run(capsys, "export", "--to", str(bundle), "--database", url)[0] == 0  # finds the key
    lines = (bundle / "events.jsonl").read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b'"actor":"', b'"actor":"x', 1)
    (bundle / "events.jsonl").write_bytes(b"\n".join(lines))
    code, out = run(capsys, "replay", str(bundle), "--agreement", "herts-converged",
                    "--period", "2026-10", "--key", signed.vkey)
    assert code == 1 and "first bad position: 6" in out and "does not verify" in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "verify", str(tmp_path))
    assert code == 2 and "is not a bundle" in out
    code, out = run(capsys, "verify")
    assert code == 2 and "--checkpoint" in out
    code, out = run(capsys, "export", "--to", str(tmp_path / "b"), "--database",
                    f"sqlite:///{tmp_path / 'missing.db'}")
    assert code == 2 and "no database" in out
    code, out = run(capsys, "verify", str(tmp_path), "--key", "not-a-key")
    assert code == 2
