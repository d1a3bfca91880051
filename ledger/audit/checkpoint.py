"""Signed checkpoints: a C2SP tlog-checkpoint body in a C2SP signed note,
signed with Ed25519.

    <origin>\\n
    <tree size, decimal>\\n
    <root hash, standard base64>\\n
    timestamp <RFC 3339 UTC>\\n          (optional extension line)
    \\n
    — <key name> <base64(key id (4 bytes, big-endian) || Ed25519 signature)>\\n

The signature covers the note text: every body line including its newline,
not the blank separator line. key id = SHA-256(name || 0x0A || 0x01 ||
public key)[:4]. The verifier key string "<name>+<key id hex>+<base64(0x01 ||
public key)>" is the sumdb/note (golang.org/x/mod/sumdb/note) format, so the
checkpoints also verify with the Go note package and transparency-dev tools.

Key files: PEM (PKCS#8, what generate writes), a raw 32-byte Ed25519 seed, or
a note signer key "PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>".
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.audit.merkle import HASH_SIZE
from ledger.domain.instants import format_instant, parse_instant

ED25519 = 0x01
MAX_SIGNATURES = 100
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
TIMESTAMP_PREFIX = "timestamp "
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(ValueError):
    """A malformed note or checkpoint, or one that does not verify."""


class KeyFileError(ValueError):
    """A key file that cannot be read as an Ed25519 private key."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not standard base64") from None
    if _b64(data) != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return data


def check_key_name(name: str) -> str:
    if not name or "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        raise CheckpointError(f"key name must be non-empty, without spaces or '+': {name!r}")
    return name


