"""`sla-ledger load` accounts for every event of a file: each one ends as
stored, a duplicate, or rejected with its reason, whatever mix of valid,
invalid and conflicting events a batch holds (issue 11: a batch with an
invalid event before an id already stored with other content lost the
events between the two)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.adapters.eventstore import EventStore, open_store
from ledger.adapters.scenario import Scenario
from ledger.application.group_commit import GroupCommitter
from ledger.application.ledger_service import LedgerService
from ledger.application.log_feed import LogFeed
from ledger.cli.load import LoadSummary, load_scenario
from ledger.client import LedgerClient
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.terms_parsing import parse_terms
from ledger.grpc.server import ServerConfig, build_server
from ledger.grpc.servicers import Executors, register_all
from tests.support.ledger_server import ledger_client

T0 = parse_instant("2026-10-05T09:00:00Z")
MINUTE = 60 * 10**6
NOW = parse_instant("2026-11-05T00:00:00Z")
TERMS = {
    "customer": "herts", "providers": ["bt", "hp"], "timezone": "Europe/London",
    "monthly_charge": {"currency": "GBP", "minor_units": 100000}, "at_risk_percent": "12",
    "policy": "custody", "services": ["net"],
    "service_levels": [{"id": "p1-resolution", "kind": "resolution", "priority": "P1",
                        "threshold": "PT4H", "calendar": "24x7", "objective": "0.95",
                        "credit_percent": "3"}],
}
KINDS = ("open", "respond", "resolve", "close_early", "unknown_incident", "bad_field",
         "conflict_stored", "conflict_in_file", "duplicate_stored", "duplicate_in_file")
_runs = itertools.count()


@contextmanager
def write_path(database: str) -> Iterator[tuple[EventStore, LedgerClient]]:
    """The gRPC append path alone (no read models): what `load` talks to,
    without the projection runner's timing in a test of many small loads."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    store = open_store(database)
    service = LedgerService(store, lambda: NOW)
    executors = Executors(GroupCommitter(service))

    async def start() -> Any:
        feed = LogFeed(asyncio.get_running_loop())
        return await build_server(ServerConfig(listen="127.0.0.1:0"),
                                  lambda server: register_all(server, service, executors, feed))

    running = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        with LedgerClient(f"127.0.0.1:{running.port}", timeout=30) as client:
            yield store, client
    finally:
        asyncio.run_coroutine_threadsafe(running.stop(1.0), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        executors.shutdown()
        store.close()


def _at(minutes: int) -> str:
    return format_instant(T0 + minutes * MINUTE)


def _build(prefix: str, kinds: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # noqa: C901  one case per kind of file line, the mix the test draws from
    """(events stored before the load, the file's events) for a mix of kinds."""
    pre = [{"event_id": f"{prefix}-pre", "incident_id": f"{prefix}-PRE", "type": "opened",
            "occurred_at": _at(0), "actor": "herts", "agreement": "a", "service": "net",
            "priority": "P1", "custody": "bt"}]
    events: list[dict[str, Any]] = []
    incidents: list[str] = []
    for n, kind in enumerate(kinds):
        incident = incidents[-1] if incidents else f"{prefix}-I0"
        base = {"event_id": f"{prefix}-{n}", "incident_id": incident, "occurred_at": _at(n + 1)}
        if kind == "open" or not incidents:
            incident = f"{prefix}-I{n}"
            incidents.append(incident)
            event = {**base, "incident_id": incident, "type": "opened", "actor": "herts",
                     "agreement": "a", "service": "net", "priority": "P1", "custody": "bt"}
        elif kind == "respond":
            event = {**base, "type": "responded", "actor": "bt"}
        elif kind == "resolve":
            event = {**base, "type": "resolved", "actor": "bt"}
        elif kind == "close_early":  # FAILED_PRECONDITION unless resolved just before
            event = {**base, "type": "closed", "actor": "bt"}
        elif kind == "unknown_incident":  # NOT_FOUND
            event = {**base, "incident_id": f"{prefix}-nowhere", "type": "responded", "actor": "bt"}
        elif kind == "bad_field":  # refused before it reaches the server
            event = {**base, "type": "priority_changed", "priority": "P9", "actor": "herts"}
        elif kind == "conflict_stored":  # ALREADY_EXISTS against the stored event
            event = {**base, "event_id": f"{prefix}-pre", "type": "responded", "actor": "bt"}
        elif kind == "duplicate_stored":
            event = dict(pre[0])
        elif kind == "conflict_in_file":
            event = {**base, "event_id": f"{prefix}-0", "type": "responded", "actor": "hp"}
        else:  # duplicate_in_file: an earlier event of the file, re-sent
            event = dict(events[0]) if events else {**base, "type": "responded", "actor": "bt"}
        events.append(event)
    return pre, events


def _check(summary: LoadSummary, events: list[dict[str, Any]], stored_delta: int) -> None:
    rejected = [r["index"] for r in summary.rejected]
    assert len(rejected) == len(set(rejected)), "an event was rejected twice"
    assert set(rejected).isdisjoint(summary.positions), "an event both rejected and stored"
    assert set(rejected) | set(summary.positions) == set(range(len(events))), "an event was lost"
    assert summary.stored + summary.duplicates + len(summary.rejected) == len(events)
    assert summary.stored == stored_delta
    assert all(r["reason"] for r in summary.rejected)


def test_every_event_is_stored_duplicate_or_rejected(tmp_path: Path) -> None:
    with write_path(f"sqlite:///{tmp_path / 'ledger.db'}") as (store, client):
        client.register_agreement("a", T0 - 86400 * 10**6, parse_terms(TERMS), "register-a")

        @settings(max_examples=100, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=25),
               batch_size=st.integers(1, 9))
        def check(kinds: list[str], batch_size: int) -> None:
            pre, events = _build(f"r{next(_runs)}", kinds)
            client.append([event_from_dict(e) for e in pre])
            before = store.max_position()
            summary = load_scenario(client, Scenario(path="mix.json", events=events),
                                    batch_size=batch_size)
            _check(summary, events, store.max_position() - before)

        check()


def test_invalid_event_then_stored_id_with_other_content(tmp_path: Path) -> None:
    """The regression: in one batch, an invalid event and after it an id
    already stored with other content; the events between are stored."""
    kinds = ["open", "close_early", "respond", "resolve", "conflict_stored", "open"]
    pre, events = _build("reg", kinds)
    with ledger_client(f"sqlite:///{tmp_path / 'ledger.db'}", lambda: NOW) as (ledger, client):
        client.register_agreement("a", T0 - 86400 * 10**6, parse_terms(TERMS), "register-a")
        client.append([event_from_dict(e) for e in pre])
        before = ledger.store.max_position()
        summary = load_scenario(client, Scenario(path="mix.json", events=events))
        _check(summary, events, ledger.store.max_position() - before)
        assert sorted(summary.positions) == [0, 2, 3, 5]
        reasons = {r["index"]: r["reason"].split(":")[0] for r in summary.rejected}
        assert reasons == {1: "invalid_timeline", 4: "duplicate_event_id"}
