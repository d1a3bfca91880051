"""Several thousand malformed and extreme requests to every RPC, as every kind
of principal: no call answers UNKNOWN or INTERNAL, no message names an
internal class, and the log grows only by the events the server acknowledged."""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from pathlib import Path

import grpc
import pytest

from ledger.v1 import agreements_pb2, incidents_pb2
from tests.e2e.faults.fuzz import follows, methods, plan
from tests.e2e.faults.harness import PRINCIPALS, token, two_agreements
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e

#: Requests per database (CI sizes by count, not by skipping).
REQUESTS = int(os.environ.get("SLA_LEDGER_FUZZ_REQUESTS", "2500"))
SEED = int(os.environ.get("SLA_LEDGER_FUZZ_SEED", "20261130"))
CLASS_NAME = re.compile(r"<class |Traceback|\b[A-Z][A-Za-z]+(Error|Exception)\b")


def _acknowledged(path: str, body: bytes, response: bytes) -> int:
    """How many new events an OK answer says were stored."""
    if path.endswith("/AppendEvents"):
        return sum(1 for r in incidents_pb2.AppendEventsResponse.FromString(response).results
                   if not r.duplicate)
    if path.endswith("/RegisterAgreement"):
        return int(not agreements_pb2.RegisterAgreementResponse.FromString(response).duplicate)
    if path.endswith("/AmendAgreement"):
        return int(not agreements_pb2.AmendAgreementResponse.FromString(response).duplicate)
    return 0


def test_fuzzed_requests_get_a_precise_status(database_url: str, clock: FakeClock,
                                              tmp_path: Path) -> None:
    statuses: Counter[str] = Counter()
    bad: list[tuple[str, str, str]] = []
    acknowledged = 0
    names = sorted(PRINCIPALS)
    pick = random.Random(SEED)
    with two_agreements(database_url, clock, tmp_path) as fixture:
        before = fixture.ledger.store.max_position()
        with grpc.insecure_channel(fixture.target) as channel:
            for method, body in plan(SEED, REQUESTS):
                metadata = [("authorization", f"Bearer {token(pick.choice(names))}")]
                timeout = 1.0 if follows(method, body) else 30.0
                try:
                    if method.streaming:
                        call = channel.unary_stream(method.path)
                        for _ in call(body, timeout=timeout, metadata=metadata):
                            pass
                    else:
                        response = channel.unary_unary(method.path)(body, timeout=timeout,
                                                                    metadata=metadata)
                        acknowledged += _acknowledged(method.path, body, response)
                    statuses["OK"] += 1
                except grpc.RpcError as exc:
                    code = exc.code().name
                    statuses[code] += 1
                    details = exc.details() or ""
                    if code in ("UNKNOWN", "INTERNAL") or CLASS_NAME.search(details):
                        bad.append((method.path, code, details[:200]))
        after = fixture.ledger.store.max_position()
    print(f"\nfuzz {database_url.split(':', maxsplit=1)[0]}: {REQUESTS} requests to {len(methods())} RPCs,"
          f" statuses {dict(sorted(statuses.items()))}, acknowledged {acknowledged}")
    assert not bad, bad[:10]
    assert sum(statuses.values()) == REQUESTS
    assert after - before == acknowledged
