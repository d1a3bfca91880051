"""Reading 28: an amendment dated before events already stored for its
agreement is refused when it would make a stored timeline invalid, and
accepted when it would not (both databases, over gRPC)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from ledger.client.errors import decode_error
from ledger.domain.agreements import TermsChanges
from ledger.domain.instants import parse_instant
from tests.e2e.faults.harness import AGREEMENT_A, two_agreements
from tests.support.clock import FakeClock

pytestmark = pytest.mark.e2e


def test_an_amendment_that_would_break_a_stored_timeline_is_refused(
        database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    with two_agreements(database_url, clock, tmp_path, with_b=False) as fixture, \
            fixture.client(attempts=1) as client:
        before = fixture.ledger.store.max_position()
        early = parse_instant("2026-09-01T00:00:00Z")  # before most of the stored incidents
        # hp acts in stored incidents: dropping it as a provider from September on
        # would make their handoffs and responses by hp invalid
        with pytest.raises(grpc.RpcError) as info:
            client.amend_agreement(AGREEMENT_A, early, TermsChanges((("providers", ("bt",)),)))
        decoded = decode_error(info.value)
        assert decoded["code"] == "FAILED_PRECONDITION"
        assert decoded.get("rule") == "amendment_invalidates_timeline", decoded
        assert fixture.ledger.store.max_position() == before
        # the same change dated after every stored event breaks nothing
        later = parse_instant("2026-11-04T00:00:00Z")
        assert client.amend_agreement(AGREEMENT_A, later,
                                      TermsChanges((("at_risk_percent", Decimal("12")),))).position > before
