"""The worked agreement (herts-converged) as service, projection, server and
fleet tests use it: registering it in process or over the wire, a second
agreement with disjoint parties, an amendment, single incident events, random
histories appended with the SLA projection following, and the read-model
tables dumped for comparison."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from ledger.application.ledger_service import LedgerService
from ledger.application.ports import EventStore
from ledger.client import LedgerClient
from ledger.domain import events as ev
from ledger.domain.access import LOCAL_ADMIN
from ledger.domain.codec import event_from_dict
from ledger.domain.errors import DomainError
from ledger.domain.events import AppendResult
from ledger.domain.instants import parse_instant
from ledger.domain.terms_parsing import parse_terms
from projections.runner import ProjectionRunner
from tests.support.random_history import random_history
from tests.support.scenarios import SCENARIO

AGREEMENT = "herts-converged"

# the SLA read model's tables, each in an order that makes two dumps comparable
TABLES = {
    "sla_incident": "incident_id, valid_from_position",
    "sla_clock": "incident_id, level_id, valid_from_position",
    "sla_period_level": "agreement_id, period, level_id, valid_from_position",
}


def scenario() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCENARIO.read_text(encoding="utf-8"))
    return data


def register_herts(service: LedgerService) -> AppendResult:
    (raw,) = scenario()["agreements"]
    return service.register_agreement(
        LOCAL_ADMIN, f"register:{raw['id']}", raw["id"], parse_instant(raw["effective_from"]),
        parse_terms(raw, "agreements[0]"))


def register_herts_remotely(client: LedgerClient) -> None:
    (raw,) = scenario()["agreements"]
    client.register_agreement(raw["id"], parse_instant(raw["effective_from"]),
                              parse_terms(raw, "agreements[0]"), event_id="register")


def register_other(service: LedgerService) -> None:
    """A second agreement with disjoint parties: acme buys from globex."""
    terms = {**scenario()["agreements"][0], "id": "acme-desk", "customer": "acme",
             "providers": ["globex"]}
    service.register_agreement(LOCAL_ADMIN, "register:acme-desk", "acme-desk",
                               parse_instant("2026-07-01T00:00:00Z"), parse_terms(terms))


def amend(service: LedgerService) -> None:
    """A retroactive-looking amendment: tighter P2 resolution from mid-month."""
    raw = dict(scenario()["agreements"][0])
    raw["service_levels"] = [
        {**sl, "threshold": "PT6H"} if sl["id"] == "p2-resolution" else sl
        for sl in raw["service_levels"]
    ]
    service.amend_agreement(LOCAL_ADMIN, "amend:p2", AGREEMENT,
                            parse_instant("2026-10-15T00:00:00Z"), parse_terms(raw))


def incident_event(event_id: str, incident: str, kind: str, at: str, actor: str,
                   **fields: Any) -> ev.LedgerEvent:
    raw = {"event_id": event_id, "incident_id": incident, "type": kind, "occurred_at": at,
           "actor": actor, **fields}
    return event_from_dict(raw)


def opened(event_id: str, incident: str, at: str = "2026-10-10T09:00:00Z",
           agreement: str = AGREEMENT, custody: str = "hp") -> ev.LedgerEvent:
    return incident_event(event_id, incident, "opened", at, "herts", agreement=agreement,
                          service="desktop", priority="P2", custody=custody)


def assert_gap_free(store: EventStore) -> list[ev.LedgerEvent]:
    log = store.read_log(0, limit=100_000)
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    assert store.max_position() == len(log)
    return log


def load(service: LedgerService, runner: ProjectionRunner, seed: int, incidents: int) -> int:
    """Appends a random history, applying the projection every few batches;
    returns how many events were stored."""
    stored = 0
    batches = random_history(seed, incidents)
    for index, batch in enumerate(batches):
        events = [event_from_dict(e) for e in batch]
        try:
            stored += sum(not r.duplicate for r in service.append(LOCAL_ADMIN, events))
        except DomainError:
            for event in events:  # keep what the ledger accepts on its own
                with contextlib.suppress(DomainError):
                    stored += sum(not r.duplicate for r in service.append(LOCAL_ADMIN, [event]))
        if index == len(batches) // 2:
            amend(service)
        if index % 3 == 0:
            runner.run_once()
    runner.run_once()
    return stored


def dump(runner: ProjectionRunner) -> dict[str, list[tuple[Any, ...]]]:
    with runner.db.transaction(commit=False) as tx:
        return {table: tx.fetchall(f"SELECT * FROM {tx.table(table)} ORDER BY {order}")
                for table, order in TABLES.items()}
