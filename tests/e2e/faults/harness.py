"""A ledger with two agreements and a principal for every role, for the fault suite.

Agreement A is the worked Hertfordshire scenario (customer herts, providers
bt and hp). Agreement B is the same history under other names (customer
acme, providers zeta and yolo, agreement ``agr-b``), with the same incident
and event ids as A: ids are scoped by agreement (reading 28).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.adapters.principals_file import hash_token
from ledger.adapters.scenario import read_scenario
from ledger.cli.common import demo_scenario_path
from ledger.cli.load import load_scenario
from ledger.client import LedgerClient
from ledger.grpc.limits import DEFAULT_LIMITS, Limits
from ledger.grpc.server import ServerConfig
from tests.support.ledger_server import running_ledger

AGREEMENT_A = "herts-converged"
AGREEMENT_B = "agr-b"
RENAME_B = {"herts": "acme", "bt": "zeta", "hp": "yolo", AGREEMENT_A: AGREEMENT_B}

#: name -> (org, role); tokens are "token-<name>".
PRINCIPALS: dict[str, tuple[str, str]] = {
    "admin": ("ops", "admin"),
    "auditor": ("watchdog", "auditor"),
    "a-customer": ("herts", "customer"),
    "a-provider": ("bt", "provider"),
    "a-provider2": ("hp", "provider"),
    "b-customer": ("acme", "customer"),
    "b-provider": ("zeta", "provider"),
}


def token(name: str) -> str:
    return f"token-{name}"


def write_principals(directory: Path) -> Path:
    path = directory / "principals.yaml"
    lines = ["principals:"]
    for name, (org, role) in PRINCIPALS.items():
        lines.append(f"  - {{name: {name}, org: {org}, role: {role}, "
                     f"token_sha256: {hash_token(token(name))}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


#: Kept as they are in B: ids are scoped by agreement (reading 28).
_ID_KEYS = ("event_id", "incident_id", "target_event_id")


def _rename(value: Any) -> Any:
    if isinstance(value, str):
        return RENAME_B.get(value, value)
    if isinstance(value, list):
        return [_rename(v) for v in value]
    if isinstance(value, dict):
        return {k: (v if k in _ID_KEYS or k == "occurred_at" else _rename(v))
                for k, v in value.items()}
    return value


def scenario_b(directory: Path) -> Path:
    """Agreement B: A's history under B's names, same incident and event ids."""
    data = json.loads(Path(demo_scenario_path()).read_text())
    out = copy.deepcopy(data)
    out["organisations"] = [{**o, "id": RENAME_B.get(o["id"], o["id"])} for o in data["organisations"]]
    out["agreements"] = [_rename(a) for a in data["agreements"]]
    out["amendments"] = [_rename(a) for a in data.get("amendments", [])]
    out["events"] = [_rename(e) for e in data["events"]]
    out["reports"] = []
    path = directory / "agr-b.json"
    path.write_text(json.dumps(out))
    return path


@dataclass
class Fixture:
    target: str
    ledger: Any

    def client(self, name: str = "admin", **options: Any) -> LedgerClient:
        return LedgerClient(self.target, token=token(name), **options)


@contextmanager
def two_agreements(database: str, clock: Callable[[], int], directory: Path,
                   *, with_b: bool = True, limits: Limits = DEFAULT_LIMITS) -> Iterator[Fixture]:
    config = ServerConfig(listen="127.0.0.1:0", principals=write_principals(directory),
                          limits=limits)
    with running_ledger(database, clock, config) as (ledger, target):
        fixture = Fixture(target, ledger)
        with fixture.client() as admin:
            a = load_scenario(admin, read_scenario(demo_scenario_path()))
            assert a.stored > 0
            if with_b:  # the scenario refuses a few events on purpose: B the same ones
                b = load_scenario(admin, read_scenario(scenario_b(directory)))
                assert (b.stored, len(b.rejected)) == (a.stored, len(a.rejected)), b.rejected[:3]
        yield fixture
