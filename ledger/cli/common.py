"""What every `sla-ledger` command shares: exit codes, defaults, the client
connection flags, flags read from the environment, and the demo scenario."""

from __future__ import annotations

import argparse
import os
from collections.abc import Collection
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.client import LedgerClient

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_DATABASE = "sqlite:///var/ledger.db"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3
ENV_PREFIX = "SLA_LEDGER_"


def env_name(flag: str) -> str:
    """``--tls-client-ca`` -> ``SLA_LEDGER_TLS_CLIENT_CA``."""
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


def from_environment(parser: argparse.ArgumentParser, only: Collection[str] = ()) -> None:
    """Flags of `parser` that take a value (`only` these, if given) default to
    their SLA_LEDGER_<FLAG> variable when it is set and not empty; a flag so
    set is no longer required. A value given on the command line still wins,
    and argparse converts the variable's text with the flag's `type`."""
    for action in parser._actions:  # argparse has no public walk of its actions
        flags = [o for o in action.option_strings if o.startswith("--")]
        if not flags or action.nargs == 0 or (only and flags[0] not in only):
            continue
        value = os.environ.get(env_name(flags[0]))
        if value:
            action.default = value
            action.required = False


def client_flags(parser: argparse.ArgumentParser) -> None:
    """How a command reaches the ledger: --target, --token, --ca (each also from
    the environment)."""
    parser.add_argument("--target", default=DEFAULT_TARGET,
                        help="ledger address (default %(default)s)")
    parser.add_argument("--token", help="bearer token (or SLA_LEDGER_TOKEN)")
    parser.add_argument("--ca", help="CA certificate to trust (enables TLS)")
    from_environment(parser, only=("--target", "--token", "--ca"))


def make_client(args: argparse.Namespace) -> LedgerClient:
    from pathlib import Path

    from ledger.client import LedgerClient

    root = Path(args.ca).read_bytes() if args.ca else None
    return LedgerClient(args.target, token=args.token, root_certificates=root)


def demo_scenario_path() -> str:
    return str(resources.files("ledger.demo").joinpath("herts-2026-10.json"))
