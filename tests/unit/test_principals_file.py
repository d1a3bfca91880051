"""The principals file: parsing, precise errors, and credential lookup."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ledger.adapters.principals_file import (
    PrincipalsFileError,
    certificate_fingerprint,
    hash_token,
    load_principals,
    parse_principals,
)
from ledger.domain.access import Principal

TOKEN_A = "token-for-herts"
TOKEN_B = "token-for-carrier"

YAML = f"""
principals:
  - name: herts-noc
    org: herts
    role: provider
    token_sha256: {hash_token(TOKEN_A)}
  - name: carrier
    org: carrier
    role: customer
    token_sha256: {hash_token(TOKEN_B).upper()}
  - name: importer
    org: operator
    role: admin
    client_cert_sha256: "{":".join(f"{b:02X}" for b in hashlib.sha256(b"der").digest())}"
  - name: auditor
    org: regulator
    role: auditor
    client_cert_subject_cn: auditor.example
"""


def test_hash_token_is_hex_sha256() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(hash_token("")) == 64


def test_yaml_mapping_form_resolves_tokens_and_certificates() -> None:
    directory = parse_principals(YAML)
    assert len(directory) == 4
    assert directory.by_token(TOKEN_A) == Principal("herts-noc", "herts", "provider")
    assert directory.by_token(TOKEN_B) == Principal("carrier", "carrier", "customer")  # upper hex
    assert directory.by_token("nope") is None
    assert directory.by_token(hash_token(TOKEN_A)) is None  # the hash is not a token
    assert directory.by_certificate(b"der") == Principal("importer", "operator", "admin")
    assert directory.by_certificate(b"other der") is None
    assert directory.by_certificate("auditor.example") == Principal(
        "auditor", "regulator", "auditor"
    )
    assert directory.by_certificate("herts-noc") is None
    assert directory.has_certificate_identities


def test_json_file_list_form(tmp_path: Path) -> None:
    path = tmp_path / "principals.json"
    entries = [{"name": "a", "org": "o", "role": "auditor", "token_sha256": hash_token("t")}]
    path.write_text(json.dumps(entries))
    directory = load_principals(path)
    assert directory.principals == (Principal("a", "o", "auditor"),)
    assert not directory.has_certificate_identities


def test_certificate_fingerprint_matches_file_format() -> None:
    assert certificate_fingerprint(b"der") == hashlib.sha256(b"der").hexdigest()


def _error(text: str, **kwargs: bool) -> PrincipalsFileError:
    with pytest.raises(PrincipalsFileError) as info:
        parse_principals(text, source="p.yaml", **kwargs)
    return info.value


def _entries(*extra: str) -> str:
    good = f"- {{name: a, org: o, role: provider, token_sha256: {hash_token('a')}}}"
    return "\n".join([good, *extra])


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ("- {org: o, role: provider, token_sha256: %s}", "name", "is required"),
        ("- {name: b, role: provider, token_sha256: %s}", "org", "is required"),
        ("- {name: b, org: o, role: boss, token_sha256: %s}", "role", "unknown role 'boss'"),
        ("- {name: b, org: o, role: 3, token_sha256: %s}", "role", "must be a string"),
        ("- {name: '', org: o, role: admin, token_sha256: %s}", "name", "must not be empty"),
        ("- {name: b, org: o, role: admin, token_sha256: abc}", "token_sha256", "64 hex"),
        ("- {name: b, org: o, role: admin, client_cert_sha256: 'zz'}", "client_cert_sha256", "hex"),
        ("- {name: b, org: o, role: admin, token: secret}", "token", "plaintext tokens"),
        ("- {name: b, org: o, role: admin, tokn_sha256: %s}", "tokn_sha256", "unknown field"),
        ("- {name: a, org: o, role: admin, token_sha256: %s}", "name", "duplicates principals[0]"),
    ],
)
def test_entry_errors_name_index_and_field(entry: str, field: str, words: str) -> None:
    other = hash_token("b")
    text = _entries(entry.replace("%s", other))
    error = _error(text)
    assert (error.index, error.field) == (1, field)
    assert f"p.yaml: principals[1].{field}: " in str(error)
    assert words in str(error)
    assert "secret" not in str(error)


def test_duplicate_token_hash_is_refused() -> None:
    error = _error(_entries(f"- {{name: b, org: o, role: admin, token_sha256: {hash_token('a')}}}"))
    assert (error.index, error.field) == (1, "token_sha256")
    assert "duplicates principals[0].token_sha256" in str(error)


def test_entry_without_credentials_is_refused() -> None:
    error = _error(_entries("- {name: b, org: o, role: admin}"))
    assert (error.index, error.field) == (1, None)
    assert "no credential" in str(error)


def test_entry_that_is_not_a_mapping() -> None:
    error = _error(_entries("- just-a-string"))
    assert error.index == 1
    assert "expected a mapping" in str(error)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no principals defined"),
        ("principals: []", "no principals defined"),
        ("principals: {a: 1}", "expected a list"),
        ("users: []", "unknown top-level key"),
        ("{}", "missing the 'principals' list"),
        ("- [unclosed", "invalid YAML at line 1"),
    ],
)
def test_file_level_errors(text: str, words: str) -> None:
    assert words in str(_error(text))


def test_invalid_json_names_line() -> None:
    error = _error('[\n{"name": }]', as_json=True)
    assert "invalid JSON at line 2" in str(error)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PrincipalsFileError, match="cannot read"):
        load_principals(tmp_path / "missing.yaml")
