"""AuditService: thin adapter over ledger.application.audit."""

from __future__ import annotations

import grpc

from ledger.application.audit import AuditService
from ledger.audit.tlog import SignedCheckpoint
from ledger.domain.errors import InvalidArgument
from ledger.grpc.auth import current_principal
from ledger.grpc.servicers import Executors
from ledger.v1 import audit_pb2, audit_pb2_grpc


def checkpoint_to_proto(signed: SignedCheckpoint, public_key: str) -> audit_pb2.GetCheckpointResponse:
    return audit_pb2.GetCheckpointResponse(checkpoint=signed.note,
                                           tree_size=signed.checkpoint.size,
                                           root_hash=signed.checkpoint.root_hash,
                                           public_key=public_key)


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditService, executors: Executors) -> None:
        self.audit = audit
        self.executors = executors

    async def GetCheckpoint(self, request: audit_pb2.GetCheckpointRequest,
                           context: grpc.aio.ServicerContext) -> audit_pb2.GetCheckpointResponse:
        current_principal()
        refresh = bool(request.refresh)
        signed = await self.executors.read(lambda: self.audit.checkpoint(refresh))
        return checkpoint_to_proto(signed, self.audit.public_key)

    async def GetInclusionProof(self, request: audit_pb2.GetInclusionProofRequest,
                               context: grpc.aio.ServicerContext) -> audit_pb2.GetInclusionProofResponse:
        principal = current_principal()
        which = request.WhichOneof("leaf")
        position = request.position if which == "position" else 0
        event_id = request.event_id if which == "event_id" else ""
        if which is None or (which == "event_id" and not event_id):
            raise InvalidArgument("leaf", "set position or event_id")
        proven = await self.executors.read(lambda: self.audit.inclusion_proof(
            principal, position=position, event_id=event_id, tree_size=request.tree_size,
            agreement_id=request.agreement_id))
        proof = proven.proof
        return audit_pb2.GetInclusionProofResponse(
            leaf_index=proof.leaf_index, tree_size=proof.tree_size, hashes=list(proof.hashes),
            leaf_hash=proof.leaf_hash, leaf_bytes=proven.leaf_bytes)

    async def GetConsistencyProof(self, request: audit_pb2.GetConsistencyProofRequest,
                                 context: grpc.aio.ServicerContext) -> audit_pb2.GetConsistencyProofResponse:
        current_principal()
        first, second, hashes = await self.executors.read(lambda: self.audit.consistency_proof(
            request.first_tree_size, request.second_tree_size))
        return audit_pb2.GetConsistencyProofResponse(first_tree_size=first,
                                                     second_tree_size=second, hashes=list(hashes))

    async def GetLeafHashes(self, request: audit_pb2.GetLeafHashesRequest,
                           context: grpc.aio.ServicerContext) -> audit_pb2.GetLeafHashesResponse:
        current_principal()
        size, hashes = await self.executors.read(lambda: self.audit.leaf_hashes(
            request.start_index, request.tree_size, request.max_count))
        return audit_pb2.GetLeafHashesResponse(start_index=request.start_index, tree_size=size,
                                               leaf_hashes=hashes)

    async def ListLeaves(self, request: audit_pb2.ListLeavesRequest,
                        context: grpc.aio.ServicerContext) -> audit_pb2.ListLeavesResponse:
        principal = current_principal()
        leaves, last, size = await self.executors.read(lambda: self.audit.list_leaves(
            principal, request.after_position, request.tree_size, request.agreement_id,
            request.page_size))
        return audit_pb2.ListLeavesResponse(
            leaves=[audit_pb2.Leaf(position=p, leaf_bytes=b) for p, b in leaves],
            last_position=last, tree_size=size)


def register_audit(server: grpc.aio.Server, audit: AuditService, executors: Executors) -> list[str]:
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(audit, executors), server)
    return [audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name]
