"""The typed period report and its renderings: the JSON contract and the
protobuf message each carry every figure, so a report read back from either
renders the worked scenario's expected reports byte for byte."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from ledger.client.report_convert import report_from_proto, report_to_proto
from ledger.domain.instants import parse_instant
from ledger.domain.sla.report import PeriodReport, report_micros, report_ratio
from ledger.domain.sla.report_json import period_report_dict, period_report_from_dict
from ledger.v1 import reports_pb2

CUT = "2026-11-03T10:00:00.000001Z"
EXPECTED = Path(__file__).resolve().parents[1] / "data" / "herts-2026-10.expected.json"


def _expected_reports() -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = json.loads(EXPECTED.read_text())["reports"]
    return reports


def _pretty(report: dict[str, Any]) -> str:
    # As `sla-ledger report --format json` prints it.
    return json.dumps(report, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("index", [0, 1])
def test_json_rendering_reads_back_to_the_same_bytes(index: int) -> None:
    expected = _expected_reports()[index]
    report = period_report_from_dict(expected)
    assert _pretty(period_report_dict(report)) == _pretty(expected)


@pytest.mark.parametrize("index", [0, 1])
def test_the_protobuf_message_carries_the_whole_report(index: int) -> None:
    expected = _expected_reports()[index]
    report = period_report_from_dict(expected)
    wire = report_to_proto(report).SerializeToString()
    back = report_from_proto(reports_pb2.PeriodReport.FromString(wire))
    assert back == report
    assert _pretty(period_report_dict(back)) == _pretty(expected)


def test_counts_only_and_instant_cuts_survive_the_message() -> None:
    report = period_report_from_dict(_expected_reports()[0])
    counts_only = replace(report, as_recorded_position=None, as_recorded_instant=parse_instant(CUT),
                          service_levels=tuple(replace(level, incidents=None)
                                               for level in report.service_levels))
    back = report_from_proto(report_to_proto(counts_only))
    assert back == counts_only
    rendered = period_report_dict(back)
    assert rendered["as_recorded_at"] == CUT
    assert all("incidents" not in level for level in rendered["service_levels"])


def test_report_precision_rounds_once_half_even() -> None:
    assert str(report_ratio(Fraction(2, 3))) == "0.666666666667"
    assert str(report_ratio(1)) == "1.000000000000"
    assert report_ratio(Fraction(1, 2 * 10**12)) == Decimal(0)  # half to even: down
    assert report_ratio(Fraction(3, 2 * 10**12)) == Decimal("0.000000000002")  # up
    assert report_micros(Fraction(5, 2)) == 2 and report_micros(Fraction(7, 2)) == 4


def test_report_json_is_deprecated_and_report_is_not() -> None:
    fields = reports_pb2.GetPeriodReportResponse.DESCRIPTOR.fields_by_name
    assert fields["report_json"].GetOptions().deprecated
    assert not fields["report"].GetOptions().deprecated
    assert fields["report_json"].number == 1 and fields["report"].number == 2


def test_a_typed_report_is_a_value() -> None:
    report = period_report_from_dict(_expected_reports()[0])
    assert isinstance(report, PeriodReport)
    with pytest.raises(AttributeError):
        report.period = "2026-11"  # type: ignore[misc]
