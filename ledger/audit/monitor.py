"""The partner's side: verify everything the ledger returns, and remember the
last checkpoint trusted, so a rewritten, forked or rolled-back log is noticed
on the next call. Transport-free: feed it what the audit service returned."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.audit.checkpoint import Checkpoint, CheckpointError, Verifier, verify_checkpoint
from ledger.audit.leaf import LeafError, parse_leaf
from ledger.audit.merkle import ProofError, check_consistency, check_inclusion, leaf_hash


class LogForkError(ValueError):
    """The ledger showed a log inconsistent with one it showed before: proof
    that history was rewritten. Keep both checkpoints: they are the evidence."""

    def __init__(self, message: str, trusted: str, offered: str) -> None:
        super().__init__(message)
        self.trusted_note = trusted
        self.offered_note = offered


class LogMonitor:
    """Holds the ledger's verifier key and the last checkpoint verified."""

    def __init__(self, verifier: Verifier, *, origin: str | None = None,
                 trusted_note: str | None = None) -> None:
        self.verifier = verifier
        self.origin = origin or verifier.name
        self._note: str | None = None
        self._trusted: Checkpoint | None = None
        if trusted_note is not None:
            self._trusted = verify_checkpoint(trusted_note, verifier, origin=self.origin)
            self._note = trusted_note

    @property
    def trusted(self) -> Checkpoint | None:
        return self._trusted

    @property
    def trusted_note(self) -> str | None:
        """The note to persist, and to pass back as trusted_note next time."""
        return self._note

    def observe(self, note: str, consistency: Sequence[bytes] = ()) -> Checkpoint:
        """Accepts a newer checkpoint if it is signed and `consistency` proves
        it extends the trusted one (GetConsistencyProof(trusted size, its
        size)). CheckpointError: not a valid checkpoint; LogForkError: signed,
        but not an extension of what was trusted."""
        offered = verify_checkpoint(note, self.verifier, origin=self.origin)
        old = self._trusted
        if old is not None:
            if offered.size < old.size:
                raise LogForkError(f"the log went back from {old.size} to {offered.size} "
                                   "events", self._note or "", note)
            try:
                check_consistency(old.size, offered.size, old.root_hash, offered.root_hash,
                                  list(consistency))
            except ProofError as exc:
                raise LogForkError(f"checkpoint {offered.size} does not extend the trusted "
                                   f"{old.size}: {exc}", self._note or "", note) from None
            if offered.size == old.size and old.timestamp and offered.timestamp and \
                    offered.timestamp < old.timestamp:
                return old  # an older signature of the same tree: keep the newer
        self._trusted, self._note = offered, note
        return offered

    def check_event(self, leaf_bytes: bytes, leaf_index: int, tree_size: int,
                    hashes: Sequence[bytes]) -> dict[str, object]:
        """Verifies GetInclusionProof's answer against the trusted checkpoint
        (ask for its size); returns the event's canonical JSON object."""
        trusted = self._trusted
        if trusted is None or tree_size != trusted.size:
            raise ProofError(f"no trusted checkpoint of size {tree_size}")
        try:
            event = parse_leaf(leaf_bytes)
        except LeafError as exc:
            raise ProofError(f"leaf bytes: {exc}") from None
        if event.get("position") != leaf_index + 1:
            raise ProofError(f"leaf {leaf_index} holds position {event.get('position')}")
        check_inclusion(leaf_index, tree_size, leaf_hash(leaf_bytes), list(hashes),
                        trusted.root_hash)
        return event


__all__ = ["CheckpointError", "LogForkError", "LogMonitor"]
