"""Leaf encoding and export bundles: round trip, and every tamper case
detected with the first bad position named."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import ledger.demo
from ledger.audit.bundle import (
    CHECKPOINT,
    EVENTS,
    LEAF_HASHES,
    PUBLIC_KEY,
    VerifyReport,
    verify_bundle,
    write_bundle,
)
from ledger.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from ledger.audit.leaf import (
    LeafError,
    event_from_leaf,
    event_leaf_hash,
    leaf_bytes,
    parse_leaf,
    rfc8785_bytes,
)
from ledger.audit.merkle import root_from_leaf_hashes
from ledger.domain import events as ev
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import parse_instant

ORIGIN = "sla-ledger.example/log"
T0 = parse_instant("2026-11-01T09:00:00Z")


@cache
def log() -> tuple[ev.LedgerEvent, ...]:
    """The worked scenario as a stored log: its agreement, then its events."""
    raw = json.loads((Path(ledger.demo.__file__).parent / "herts-2026-10.json").read_text())
    agreement = raw["agreements"][0]
    items = [{"event_id": "reg-herts", "type": "agreement_registered",
              "occurred_at": agreement["effective_from"], "actor": agreement["customer"],
              "agreement": agreement["id"], "effective_from": agreement["effective_from"],
              "terms": agreement}, *raw["events"]]
    out = []
    for position, item in enumerate(items, 1):
        event = event_from_dict(item)
        out.append(dataclasses.replace(event, position=position,
                                       recorded_at=event.occurred_at + 1_500_000 + position,
                                       submitted_by=f"gw-{event.actor or 'ops'}"))
    return tuple(out)


SIGNER = Signer.generate(ORIGIN)


def checkpoint_of(events: tuple[ev.LedgerEvent, ...] | list[ev.LedgerEvent],
                  signer: Signer = SIGNER) -> str:
    root = root_from_leaf_hashes([event_leaf_hash(e) for e in events])
    return sign_checkpoint(Checkpoint(ORIGIN, len(events), root, timestamp=T0), signer)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    write_bundle(tmp_path / "b", log(), checkpoint_of(log()), SIGNER.verifier)
    return tmp_path / "b"


def lines(bundle: Path) -> list[bytes]:
    return (bundle / EVENTS).read_bytes().split(b"\n")[:-1]


def rewrite(bundle: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    (bundle / EVENTS).write_bytes(b"".join(line + b"\n" for line in change(lines(bundle))))


def edit(line: bytes, **fields: object) -> bytes:
    value = json.loads(line)
    value.update(fields)
    return rfc8785_bytes(value)


def verify(bundle: Path, **kwargs: Any) -> VerifyReport:
    return verify_bundle(bundle, key=SIGNER.verifier.vkey, **kwargs)


# -- the leaf encoding ----------------------------------------------------------


def test_leaf_encoding_golden_vector() -> None:
    event = ev.LedgerEvent(event_id="e-1", agreement_id="herts-converged", incident_id="INC-1",
                           occurred_at=parse_instant("2026-10-05T08:30:00+01:00"), actor="bt",
                           payload=ev.ClockPaused(reason="awaiting caf\u00e9 \"key\"\n"),
                           position=42, recorded_at=parse_instant("2026-10-05T07:30:01.25Z"),
                           submitted_by="bt-gateway")
    want = ('{"actor":"bt","agreement":"herts-converged","event_id":"e-1",'
            '"incident_id":"INC-1","occurred_at":"2026-10-05T07:30:00Z","position":42,'
            '"reason":"awaiting caf\u00e9 \\"key\\"\\n","recorded_at":"2026-10-05T07:30:01.250000Z",'
            '"submitted_by":"bt-gateway","type":"clock_paused"}').encode()
    assert leaf_bytes(event) == want
    assert event_leaf_hash(event) == hashlib.sha256(b"\x00" + want).digest()
    assert event_from_leaf(want) == event
    # the docs/audit.md example (cross-checked with coreutils sha256sum)
    assert event_leaf_hash(event).hex() == (
        "88f76d8081b89114b66944adaae2fbc6dd40708cb40683f7558f629ba7afa19a")


def test_every_event_of_the_scenario_round_trips_through_its_leaf() -> None:
    for event in log():
        data = leaf_bytes(event)
        assert b"\n" not in data and parse_leaf(data)["position"] == event.position
        assert event_from_leaf(data) == event


def test_canonical_json_is_rfc_8785_for_the_values_it_accepts() -> None:
    assert rfc8785_bytes({"b": [1, True, None], "a": "\u20ac\x7f\u2028\x01\t"}) == (
        '{"a":"\u20ac\x7f\u2028\\u0001\\t","b":[1,true,null]}'.encode())
    # keys sort by UTF-16 code units: U+1F600 (D83D DE00) before U+E000
    assert rfc8785_bytes({"\ue000": 1, "\U0001f600": 2, "z": 0}) == (
        '{"z":0,"\U0001f600":2,"\ue000":1}'.encode())
    assert rfc8785_bytes(-(2**53 - 1)) == b"-9007199254740991"
    for bad in (1.5, 2**53, {1: "x"}, "\ud800", float("nan"), b"bytes"):
        with pytest.raises(LeafError):
            rfc8785_bytes(bad)


@pytest.mark.parametrize("data", [
    b'{"a":1, "b":2}', b'{"b":1,"a":2}', b'{"a":1,"a":1}', b'{"a":1.0}', b'["x"]',
    b'{"a":"\\u00e9"}', b'{"a":1}\n', b"\xff",
])
def test_non_canonical_leaves_are_refused(data: bytes) -> None:
    with pytest.raises(LeafError):
        parse_leaf(data)


def test_unstored_events_have_no_leaf() -> None:
    with pytest.raises(LeafError, match="not stored"):
        leaf_bytes(dataclasses.replace(log()[1], position=0))


# -- round trip -------------------------------------------------------------------


def test_bundle_round_trip(bundle: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        [EVENTS, CHECKPOINT, PUBLIC_KEY, LEAF_HASHES])
    assert (bundle / PUBLIC_KEY).read_text() == SIGNER.verifier.vkey + "\n"
    assert len((bundle / LEAF_HASHES).read_bytes()) == 32 * len(log())
    report = verify(bundle)
    assert report.ok and report.complete and report.signature_ok and report.root_ok, \
        report.summary()
    assert report.events == len(log()) and report.first_bad_position is None
    assert report.checkpoint is not None and report.checkpoint.timestamp == T0
    assert report.summary().startswith("OK: 115 events")
    assert [event_from_leaf(line) for line in lines(bundle)] == list(log())
    unpinned = verify_bundle(bundle)
    assert unpinned.ok and "pin" in unpinned.notes[0]


# -- tamper cases -------------------------------------------------------------


PAYLOAD_AT = next(e.position for e in log() if e.type == "handed_off" and e.position > 30)


def change_payload_byte(ls: list[bytes]) -> list[bytes]:
    line = ls[PAYLOAD_AT - 1]
    at = line.index(b'"to":"') + 6  # the first byte of the new custodian
    ls[PAYLOAD_AT - 1] = line[:at] + bytes([line[at] ^ 0x01]) + line[at + 1:]
    return ls


def change_occurred_at(ls: list[bytes]) -> list[bytes]:
    ls[57 - 1] = edit(ls[57 - 1], occurred_at="2026-10-14T09:00:00Z")
    return ls


def delete_line(ls: list[bytes]) -> list[bytes]:
    del ls[30 - 1]
    return ls


def swap_lines(ls: list[bytes]) -> list[bytes]:
    ls[20 - 1], ls[70 - 1] = ls[70 - 1], ls[20 - 1]
    return ls


def swap_positions(ls: list[bytes]) -> list[bytes]:
    ls[20 - 1], ls[70 - 1] = edit(ls[20 - 1], position=70), edit(ls[70 - 1], position=20)
    return ls


def append_line(ls: list[bytes]) -> list[bytes]:
    return [*ls, edit(ls[-1], position=len(ls) + 1, event_id="sneaked-in")]


def duplicate_line(ls: list[bytes]) -> list[bytes]:
    return [*ls[:50], ls[49], *ls[50:-1]]  # same count: the last event drops off


TAMPERS = [(change_payload_byte, PAYLOAD_AT), (change_occurred_at, 57), (delete_line, 30),
           (swap_lines, 20), (swap_positions, 20), (append_line, 116),
           (duplicate_line, 51)]


@pytest.mark.parametrize(("tamper", "first_bad"), TAMPERS, ids=lambda x: getattr(x, "__name__", x))
def test_each_tamper_is_detected_naming_the_first_bad_position(
        bundle: Path, tamper: Callable[[list[bytes]], list[bytes]], first_bad: int) -> None:
    rewrite(bundle, tamper)
    report = verify(bundle)
    assert not report.ok
    assert report.signature_ok  # the checkpoint itself is intact
    assert report.first_bad_position == first_bad, report.summary()
    assert report.problems[0].position == first_bad
    assert f"first bad position: {first_bad}" in report.summary()


@pytest.mark.parametrize(("tamper", "first_bad"), TAMPERS, ids=lambda x: getattr(x, "__name__", x))
def test_without_leaf_hashes_tampering_is_still_detected(
        bundle: Path, tamper: Callable[[list[bytes]], list[bytes]], first_bad: int) -> None:
    (bundle / LEAF_HASHES).unlink()
    rewrite(bundle, tamper)
    report = verify(bundle)
    assert not report.ok
    # structural changes are still located; a changed line in place is not
    if tamper in (change_payload_byte, change_occurred_at):
        assert report.first_bad_position is None
        assert "locate" in report.summary()
    else:
        assert report.first_bad_position == first_bad


def test_damaged_leaf_hashes_do_not_mislocate(bundle: Path) -> None:
    hashes = bytearray((bundle / LEAF_HASHES).read_bytes())
    hashes[5 * 32] ^= 1  # an attacker "fixes" position 3 and damages position 6
    (bundle / LEAF_HASHES).write_bytes(bytes(hashes))
    assert verify(bundle).ok  # the events match the signed root: the file is not needed
    rewrite(bundle, change_payload_byte)
    report = verify(bundle)
    assert not report.ok and report.first_bad_position is None


def test_a_changed_checkpoint_fails_its_signature(bundle: Path) -> None:
    note = (bundle / CHECKPOINT).read_text()
    (bundle / CHECKPOINT).write_text(note.replace("\n115\n", "\n114\n"))
    report = verify(bundle)
    assert not report.ok and not report.signature_ok and report.checkpoint is None
    assert "bad signature" in report.summary()


def test_a_re_signed_forgery_needs_the_pinned_key_or_an_earlier_checkpoint(
        tmp_path: Path) -> None:
    honest = checkpoint_of(log()[:100])
    forged_log = list(log())
    forged_log[9] = dataclasses.replace(forged_log[9], actor="hp")
    forger = Signer.generate(ORIGIN)
    write_bundle(tmp_path / "f", forged_log, checkpoint_of(forged_log, forger), forger.verifier)
    assert verify_bundle(tmp_path / "f").ok  # self-consistent, but whose key?
    pinned = verify(tmp_path / "f")
    assert not pinned.ok and not pinned.signature_ok
    kept = verify_bundle(tmp_path / "f", trusted=honest)
    assert not kept.ok and kept.trusted_ok is False


def test_an_earlier_checkpoint_is_extended_or_the_rewrite_is_reported(tmp_path: Path) -> None:
    earlier = checkpoint_of(log()[:100])
    write_bundle(tmp_path / "a", log(), checkpoint_of(log()), SIGNER.verifier)
    report = verify(tmp_path / "a", trusted=earlier)
    assert report.ok and report.trusted_ok
    # the operator rewrites position 10 and re-signs with the real key
    rewritten = list(log())
    rewritten[9] = dataclasses.replace(rewritten[9], actor="hp")
    write_bundle(tmp_path / "r", rewritten, checkpoint_of(rewritten), SIGNER.verifier)
    assert verify(tmp_path / "r").ok  # alone it looks fine
    report = verify(tmp_path / "r", trusted=earlier)
    assert not report.ok and report.trusted_ok is False
    assert "rewritten" in report.summary()
    # a log shorter than what was once signed
    write_bundle(tmp_path / "s", log()[:90], checkpoint_of(log()[:90]), SIGNER.verifier)
    report = verify(tmp_path / "s", trusted=earlier)
    assert not report.ok and "shrank" in report.summary()
    empty = checkpoint_of([])
    write_bundle(tmp_path / "e", [], empty, SIGNER.verifier)
    assert verify(tmp_path / "e").ok


def test_partial_bundle_of_one_incident(tmp_path: Path) -> None:
    hashes = [event_leaf_hash(e) for e in log()]
    subset = [e for e in log() if e.incident_id == "INC-1012"]
    assert 3 <= len(subset) < len(log())
    write_bundle(tmp_path / "p", subset, checkpoint_of(log()), SIGNER.verifier,
                 leaf_hashes=hashes)
    report = verify(tmp_path / "p", partial=True)
    assert report.ok and not report.complete and report.events == len(subset)
    assert subset[0].position > 1
    full = verify(tmp_path / "p")  # as a full bundle: position 1 is missing
    assert not full.ok and full.first_bad_position == 1
    second = subset[1].position
    rewrite(tmp_path / "p", lambda ls: [ls[0], edit(ls[1], actor="bt"), *ls[2:]])
    report = verify(tmp_path / "p", partial=True)
    assert not report.ok and report.first_bad_position == second


def test_write_bundle_refuses_inconsistent_input(tmp_path: Path) -> None:
    other = Signer.generate(ORIGIN)
    with pytest.raises(ValueError, match="not signed by"):
        write_bundle(tmp_path / "x", log(), checkpoint_of(log()), other.verifier)
    with pytest.raises(ValueError, match="leaf hashes"):
        write_bundle(tmp_path / "y", log()[1:], checkpoint_of(log()), SIGNER.verifier)
    assert not list((tmp_path / "y").iterdir())  # nothing half-written left behind
    with pytest.raises(ValueError, match="position"):
        write_bundle(tmp_path / "z", log()[::-1], checkpoint_of(log()), SIGNER.verifier)
    write_bundle(tmp_path / "w", log(), checkpoint_of(log()), SIGNER.verifier)
    with pytest.raises(FileExistsError):
        write_bundle(tmp_path / "w", log(), checkpoint_of(log()), SIGNER.verifier)


def test_line_framing(bundle: Path) -> None:
    data = (bundle / EVENTS).read_bytes()
    (bundle / EVENTS).write_bytes(data[:-1])  # no final newline: the same events
    assert verify(bundle).ok
    rewrite(bundle, lambda ls: [*ls[:9], b"", *ls[9:-1]])
    report = verify(bundle)
    assert report.first_bad_position == 10 and "not a stored event" in report.summary()
    (bundle / EVENTS).write_bytes(data.replace(b"\n", b"\r\n"))
    assert verify(bundle).first_bad_position == 1
