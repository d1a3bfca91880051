"""Claims through the public API on SQLite and PostgreSQL, over a real gRPC
server: what awaits each partner (ListClaims, `sla-ledger disputes`), the
authority checks of sla-semantics 11.1-11.3 as FAILED_PRECONDITION naming
the rule, and answering with `sla-ledger accept` / `dispute`."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import grpc
import pytest

from ledger.adapters.scenario import read_scenario
from ledger.cli.load import load_scenario
from ledger.cli.main import main
from ledger.client import LedgerClient
from ledger.client.convert import claim_to_dict
from ledger.client.errors import decode_error
from ledger.domain import events as ev
from ledger.domain.instants import MICROS_PER_DAY, format_instant, parse_instant
from ledger.domain.sla.report_json import period_report_dict
from tests.support.ledger_server import running_ledger
from tests.support.scenarios import SCENARIO

pytestmark = pytest.mark.e2e
T = parse_instant("2026-11-05T00:00:00Z")
AGREEMENT = "herts-converged"
INC_1009_CLAIM = "575c6c86-9ca6-51a8-84c8-59914a5e2d39"  # hp: root cause customer, disputed
INC_1016_CLAIM = "2371aed2-97b5-5c43-979f-ae452b7eb67d"  # hp: P2 -> P3, open
INC_1007_ACK = "d11ea63f-f4bf-5b48-82b3-2898e5570e05"  # bt's retracted acknowledgement
INC_1016_DEEMED = "2026-11-12T09:00:00Z"


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> int:
        return self.now


def _answer(kind: str, incident: str, target: str, at: str, actor: str) -> ev.LedgerEvent:
    payload: ev.Payload = (ev.ClaimAccepted(target) if kind == "accept"
                           else ev.ClaimDisputed(target, "not so"))
    return ev.LedgerEvent(event_id=str(uuid.uuid4()), agreement_id="", incident_id=incident,
                          occurred_at=parse_instant(at), actor=actor, payload=payload)


def _refused(client: LedgerClient, event: ev.LedgerEvent) -> dict[str, Any]:
    with pytest.raises(grpc.RpcError) as info:
        client.append([event])
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    return dict(decode_error(info.value))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_what_awaits_each_partner_and_the_authority_checks(database_url: str) -> None:
    clock = Clock()
    with running_ledger(database_url, clock) as (_, target), LedgerClient(target) as client:
        load_scenario(client, read_scenario(SCENARIO))
        listed = [claim_to_dict(c) for c in client.claims(agreement_id=AGREEMENT,
                                                           evaluated_at=T)]
        report = period_report_dict(client.period_report(AGREEMENT, "2026-10", evaluated_at=T))
        assert [(c["incident_id"], c["state"], c["deemed_at"]) for c in listed] == [
            ("INC-1009", "disputed", None), ("INC-1016", "open", INC_1016_DEEMED)]
        assert [{k: c[k] for k in report["disputes"][0]} for c in listed] == report["disputes"]
        # What awaits the council's answer: not what it already disputed.
        awaiting = client.claims(agreement_id=AGREEMENT, awaiting="herts", evaluated_at=T)
        assert [c.event_id for c in awaiting] == [INC_1016_CLAIM]
        assert client.claims(agreement_id=AGREEMENT, awaiting="bt", evaluated_at=T) == []
        everything = client.claims(agreement_id=AGREEMENT, evaluated_at=T,
                                   include_in_effect=True)
        assert [(c.incident_id, c.state) for c in everything] == [
            ("INC-1003", "in_effect"), ("INC-1009", "disputed"), ("INC-1014", "in_effect"),
            ("INC-1016", "open")]
        # About to be deemed accepted: within a day of 12 Nov 09:00Z.
        assert client.claims(evaluated_at=T, deemed_within=MICROS_PER_DAY) == []
        soon = client.claims(evaluated_at=parse_instant("2026-11-11T10:00:00Z"),
                             deemed_within=MICROS_PER_DAY)
        assert [c.event_id for c in soon] == [INC_1016_CLAIM]

        # 11.3: only the awaited org answers, once, and not after the deemed instant.
        refusal = _refused(client, _answer("accept", "INC-1016", INC_1016_CLAIM,
                                           "2026-11-03T00:00:00Z", "bt"))
        assert refusal["rule"] == "not_awaited" and "11.3" in refusal["message"]
        refusal = _refused(client, _answer("accept", "INC-1009", INC_1009_CLAIM,
                                           "2026-11-03T00:00:00Z", "herts"))
        assert refusal["rule"] == "already_answered"
        refusal = _refused(client, _answer("accept", "INC-1016", INC_1007_ACK,
                                           "2026-11-03T00:00:00Z", "herts"))
        assert refusal["rule"] == "not_a_claim"
        clock.now = parse_instant("2026-11-12T10:00:00Z")
        refusal = _refused(client, _answer("dispute", "INC-1016", INC_1016_CLAIM,
                                           INC_1016_DEEMED, "herts"))
        assert refusal["rule"] == "dispute_after_deemed"
        # 11.1: corrections are one's own.
        retraction = ev.LedgerEvent(
            event_id=str(uuid.uuid4()), agreement_id="", incident_id="INC-1016",
            occurred_at=parse_instant("2026-11-03T00:00:00Z"), actor="herts",
            payload=ev.Retracted(INC_1016_CLAIM))
        refusal = _refused(client, retraction)
        assert refusal["rule"] == "not_own_event" and "11.1" in refusal["message"]
        # Nothing was stored by any refusal.
        assert client.claims(agreement_id=AGREEMENT, awaiting="herts",
                             evaluated_at=T)[0].event_id == INC_1016_CLAIM


def test_a_partner_answers_with_the_cli_and_the_report_follows(
        database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    with running_ledger(database_url, clock) as (_, target), LedgerClient(target) as client:
        load_scenario(client, read_scenario(SCENARIO))
        when = format_instant(T)
        code, out, _ = _cli(capsys, "disputes", "--agreement", AGREEMENT, "--awaiting", "herts",
                            "--evaluated-at", when, "--target", target)
        assert code == 0 and "INC-1016" in out and INC_1016_DEEMED in out
        code, out, _ = _cli(capsys, "disputes", "--agreement", AGREEMENT, "--period", "2026-10",
                            "--evaluated-at", when, "--format", "json", "--target", target)
        assert [c["event_id"] for c in json.loads(out)] == [INC_1009_CLAIM, INC_1016_CLAIM]

        # The report's disputes, in its table and CSV forms too.
        code, out, _ = _cli(capsys, "report", "--agreement", AGREEMENT, "--period", "2026-10",
                            "--evaluated-at", when, "--format", "csv", "--target", target)
        rows = [r for r in csv.DictReader(io.StringIO(out)) if r["record"] == "dispute"]
        assert [(r["incident_id"], r["event_id"], r["claim_type"], r["claimed_by"],
                 r["awaiting"], r["state"], r["deemed_at"]) for r in rows] == [
            ("INC-1009", INC_1009_CLAIM, "resolved", "hp", "herts", "disputed", ""),
            ("INC-1016", INC_1016_CLAIM, "priority_changed", "hp", "herts", "open",
             INC_1016_DEEMED)]
        code, out, _ = _cli(capsys, "report", "--agreement", AGREEMENT, "--period", "2026-10",
                            "--evaluated-at", when, "--target", target)
        tail = out[out.index("Claims not in effect"):]
        assert "INC-1009" in tail and "INC-1016" in tail and INC_1016_DEEMED in tail

        before = period_report_dict(client.period_report(AGREEMENT, "2026-10", evaluated_at=T))
        # An admin answers on the council's behalf (in local mode the caller is
        # an admin); a partner with its own token leaves --as-org out.
        code, out, err = _cli(capsys, "accept", INC_1016_CLAIM, "--at", "2026-11-04T12:00:00Z",
                              "--as-org", "herts", "--target", target)
        assert code == 0, err
        assert out.startswith(f"accepted {INC_1016_CLAIM} at 2026-11-04T12:00:00Z")
        after = period_report_dict(client.period_report(AGREEMENT, "2026-10", evaluated_at=T))
        assert [d["incident_id"] for d in after["disputes"]] == ["INC-1009"]
        p2_resolution = next(sl for sl in after["service_levels"] if sl["id"] == "p2-resolution")
        # INC-1016 now counts as P3 (met): the walkthrough's section 4 says so.
        assert p2_resolution["missed"] == 2
        assert p2_resolution["credit_split"] == {"bt": 1771268, "hp": 13620437}
        # The restatement between the two lists the acceptance and what it moved.
        restated = client.restatement(AGREEMENT, "2026-10", evaluated_at=T,
                                      from_cut={"as_recorded_position": before[
                                          "recorded_position"]})
        assert [e["type"] for e in restated["events"]] == ["claim_accepted"]
        assert {"field": "disputes", "removed": INC_1016_CLAIM,
                "incident_id": "INC-1016"} in restated["changes"]
        assert {"field": "service_levels.p2-resolution.incidents.missed",
                "removed": "INC-1016"} in restated["changes"]

        # A second answer is refused with the rule named.
        code, _, err = _cli(capsys, "dispute", INC_1016_CLAIM, "--reason", "changed our mind",
                            "--at", "2026-11-04T13:00:00Z", "--as-org", "herts",
                            "--target", target)
        assert code != 0 and "FAILED_PRECONDITION [already_answered]" in err
        code, _, err = _cli(capsys, "accept", "no-such-event", "--as-org", "herts",
                            "--target", target)
        assert code == 1 and "not a claim you can see" in err