def key_id(name: str, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || 0x01 || public key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


# -- keys -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != 32:
            raise CheckpointError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """The note verifier key: name+hex(key id)+base64(0x01 || public key)."""
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([ED25519]) + self.public_key)}"

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # the base64 may contain "+"
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise CheckpointError("a verifier key is <name>+<8 hex digits>+<base64>")
        raw = _unb64(parts[2], "verifier key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise CheckpointError("only Ed25519 verifier keys (type 0x01) are supported")
        verifier = cls(check_key_name(parts[0]), raw[1:])
        if verifier.key_id != int(parts[1], 16):
            raise CheckpointError("verifier key id does not match its name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class Signer:
    __slots__ = ("_key", "name", "verifier")

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = check_key_name(name)
        self._key = key
        public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
        self.verifier = Verifier(name, public)

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    @property
    def public_key(self) -> bytes:
        return self.verifier.public_key

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def seed(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.Raw,
                                       serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())

    def pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def skey(self) -> str:
        """The note signer key: PRIVATE+KEY+name+hex(key id)+base64(0x01 || seed)."""
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{_b64(bytes([ED25519]) + self.seed())}"

    def __repr__(self) -> str:  # never the key itself
        return f"Signer({self.verifier.vkey!r})"


def signer_from_bytes(data: bytes, name: str | None) -> Signer:
    """A signer from key file contents (PEM, raw seed or note signer key).
    A note signer key carries its name; otherwise `name` is required."""
    stripped = data.strip()
    if stripped.startswith(b"PRIVATE+KEY+"):
        return _note_signer(stripped, name)
    if name is None:
        raise KeyFileError("a key name is required for PEM or raw key files")
    if stripped.startswith(b"-----BEGIN"):
        return _pem_signer(stripped, name)
    if len(data) == 32:
        return Signer(name, Ed25519PrivateKey.from_private_bytes(data))
    raise KeyFileError("not a PEM, raw 32-byte or note signer key")


def _note_signer(stripped: bytes, name: str | None) -> Signer:
    parts = stripped.decode("ascii", "replace").split("+", 4)
    if len(parts) != 5:
        raise KeyFileError("a note signer key is PRIVATE+KEY+<name>+<hex>+<base64>")
    try:
        raw = _unb64(parts[4], "signer key")
    except CheckpointError as exc:
        raise KeyFileError(str(exc)) from None
    if len(raw) != 33 or raw[0] != ED25519:
        raise KeyFileError("only Ed25519 signer keys (type 0x01) are supported")
    if name is not None and name != parts[2]:
        raise KeyFileError(f"the key file is for {parts[2]!r}, not {name!r}")
    signer = Signer(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if f"{signer.key_id:08x}" != parts[3]:
        raise KeyFileError("signer key id does not match its name and key")
    return signer


def _pem_signer(stripped: bytes, name: str) -> Signer:
    try:
        key = serialization.load_pem_private_key(stripped, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"unreadable PEM key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("the PEM key is not an Ed25519 key")
    return Signer(name, key)


def load_signer(path: str | os.PathLike[str], name: str | None = None) -> Signer:
    return signer_from_bytes(Path(path).read_bytes(), name)


def save_signer(signer: Signer, path: str | os.PathLike[str], *, form: str = "pem") -> None:
    """Writes the key (form "pem", "raw" or "note") to a new file of mode 0600;
    FileExistsError if the path exists. The file appears complete or not at all."""
    if form == "pem":
        data = signer.pem()
    elif form == "raw":
        data = signer.seed()
    elif form == "note":
        data = (signer.skey() + "\n").encode("utf-8")
    else:
        raise ValueError(f"unknown key form {form!r}")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, target)  # atomic; fails if the target exists
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def load_or_create_signer(path: str | os.PathLike[str], name: str) -> tuple[Signer, bool]:
    """The signer in `path`, generating it (PEM, mode 0600) if the file does not
    exist yet; True when generated. Safe against concurrent first starts."""
    try:
        return load_signer(path, name), False
    except FileNotFoundError:
        pass
    signer = Signer.generate(name)
    try:
        save_signer(signer, path)
    except FileExistsError:
        return load_signer(path, name), False
    return signer, True


# -- notes and checkpoints --------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedNote:
    text: str
    signatures: tuple[NoteSignature, ...]


def parse_note(note: str) -> SignedNote:
    """Splits a signed note (C2SP signed-note) into text and signatures,
    checking the form but not the signatures."""
    if _CONTROL.search(note):
        raise CheckpointError("a note contains no control characters but newline")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise CheckpointError("a signed note is text, a blank line and signature lines")
    text, block = note[:split + 1], note[split + 2:]
    lines = block[:-1].split("\n")
    if not block or len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"a note has 1..{MAX_SIGNATURES} signature lines")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError(f"not a signature line: {line[:40]!r}")
        name, _, sig = line[len(SIGNATURE_PREFIX):].partition(" ")
        raw = _unb64(sig, "signature")
        if len(raw) < 5:
            raise CheckpointError("a signature is a 4-byte key id and the signature")
        signatures.append(NoteSignature(check_key_name(name), int.from_bytes(raw[:4], "big"),
                                        raw[4:]))
    return SignedNote(text, tuple(signatures))


def verify_note(note: str, verifier: Verifier) -> str:
    """The text of a note that `verifier` signed; CheckpointError otherwise.
    Signatures by other keys (witnesses, rotated keys) are ignored."""
    parsed = parse_note(note)
    known = [s for s in parsed.signatures
             if s.name == verifier.name and s.key_id == verifier.key_id]
    if not known:
        raise CheckpointError(f"not signed by {verifier.name} ({verifier.key_id:08x})")
    message = parsed.text.encode("utf-8")
    if not all(verifier.verify(message, s.signature) for s in known):
        raise CheckpointError(f"bad signature by {verifier.name}")
    return parsed.text


def sign_note(text: str, *signers: Signer) -> str:
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise CheckpointError("note text is non-empty lines, each ending in a newline")
    if _CONTROL.search(text) or not signers:
        raise CheckpointError("control characters in the note, or no signer")
    message = text.encode("utf-8")
    lines = "".join(
        f"{SIGNATURE_PREFIX}{s.name} {_b64(s.key_id.to_bytes(4, 'big') + s.sign(message))}\n"
        for s in signers)
    return f"{text}\n{lines}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: `size` leaves with `root_hash`, issued by `origin`;
    timestamp in microseconds since the epoch (a signed extension line)."""

    origin: str
    size: int
    root_hash: bytes
    timestamp: int | None = None
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin):
            raise CheckpointError("the origin is one non-empty line")
        if not 0 <= self.size <= 2**63 - 1:
            raise CheckpointError(f"tree size {self.size} out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError("the root hash is 32 bytes")
        for line in self.extensions:
            if not line or "\n" in line or _CONTROL.search(line) or \
                    line.startswith(TIMESTAMP_PREFIX):
                raise CheckpointError(f"bad extension line {line!r}")

    def text(self) -> str:
        """The note text (what the signature covers)."""
        lines = [self.origin, str(self.size), _b64(self.root_hash)]
        if self.timestamp is not None:
            lines.append(TIMESTAMP_PREFIX + format_instant(self.timestamp))
        lines.extend(self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not all(lines):
            raise CheckpointError("a checkpoint is at least three non-empty lines")
        if not _SIZE.fullmatch(lines[1]):
            raise CheckpointError(f"bad tree size {lines[1]!r}")
        timestamp: int | None = None
        extensions = lines[3:]
        if extensions and extensions[0].startswith(TIMESTAMP_PREFIX):
            try:
                timestamp = parse_instant(extensions[0][len(TIMESTAMP_PREFIX):])
            except ValueError as exc:
                raise CheckpointError(f"bad timestamp line: {exc}") from None
            extensions = extensions[1:]
        checkpoint = cls(lines[0], int(lines[1]), _unb64(lines[2], "root hash"),
                         timestamp, tuple(extensions))
        if checkpoint.text() != text:
            raise CheckpointError("checkpoint text is not in canonical form")
        return checkpoint


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer, *cosigners: Signer) -> str:
    """The signed note of a checkpoint. The key name SHOULD equal the origin."""
    return sign_note(checkpoint.text(), signer, *cosigners)


def verify_checkpoint(note: str, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a note signed by `verifier` (and of `origin`, if given);
    CheckpointError otherwise."""
    checkpoint = Checkpoint.from_text(verify_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint of {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


def parse_checkpoint(note: str) -> tuple[Checkpoint, tuple[NoteSignature, ...]]:
    """An *unverified* checkpoint and its signatures (for display only)."""
    parsed = parse_note(note)
    return Checkpoint.from_text(parsed.text), parsed.signatures
