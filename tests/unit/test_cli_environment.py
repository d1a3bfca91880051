"""Flags read from SLA_LEDGER_<FLAG> variables (ledger.cli.common.from_environment)."""

from __future__ import annotations

import argparse

import pytest

from ledger.cli.common import env_name, from_environment
from ledger.cli.main import build_parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrub-rate", type=int, default=2000)
    parser.add_argument("--principals", required=True)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--format", default="table")
    return parser


def test_flag_names_map_to_variables() -> None:
    assert env_name("--tls-client-ca") == "SLA_LEDGER_TLS_CLIENT_CA"


def test_variable_sets_the_default_converted_by_the_flags_type(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_LEDGER_SCRUB_RATE", "500")
    monkeypatch.setenv("SLA_LEDGER_PRINCIPALS", "p.yaml")
    parser = _parser()
    from_environment(parser)
    args = parser.parse_args([])  # --principals is no longer required
    assert (args.scrub_rate, args.principals) == (500, "p.yaml")
    assert parser.parse_args(["--scrub-rate", "7"]).scrub_rate == 7  # the command line wins


def test_empty_unset_and_valueless_flags_keep_their_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_LEDGER_SCRUB_RATE", "")
    monkeypatch.setenv("SLA_LEDGER_DEMO", "1")
    parser = _parser()
    from_environment(parser)
    args = parser.parse_args(["--principals", "x"])
    assert (args.scrub_rate, args.demo) == (2000, False)


def test_only_the_named_flags_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_LEDGER_FORMAT", "json")
    monkeypatch.setenv("SLA_LEDGER_PRINCIPALS", "p.yaml")
    parser = _parser()
    from_environment(parser, only=("--principals",))
    assert parser.parse_args([]).format == "table"


def test_serve_and_client_flags_read_the_environment_other_flags_do_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_LEDGER_LISTEN", "0.0.0.0:7000")
    monkeypatch.setenv("SLA_LEDGER_CHECKPOINT_INTERVAL", "5")
    monkeypatch.setenv("SLA_LEDGER_TARGET", "ledger:443")
    monkeypatch.setenv("SLA_LEDGER_DATABASE", "postgresql://db/ledger")
    monkeypatch.setenv("SLA_LEDGER_AGREEMENT", "from-env")
    parser = build_parser()
    serve = parser.parse_args(["serve"])
    assert (serve.listen, serve.checkpoint_interval, serve.database) == (
        "0.0.0.0:7000", 5.0, "postgresql://db/ledger")
    report = parser.parse_args(["report", "--agreement", "a", "--period", "2026-10"])
    assert report.target == "ledger:443"
    # export reads a database only when told to: the server's variable must not redirect it
    export = parser.parse_args(["export", "--to", "out"])
    assert (export.database, export.target) == (None, "ledger:443")
    assert parser.parse_args(["incidents"]).agreement == ""
    assert parser.parse_args(["rebuild"]).database == "postgresql://db/ledger"
