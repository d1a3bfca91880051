"""Offline export bundles: a directory an auditor verifies without the ledger.

    events.jsonl     one stored event per line, in position order: its leaf
                     bytes (ledger.audit.leaf) followed by "\\n"
    checkpoint.txt   the signed checkpoint (ledger.audit.checkpoint) the
                     bundle is verified against; tree size N
    public-key.txt   the note verifier key of the ledger: name+keyid+base64
    leaf-hashes.bin  the N leaf hashes of the ledger's Merkle log, 32 bytes
                     each, as the ledger recorded them

A full bundle holds positions 1..N. `verify_bundle` recomputes every leaf hash
from the lines and the root over them, and checks the signature. The leaf
hashes file is only evidence: when the root does not match, the file is
trusted only if *its* root is the signed root, and then the first line whose
hash differs is the first bad position. Without it (or with it damaged too) a
changed line is detected but cannot be located: one root names no position.
A partial bundle (one agreement's events) is checked line by line against the
authenticated leaf hashes; it proves those events are in the log, not that
none were left out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from ledger.audit.checkpoint import Checkpoint, CheckpointError, Verifier, verify_checkpoint
from ledger.audit.leaf import leaf_bytes
from ledger.audit.memstore import LevelsHashStore
from ledger.audit.merkle import HASH_SIZE, MerkleTree, leaf_hash
from ledger.domain.events import LedgerEvent

EVENTS = "events.jsonl"
CHECKPOINT = "checkpoint.txt"
PUBLIC_KEY = "public-key.txt"
LEAF_HASHES = "leaf-hashes.bin"
_CHUNK = 1 << 20  # 1 MiB reads: measurably faster than large ones (cache, page faults)
# The top-level position in a line the ledger wrote: keys are sorted, so
# "actor" precedes it and "recorded_at" follows; `,"` cannot occur inside a
# JSON string; the only nested objects (agreement terms) have no integer
# "position". Lines where this finds anything else are parsed as JSON.
_POSITION = re.compile(rb',"position":(\d+),"')


@dataclass(frozen=True, slots=True)
class Problem:
    position: int | None  # None: not about one event (key, signature, files)
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    events: int  # lines read
    checkpoint: Checkpoint | None = None  # None unless its signature verified
    key: str = ""  # the verifier key used
    signature_ok: bool = False
    root_ok: bool = False
    complete: bool = False  # positions 1..N all present
    trusted_ok: bool | None = None  # None: no earlier checkpoint given
    first_bad_position: int | None = None
    problems: tuple[Problem, ...] = ()
    more_problems: bool = False  # the list was capped
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        cp = self.checkpoint
        head = (f"{cp.origin} size {cp.size} root {cp.root_hash.hex()}" if cp else "no checkpoint")
        if self.ok:
            return f"OK: {self.events} events verify against {head} (key {self.key})"
        lines = [f"FAILED: {head}"]
        if self.first_bad_position is not None:
            lines.append(f"first bad position: {self.first_bad_position}")
        lines += [f"  {p.position if p.position is not None else '-'}: {p.reason}"
                  for p in self.problems]
        if self.more_problems:
            lines.append("  (more problems not listed)")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


# -- writing ----------------------------------------------------------------


def write_bundle(directory: str | os.PathLike[str], events: Iterable[LedgerEvent],
                 checkpoint_text: str, public_key: Verifier | str, *,
                 leaf_hashes: Sequence[bytes] | None = None,
                 unsigned_tail: bool = False) -> int:
    """Writes a bundle of stored `events` (ascending positions, at most the
    checkpoint's size) and returns how many. `leaf_hashes` are the checkpoint's
    N leaf hashes as the Merkle log recorded them (required for a partial
    bundle; computed from the events when omitted). With `unsigned_tail` (and
    `leaf_hashes`), events after position N are written too: the log as it is
    stored, which `verify_bundle` reports as not covered by the checkpoint.
    The bundle files must not exist yet; on error the files written are removed."""
    verifier = Verifier.from_vkey(public_key) if isinstance(public_key, str) else public_key
    size = verify_checkpoint(checkpoint_text, verifier).size
    if unsigned_tail and leaf_hashes is None:
        raise ValueError("unsigned_tail needs the log's leaf hashes")
    if leaf_hashes is not None and (len(leaf_hashes) != size or
                                    any(len(h) != HASH_SIZE for h in leaf_hashes)):
        raise ValueError(f"leaf_hashes must be the {size} leaf hashes of the checkpoint")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        computed: list[bytes] = []
        last = count = 0
        path = root / EVENTS
        with path.open("xb") as out:
            written.append(path)
            for event in events:
                if not last < event.position <= (2**62 if unsigned_tail else size):
                    raise ValueError(f"position {event.position} after {last}, "
                                     f"or beyond the checkpoint's {size}")
                data = leaf_bytes(event)
                out.write(data + b"\n")
                if leaf_hashes is None and event.position <= size:
                    computed.append(leaf_hash(data))
                last = event.position
                count += 1
        if leaf_hashes is None and (len(computed) != size or last != size):
            raise ValueError("a partial bundle needs the log's leaf hashes")
        for name, content in ((CHECKPOINT, checkpoint_text.encode("utf-8")),
                              (PUBLIC_KEY, (verifier.vkey + "\n").encode("ascii")),
                              (LEAF_HASHES, b"".join(leaf_hashes or computed))):
            with (root / name).open("xb") as out:
                written.append(root / name)
                out.write(content)
        return count
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


# -- verifying --------------------------------------------------------------


@dataclass
class _Scan:
    """What one pass over events.jsonl finds."""

    max_problems: int
    hashes: list[bytes] = field(default_factory=list)
    positions: list[int | None] = field(default_factory=list)  # partial bundles only
    problems: list[Problem] = field(default_factory=list)
    more: bool = False

    def problem(self, position: int | None, reason: str) -> None:
        self.problems.append(Problem(position, reason))


def _position_of(line: bytes) -> int | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    pos = value.get("position") if isinstance(value, dict) else None
    return pos if type(pos) is int else None


def _check_full(scan: _Scan, lines: list[bytes], found: list[bytes], base: int) -> None:
    """Lines base+1.. must hold positions base+1..; the regex result is only
    trusted when it is exactly that, otherwise each line is parsed."""
    if found == list(map(b"%d".__mod__, range(base + 1, base + len(lines) + 1))):
        return
    for i, line in enumerate(lines, base + 1):
        if len(scan.problems) >= scan.max_problems:
            scan.more = True
            return
        pos = _position_of(line)
        if pos is None:
            scan.problem(i, f"line {i} is not a stored event (no JSON object with a position)")
        elif pos != i:
            why = "duplicate or out of order" if pos < i else "missing or out of order"
            scan.problem(i, f"line {i} holds position {pos}, not {i} ({why})")


def _scan(path: Path, scan: _Scan, partial: bool) -> None:
    hashes = scan.hashes
    with path.open("rb") as f:
        rest = b""
        while True:
            block = f.read(_CHUNK)
            buf = rest + block if rest else block
            lines = buf.split(b"\n")
            rest = lines.pop() if block else b""
            if lines == [b""] and not block:
                lines = []  # the end of a file that ends in a newline
            base = len(hashes)
            hashes += [sha256(b"\x00" + line).digest() for line in lines]
            if partial:
                scan.positions += map(_position_of, lines)
            elif lines:
                found = _POSITION.findall(buf, 0, len(buf) - len(rest))
                _check_full(scan, lines, found, base)
            if not block:
                return


def _read_hashes(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data


def _evidence(recorded: bytes | None, checkpoint: Checkpoint) -> MerkleTree | None:
    """The recorded leaf hashes as a tree, if the signed root authenticates them."""
    if recorded is None or len(recorded) != checkpoint.size * HASH_SIZE:
        return None
    tree = MerkleTree(LevelsHashStore(
        [recorded[i:i + HASH_SIZE] for i in range(0, len(recorded), HASH_SIZE)]))
    return tree if tree.root() == checkpoint.root_hash else None


def _check_partial(scan: _Scan, evidence: MerkleTree, size: int) -> None:
    last = 0
    for line_no, (pos, digest) in enumerate(zip(scan.positions, scan.hashes, strict=True), 1):
        if len(scan.problems) >= scan.max_problems:
            scan.more = True
            return
        if pos is None:
            scan.problem(None, f"line {line_no} is not a stored event")
        elif not last < pos <= size:
            scan.problem(pos, f"line {line_no}: position {pos} is not after {last} "
                         f"within 1..{size}")
        else:
            if evidence.store.leaf_hash(pos - 1) != digest:
                scan.problem(pos, f"position {pos} differs from the signed log (leaf hash)")
            last = pos


def _check_full_root(scan: _Scan, checkpoint: Checkpoint, full: MerkleTree,
                     hashes_file: Path) -> tuple[bool, MerkleTree | None]:
    """(root ok, authenticated leaf hashes); locates changed lines if it can."""
    size, hashes = checkpoint.size, scan.hashes
    count = len(hashes)
    if count > size:
        scan.problem(size + 1, f"{count - size} event(s) beyond the checkpoint's size {size}")
    elif count < size:
        scan.problem(count + 1, f"{size - count} event(s) of the checkpoint are missing")
    if count >= size and full.root(size) == checkpoint.root_hash:
        return True, full  # leaf-hashes.bin is not needed (nor read)
    evidence = _evidence(_read_hashes(hashes_file), checkpoint)
    if evidence is None:
        scan.problem(None, "the root over the events is not the signed root, and there is "
                     f"no authenticated {LEAF_HASHES} to locate the change")
        return False, None
    found = 0
    for i in range(min(count, size)):
        if hashes[i] != evidence.store.leaf_hash(i):
            scan.problem(i + 1, f"position {i + 1} differs from the signed log (leaf hash)")
            found += 1
            if found >= scan.max_problems:
                break
    return False, evidence


def verify_bundle(directory: str | os.PathLike[str], *, key: Verifier | str | None = None,
                  trusted: str | None = None, partial: bool = False,
                  max_problems: int = 20) -> VerifyReport:
    """Verifies a bundle offline. `key` pins the ledger's verifier key (else
    the bundle's own public-key.txt is used, and the report notes it);
    `trusted` is a checkpoint kept from an earlier audit, which the bundle's
    log must extend; `partial` accepts a subset of the positions."""
    root = Path(directory)
    problems: list[Problem] = []
    notes: list[str] = []
    try:
        bundle_key: Verifier | None = Verifier.from_vkey(
            (root / PUBLIC_KEY).read_text("ascii"))
    except (OSError, ValueError) as exc:
        bundle_key = None
        problems.append(Problem(None, f"{PUBLIC_KEY}: {exc}"))
    verifier = Verifier.from_vkey(key) if isinstance(key, str) else key
    if verifier is None:
        verifier = bundle_key
        notes.append("the key was taken from the bundle itself: pin it to trust it")
    elif bundle_key is not None and bundle_key != verifier:
        problems.append(Problem(None, f"{PUBLIC_KEY} is not the pinned key {verifier.vkey}"))
    vkey = verifier.vkey if verifier is not None else ""
    try:
        note = (root / CHECKPOINT).read_text("utf-8")
        if verifier is None:
            raise CheckpointError("no key to verify it with")
        checkpoint = verify_checkpoint(note, verifier)
    except (OSError, ValueError) as exc:
        problems.append(Problem(None, f"{CHECKPOINT}: {exc}"))
        return VerifyReport(False, 0, None, vkey, problems=tuple(problems), notes=tuple(notes))
    size = checkpoint.size
    scan = _Scan(max_problems)
    try:
        _scan(root / EVENTS, scan, partial)
    except OSError as exc:
        problems.append(Problem(None, f"{EVENTS}: {exc}"))
    if partial:
        evidence = _evidence(_read_hashes(root / LEAF_HASHES), checkpoint)
        if evidence is None:
            problems.append(Problem(None, f"{LEAF_HASHES} is missing or not the signed log's"))
        else:
            _check_partial(scan, evidence, size)
        root_ok = evidence is not None
    else:
        full = MerkleTree(LevelsHashStore(scan.hashes[:size]))
        root_ok, evidence = _check_full_root(scan, checkpoint, full, root / LEAF_HASHES)
        # without authenticated hashes, an earlier checkpoint can still vouch
        # for a prefix of the events as they are
        evidence = evidence or full
    trusted_ok: bool | None = None
    if trusted is not None:
        trusted_ok = _check_trusted(trusted, verifier, checkpoint, evidence, problems)
    problems += scan.problems
    problems.sort(key=lambda p: (p.position is None, p.position or 0))
    located = [p.position for p in problems if p.position is not None]
    count = len(scan.hashes)
    return VerifyReport(
        ok=root_ok and not problems, events=count, checkpoint=checkpoint, key=vkey,
        signature_ok=True, root_ok=root_ok, complete=not partial and root_ok and count == size,
        trusted_ok=trusted_ok, first_bad_position=min(located, default=None),
        problems=tuple(problems[:max_problems]),
        more_problems=scan.more or len(problems) > max_problems, notes=tuple(notes))


def _check_trusted(trusted: str, verifier: Verifier | None, checkpoint: Checkpoint,
                   tree: MerkleTree | None, problems: list[Problem]) -> bool:
    """Whether the bundle's log extends a checkpoint from an earlier audit."""
    try:
        if verifier is None:
            raise CheckpointError("no key to verify it with")
        old = verify_checkpoint(trusted, verifier, origin=checkpoint.origin)
    except CheckpointError as exc:
        problems.append(Problem(None, f"trusted checkpoint: {exc}"))
        return False
    if tree is None:
        problems.append(Problem(None, "trusted checkpoint: no authenticated leaf hashes"))
        return False
    if old.size > tree.size:
        problems.append(Problem(None, f"the bundle has {tree.size} events, the trusted "
                                f"checkpoint {old.size}: the log shrank, or the bundle "
                                "is older than the checkpoint"))
        return False
    if tree.root(old.size) != old.root_hash:
        problems.append(Problem(None, f"the first {old.size} events are not those of the "
                                "trusted checkpoint: the log was rewritten or forked"))
        return False
    return True
