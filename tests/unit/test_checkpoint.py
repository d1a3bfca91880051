"""Signed checkpoints: the signed-note format (checked against the Go
sumdb/note reference vector), checkpoint bodies, tampering, key files."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from ledger.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    KeyFileError,
    Signer,
    Verifier,
    key_id,
    load_or_create_signer,
    load_signer,
    parse_checkpoint,
    parse_note,
    save_signer,
    sign_checkpoint,
    sign_note,
    signer_from_bytes,
    verify_checkpoint,
    verify_note,
)

# golang.org/x/mod/sumdb/note: the example key pair and signed note.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = (GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIu"
           "GUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
ORIGIN = "sla-ledger.example/log"
ROOT = hashlib.sha256(b"root").digest()
T0 = 1_790_000_000_123_456


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def test_signed_notes_match_the_go_reference_byte_for_byte() -> None:
    signer = signer_from_bytes(GO_SKEY.encode(), None)
    assert signer.name == "PeterNeumann" and signer.skey() == GO_SKEY
    assert signer.verifier.vkey == GO_VKEY and f"{signer.key_id:08x}" == "c74f20a3"
    assert sign_note(GO_TEXT, signer) == GO_NOTE  # Ed25519 is deterministic
    assert verify_note(GO_NOTE, Verifier.from_vkey(GO_VKEY)) == GO_TEXT
    with pytest.raises(CheckpointError, match="bad signature"):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), Verifier.from_vkey(GO_VKEY))


def test_key_id_is_the_truncated_hash_of_name_type_and_key() -> None:
    verifier = Verifier.from_vkey(GO_VKEY)
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + verifier.public_key).digest()
    assert key_id("PeterNeumann", verifier.public_key) == int.from_bytes(digest[:4], "big")
    # the base64 of a key may contain '+'
    assert Verifier.from_vkey("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")


@pytest.mark.parametrize("vkey", [
    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
    "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # type 2
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # truncated
    "PeterNeumann+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
])
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        Verifier.from_vkey(vkey)


def test_checkpoint_round_trip(signer: Signer) -> None:
    cp = Checkpoint(ORIGIN, 1234, ROOT, timestamp=T0)
    note = sign_checkpoint(cp, signer)
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "1234", base64.b64encode(ROOT).decode(),
                         "timestamp 2026-09-21T14:13:20.123456Z"]
    assert lines[4] == "" and lines[5].startswith(f"\u2014 {ORIGIN} ") and lines[6:] == [""]
    raw = base64.b64decode(lines[5].split(" ")[2])
    assert int.from_bytes(raw[:4], "big") == signer.key_id and len(raw) == 68
    assert verify_checkpoint(note, signer.verifier, origin=ORIGIN) == cp
    assert parse_checkpoint(note)[0] == cp
    plain = Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest())
    assert verify_checkpoint(sign_checkpoint(plain, signer), signer.verifier) == plain
    assert plain.text().count("\n") == 3


@pytest.mark.parametrize(("old", "new"), [
    ("\n1234\n", "\n1235\n"),  # size
    (ORIGIN + "\n", "sla-ledger.example/other\n"),  # origin
    ("timestamp 2026-09-21T14:13:20.123456Z", "timestamp 2026-09-21T14:13:21.123456Z"),
    ("timestamp 2026-09-21T14:13:20.123456Z\n", ""),  # extension dropped
])
def test_any_change_to_a_signed_checkpoint_fails(signer: Signer, old: str, new: str) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 1234, ROOT, timestamp=T0), signer)
    assert old in note
    with pytest.raises(CheckpointError):
        verify_checkpoint(note.replace(old, new, 1), signer.verifier)


def test_a_changed_root_or_signature_fails(signer: Signer) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 1234, ROOT), signer)
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(CheckpointError, match="bad signature"):
        verify_checkpoint(note.replace(base64.b64encode(ROOT).decode(), other), signer.verifier)
    head, sig = note.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1
    with pytest.raises(CheckpointError, match="bad signature"):
        verify_checkpoint(f"{head} {base64.b64encode(raw).decode()}\n", signer.verifier)


def test_signatures_of_other_keys_are_ignored_but_one_known_is_needed(signer: Signer) -> None:
    witness = Signer.generate("witness.example/w1")
    cp = Checkpoint(ORIGIN, 5, ROOT)
    note = sign_checkpoint(cp, signer, witness)
    assert len(parse_note(note).signatures) == 2
    assert verify_checkpoint(note, signer.verifier) == cp
    assert verify_checkpoint(note, witness.verifier) == cp
    with pytest.raises(CheckpointError, match="not signed by"):
        verify_checkpoint(sign_checkpoint(cp, witness), signer.verifier)
    # same name, other key (an impostor): ignored, so not signed by the known key
    impostor = Signer.generate(ORIGIN)
    with pytest.raises(CheckpointError, match="not signed by"):
        verify_checkpoint(sign_checkpoint(cp, impostor), signer.verifier)


@pytest.mark.parametrize("body", [
    f"{ORIGIN}\n01\n{base64.b64encode(ROOT).decode()}\n",  # leading zero
    f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\n",
    f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",  # short root
    f"{ORIGIN}\n1\n{base64.b64encode(ROOT).decode().rstrip('=')}\n",  # unpadded
    f"{ORIGIN}\n1\n",
    f"{ORIGIN}\n1\n{base64.b64encode(ROOT).decode()}\ntimestamp yesterday\n",
])
def test_malformed_checkpoints_are_refused(signer: Signer, body: str) -> None:
    with pytest.raises(CheckpointError):
        verify_checkpoint(sign_note(body, signer), signer.verifier)


@pytest.mark.parametrize("note", [
    GO_TEXT + "\u2014 PeterNeumann x08go/ZJkuBS9UG\n",  # no blank line
    GO_TEXT + "\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ=\n",
    GO_TEXT + "\n\u2014 PeterNeumann not*base64\n",
    GO_TEXT + "\n\u2014 PeterNeumann AAAA\n",  # shorter than a key id
    GO_NOTE.rstrip("\n"),
    GO_NOTE.replace("problem,", "problem,\r"),
])
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(CheckpointError):
        verify_note(note, Verifier.from_vkey(GO_VKEY))


def test_extension_lines_round_trip_and_are_signed(signer: Signer) -> None:
    cp = Checkpoint(ORIGIN, 9, ROOT, timestamp=0, extensions=("x-build abc",))
    note = sign_checkpoint(cp, signer)
    assert verify_checkpoint(note, signer.verifier) == cp
    with pytest.raises(CheckpointError):
        verify_checkpoint(note.replace("x-build abc", "x-build abd"), signer.verifier)
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, 9, ROOT, extensions=("",))


# -- key files ------------------------------------------------------------------


def test_first_start_generates_a_0600_pem_key_then_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    first, created = load_or_create_signer(path, ORIGIN)
    assert created and path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["ledger.key"]  # no temporary file left
    again, created = load_or_create_signer(path, ORIGIN)
    assert not created and again.verifier == first.verifier
    with pytest.raises(FileExistsError):
        save_signer(first, path)


@pytest.mark.parametrize("form", ["pem", "raw", "note"])
def test_key_file_forms_round_trip(tmp_path: Path, signer: Signer, form: str) -> None:
    path = tmp_path / f"key.{form}"
    save_signer(signer, path, form=form)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = load_signer(path, ORIGIN)
    assert loaded.verifier == signer.verifier
    message = b"checkpoint"
    assert signer.verifier.verify(message, loaded.sign(message))
    assert "PRIVATE" not in repr(loaded) and signer.seed().hex() not in repr(loaded)


def test_bad_key_files_are_refused(tmp_path: Path, signer: Signer) -> None:
    ec = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        signer_from_bytes(ec, ORIGIN)
    with pytest.raises(KeyFileError):
        signer_from_bytes(b"short", ORIGIN)
    with pytest.raises(KeyFileError, match="name is required"):
        signer_from_bytes(signer.pem(), None)
    with pytest.raises(KeyFileError, match="not 'other'"):
        signer_from_bytes(GO_SKEY.encode(), "other")
    with pytest.raises(KeyFileError, match="key id"):
        signer_from_bytes(GO_SKEY.replace("c74f20a3", "c74f20a4").encode(), None)
    with pytest.raises(FileNotFoundError):
        load_signer(tmp_path / "missing", ORIGIN)


def test_the_example_in_docs_audit_md_verifies() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    vkey = "sla-ledger.example/herts+83fdb3a9+AY5K82oawYD8S+7c0RTVPbKXHKCQeVG/WR4kzmbUfG1j"
    body = ("sla-ledger.example/herts\n112\ntWfAy7LoXCleat6TDluzSaS5vulInKp9a2ed1G6CpxE=\n"
            "timestamp 2026-11-01T09:00:00Z\n")
    signature = ("\u2014 sla-ledger.example/herts g/2zqdcEjux2yyA5wOKCDrIiKVqdMtzrigo5I9jMUyLY"
                 "iKXGz9jHl+actxoXdEJK21wsIeCVXH4gPzHDNTKG+RkMYQ4=")
    assert vkey in doc and signature in doc
    assert all(line in doc for line in body.splitlines())
    cp = verify_checkpoint(f"{body}\n{signature}\n", Verifier.from_vkey(vkey))
    assert cp.size == 112 and cp.root_hash == hashlib.sha256(b"example root").digest()
