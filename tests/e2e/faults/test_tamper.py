"""Tampering with the database under a running ledger is noticed while it
runs: an edited event, a deleted one (a gap, or the log's tail), a forged
event in a deleted one's place, and a rewritten leaf row. Reads of the
altered event answer DATA_LOSS naming its position, the background scrub
finds it unread, checkpoint signing and writes stop, the write services
report NOT_SERVING, and the metric names the first bad position."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.domain.events import LedgerEvent, Opened
from ledger.observability.metrics import LedgerMetrics
from ledger.server import observability
from ledger.v1 import audit_pb2, audit_pb2_grpc, log_pb2, log_pb2_grpc
from tests.e2e.faults.harness import AGREEMENT_A, token, two_agreements
from tests.e2e.faults.tampering import delete, edit, forge, rewrite_leaf
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e
TARGET = 40  # the position tampered with


CASES: dict[str, tuple[Callable[[str, int], None], bool]] = {
    # name: (tamper, whether a read of the position notices it)
    "edited event": (edit, True),
    "deleted event (a gap)": (delete, True),
    "forged event in place": (forge, True),
    "rewritten leaf row": (rewrite_leaf, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_noticed_live(case: str, database_url: str, clock: FakeClock,
                                   tmp_path: Path) -> None:
    tamper, read_notices = CASES[case]
    metrics = LedgerMetrics()
    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture:
        ledger = fixture.ledger
        observability.instrument(ledger, metrics)
        ledger.runner.run_once()
        assert ledger.audit.log.sync() >= TARGET
        with grpc.insecure_channel(fixture.target) as channel:
            audit = audit_pb2_grpc.AuditServiceStub(channel)
            log = log_pb2_grpc.LogServiceStub(channel)
            metadata = [("authorization", f"Bearer {token('admin')}")]
            audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True), metadata=metadata)

            tamper(database_url, TARGET)

            if read_notices:
                with pytest.raises(grpc.RpcError) as info:
                    list(log.ReadLog(log_pb2.ReadLogRequest(), metadata=metadata, timeout=30))
                assert info.value.code() == grpc.StatusCode.DATA_LOSS
                assert f"position {TARGET}" in (info.value.details() or "")
            else:
                ledger.scrub.step(10_000)  # the background scrub, one pass
            assert ledger.integrity.breach is not None
            assert ledger.integrity.breach.position == TARGET

            # proofs of the altered position refuse to vouch for it
            if read_notices:
                with pytest.raises(grpc.RpcError) as info:
                    audit.GetInclusionProof(audit_pb2.GetInclusionProofRequest(position=TARGET),
                                            metadata=metadata, timeout=30)
                assert info.value.code() == grpc.StatusCode.DATA_LOSS
            # no more signing, no more writes
            with pytest.raises(grpc.RpcError) as info:
                audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True), metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            with fixture.client(attempts=1) as client:
                assert client.get_agreement(AGREEMENT_A).id == AGREEMENT_A  # reads still answer
                with pytest.raises(grpc.RpcError) as info:
                    client.append([LedgerEvent(
                        event_id="after-breach", agreement_id=AGREEMENT_A, incident_id="INC-NEW",
                        occurred_at=clock.now - 60 * 10**6, actor="herts",
                        payload=Opened(service="desktop", priority="P3", custody="bt"))])
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            health = health_pb2_grpc.HealthStub(channel)
            status = None
            for _ in range(200):  # the health change is scheduled on the server's loop
                status = health.Check(health_pb2.HealthCheckRequest(
                    service="ledger.v1.IncidentService"), timeout=10).status
                if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert health.Check(health_pb2.HealthCheckRequest(service="ledger.v1.ReportService"),
                                timeout=10).status == health_pb2.HealthCheckResponse.SERVING
        assert metrics.registry.get_sample_value("ledger_integrity_breach_position") == TARGET


def test_a_deleted_tail_is_noticed_by_the_scrub(database_url: str, clock: FakeClock,
                                                tmp_path: Path) -> None:
    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture:
        ledger = fixture.ledger
        ledger.runner.run_once()
        size = ledger.audit.log.sync()
        ledger.scrub.step(10_000)
        assert ledger.integrity.breach is None  # an intact log passes
        delete(database_url, size)
        ledger.scrub.step(10_000)
        assert ledger.integrity.breach is not None and ledger.integrity.breach.position == size
