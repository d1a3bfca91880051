"""The partner's side of the audit service: every answer is verified here,
against the ledger's public key and the last checkpoint this client trusted
(ledger.audit.monitor.LogMonitor), never taken on the server's word.

    client = LedgerClient(target, token=..., log_key=VKEY, trusted_checkpoint=saved)
    client.audit.update()                      # newer checkpoint, consistency-checked
    event = client.audit.verify_event(event_id="e-42")   # inclusion-checked
    save(client.audit.trusted_note)            # persist between runs

A rewritten, forked or rolled-back log raises LogForkError (with both signed
notes as evidence); a bad proof raises ProofError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ledger.audit.checkpoint import Checkpoint, Verifier
from ledger.audit.merkle import HASH_SIZE, ProofError
from ledger.audit.monitor import LogMonitor
from ledger.v1 import audit_pb2, audit_pb2_grpc

T = TypeVar("T")
Call = Callable[[Callable[..., Any], Any], Any]


class AuditClient:
    def __init__(self, call: Call, stub: audit_pb2_grpc.AuditServiceStub, *,
                 log_key: Verifier | str | None = None, origin: str | None = None,
                 trusted_note: str | None = None) -> None:
        self._call = call
        self.stub = stub
        self.monitor: LogMonitor | None = None
        if log_key is not None:
            verifier = Verifier.from_vkey(log_key) if isinstance(log_key, str) else log_key
            self.monitor = LogMonitor(verifier, origin=origin, trusted_note=trusted_note)
        elif trusted_note is not None:
            raise ValueError("a trusted checkpoint needs the log's public key (log_key)")

    def trusting(self, log_key: Verifier | str, trusted_note: str | None) -> AuditClient:
        """Another verifier over the same connection (CheckpointError if
        `trusted_note` is not signed by `log_key`)."""
        return AuditClient(self._call, self.stub, log_key=log_key, trusted_note=trusted_note)

    # -- unverified answers (for tools that verify offline) ---------------
    def checkpoint(self, refresh: bool = False) -> audit_pb2.GetCheckpointResponse:
        response: audit_pb2.GetCheckpointResponse = self._call(
            self.stub.GetCheckpoint, audit_pb2.GetCheckpointRequest(refresh=refresh))
        return response

    def consistency(self, first: int, second: int = 0) -> audit_pb2.GetConsistencyProofResponse:
        response: audit_pb2.GetConsistencyProofResponse = self._call(
            self.stub.GetConsistencyProof,
            audit_pb2.GetConsistencyProofRequest(first_tree_size=first, second_tree_size=second))
        return response

    def leaf_hashes(self, tree_size: int) -> list[bytes]:
        """The ledger's recorded leaf hashes of a tree (paged). Authenticate
        them against a verified root before relying on them."""
        out: list[bytes] = []
        while len(out) < tree_size:
            page = self._call(self.stub.GetLeafHashes, audit_pb2.GetLeafHashesRequest(
                start_index=len(out), tree_size=tree_size))
            data = page.leaf_hashes
            if not data or len(data) % HASH_SIZE:
                raise ProofError(f"leaf hashes page at {len(out)}: {len(data)} bytes")
            out += [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        return out[:tree_size]

    def leaves(self, tree_size: int, agreement_id: str = "") -> Iterator[tuple[int, bytes]]:
        """(position, leaf bytes) of the events of a tree the caller may see."""
        after = 0
        while after < tree_size:
            page = self._call(self.stub.ListLeaves, audit_pb2.ListLeavesRequest(
                after_position=after, tree_size=tree_size, agreement_id=agreement_id))
            for leaf in page.leaves:
                yield leaf.position, leaf.leaf_bytes
            if page.last_position <= after:
                raise ProofError(f"ListLeaves did not advance after position {after}")
            after = page.last_position

    # -- verified ---------------------------------------------------------
    def _monitor(self) -> LogMonitor:
        if self.monitor is None:
            raise ValueError("verifying needs the log's public key: LedgerClient(log_key=...)")
        return self.monitor

    @property
    def trusted_note(self) -> str | None:
        """The last checkpoint verified: persist it and pass it back as
        trusted_checkpoint, so the next run notices a rewritten history."""
        return self.monitor.trusted_note if self.monitor else None

    def update(self, refresh: bool = False) -> Checkpoint:
        """Fetches the latest checkpoint and trusts it only if it is signed
        and extends the trusted one (consistency proof). LogForkError otherwise."""
        monitor = self._monitor()
        response = self.checkpoint(refresh)
        trusted = monitor.trusted
        hashes: list[bytes] = []
        if trusted is not None and 0 < trusted.size < response.tree_size:
            proof = self.consistency(trusted.size, response.tree_size)
            if (proof.first_tree_size, proof.second_tree_size) != (trusted.size,
                                                                    response.tree_size):
                raise ProofError("the consistency proof is for other tree sizes")
            hashes = list(proof.hashes)
        return monitor.observe(response.checkpoint, hashes)

    def verify_event(self, *, position: int = 0, event_id: str = "",
                     refresh: bool = False) -> dict[str, Any]:
        """The event (canonical JSON object) at `position` or with `event_id`,
        proven to be in the log the trusted checkpoint commits to."""
        trusted = self.update(refresh)
        request = audit_pb2.GetInclusionProofRequest(tree_size=trusted.size)
        if event_id:
            request.event_id = event_id
        else:
            request.position = position
        proof = self._call(self.stub.GetInclusionProof, request)
        return self._monitor().check_event(proof.leaf_bytes, proof.leaf_index, proof.tree_size,
                                           list(proof.hashes))
