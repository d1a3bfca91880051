"""`sla-ledger principal add NAME --org O --role R`: a new caller. The token
is printed once and only its SHA-256 is written, so the file can be read by
the operators who keep it without giving away anyone's credentials."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from ledger.adapters.principals_file import PrincipalsFileError, hash_token, parse_principals
from ledger.cli.common import from_environment
from ledger.domain.access import ROLES


def add_parser(sub: Any) -> None:
    principal = sub.add_parser("principal", help="manage the principals file")
    actions = principal.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a principal; prints its new token once")
    add.add_argument("name")
    add.add_argument("--org", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--principals", required=True,
                     help="the principals file (created if missing; or SLA_LEDGER_PRINCIPALS)")
    from_environment(add, only=("--principals",))


def cmd_principal(args: argparse.Namespace) -> int:
    path = Path(args.principals)
    token = secrets.token_urlsafe(32)
    entry = {"name": args.name, "org": args.org, "role": args.role, "token_sha256": hash_token(token)}
    as_json = path.suffix == ".json"
    try:
        before = path.read_text("utf-8") if path.exists() else ""
        if as_json:
            data = json.loads(before) if before.strip() else {"principals": []}
            data["principals"].append(entry)
            after = json.dumps(data, indent=2) + "\n"
        else:
            line = "  - {" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in entry.items()) + "}\n"
            after = (before if before.strip() else "principals:\n")
            after += ("" if after.endswith("\n") else "\n") + line
        if before.strip() and any(e.principal.name == args.name for e in
                                  parse_principals(before, source=str(path), as_json=as_json).entries):
            raise ValueError(f"{path} already has a principal named {args.name!r}")
        # Refuses a bad name, org or role before writing anything.
        parse_principals(after, source=str(path), as_json=as_json)
    except (OSError, ValueError, KeyError, PrincipalsFileError) as exc:
        print(f"sla-ledger principal add: {exc}", file=sys.stderr)
        return 2
    path.write_text(after, "utf-8")
    path.chmod(0o600)
    print(f"added {args.name} ({args.org}, {args.role}) to {path}; its token, shown only now:",
          file=sys.stderr)
    print(token)
    return 0
