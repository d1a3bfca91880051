"""Two servers on one database (each with its own store, pool and caches, as
two processes have): an amendment through one is seen by an append through
the other, streams appended through one are current in the other, and on
PostgreSQL the other's log followers wake on NOTIFY, not at their poll."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest

from ledger.adapters.pg_listen import LogListener
from ledger.client import LedgerClient
from ledger.client.errors import decode_error
from ledger.domain.instants import parse_instant
from ledger.domain.terms_parsing import parse_terms
from tests.support.histories import incident_event, opened, register_herts_remotely, scenario
from tests.support.ledger_server import running_ledger

AGREEMENT = "herts-converged"


def _without_desktop() -> tuple[int, object]:
    (raw,) = scenario()["agreements"]
    levels = [lv for lv in raw["service_levels"] if lv.get("service") != "desktop"]
    terms = parse_terms({**raw, "services": ["converged-network"], "service_levels": levels},
                        "amendment")
    return parse_instant("2026-10-01T00:00:00Z"), terms


def test_an_amendment_through_one_server_binds_appends_through_the_other(
        database_url: str, clock: Callable[[], int]) -> None:
    with running_ledger(database_url, clock) as (_, target_a), \
            running_ledger(database_url, clock) as (_, target_b), \
            LedgerClient(target_a) as a, LedgerClient(target_b) as b:
        register_herts_remotely(a)
        # b has the agreement's terms cached now (an incident before the amendment)
        b.append([opened("o-1", "INC-1", at="2026-09-20T09:00:00Z")])
        effective, terms = _without_desktop()
        a.amend_agreement(AGREEMENT, effective, terms, event_id="amend-1")  # type: ignore[arg-type]
        with pytest.raises(grpc.RpcError) as raised:
            b.append([opened("o-2", "INC-2", at="2026-10-10T10:00:00Z")])  # desktop is gone
        decoded = decode_error(raised.value)
        assert decoded["code"] == "FAILED_PRECONDITION"
        assert decoded.get("rule") == "unknown_service"
        (amendment,) = b.get_agreement(AGREEMENT).amendments
        assert amendment.event_id == "amend-1"


def test_a_stream_moved_by_one_server_is_current_in_the_other(
        database_url: str, clock: Callable[[], int]) -> None:
    with running_ledger(database_url, clock) as (_, target_a), \
            running_ledger(database_url, clock) as (_, target_b), \
            LedgerClient(target_a) as a, LedgerClient(target_b) as b:
        register_herts_remotely(a)
        b.append([opened("o-1", "INC-1")])  # b caches INC-1 as [opened]
        a.append([incident_event("p-1", "INC-1", "clock_paused", "2026-10-10T09:10:00Z",
                                 "herts")])
        # Valid only after a's pause: b must not judge it on its stale copy.
        (resumed,) = b.append([incident_event("r-1", "INC-1", "clock_resumed",
                                              "2026-10-10T09:20:00Z", "herts")])
        assert resumed.position == 4
        # And the other way round: b's stale copy would accept a second resume.
        a.append([incident_event("p-2", "INC-1", "clock_paused", "2026-10-10T09:30:00Z",
                                 "herts")])
        b.append([incident_event("r-2", "INC-1", "clock_resumed", "2026-10-10T09:40:00Z",
                                 "herts")])
        with pytest.raises(grpc.RpcError) as raised:
            a.append([incident_event("r-3", "INC-1", "clock_resumed", "2026-10-10T09:50:00Z",
                                     "herts")])
        assert decode_error(raised.value).get("rule") == "not_paused"
        timeline = [e.recorded.event.event_id for e in b.get_incident("INC-1").timeline]
        assert timeline == ["o-1", "p-1", "r-1", "p-2", "r-2"]


def test_the_other_servers_followers_see_appends(
        database_url: str, clock: Callable[[], int]) -> None:
    """On PostgreSQL a listener hears each commit's new head at once (NOTIFY);
    SQLite followers find it at their next poll."""
    with running_ledger(database_url, clock) as (_, target_a), \
            running_ledger(database_url, clock) as (ledger_b, _target_b), \
            LedgerClient(target_a) as a:
        register_herts_remotely(a)
        heard: list[int] = []
        got = threading.Event()
        listener = None
        if ledger_b.store.is_postgres:
            def on_head(position: int) -> None:
                heard.append(position)
                got.set()

            listener = LogListener(ledger_b.store, on_head)
            listener.start()
            assert got.wait(10)  # the head on connecting
            got.clear()
        try:
            head = a.append([opened("o-1", "INC-1")])[0].position
            if listener is not None:
                assert got.wait(10)
                assert heard[-1] == head
            assert ledger_b.runner is not None
            assert ledger_b.runner.wait_for(head, 20)
        finally:
            if listener is not None:
                listener.stop()
