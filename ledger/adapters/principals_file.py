"""The principals file: who may call the ledger, and how they prove it.

The file is YAML or JSON (JSON is valid YAML, but a ``.json`` file is parsed as
JSON so its error messages carry JSON line numbers). It is either a list of
entries or a mapping with a ``principals`` list::

    principals:
      - name: herts-noc            # unique, shows in logs
        org: herts                 # the org the principal acts for
        role: provider             # provider | customer | auditor | admin
        token_sha256: 9f86d0...    # hex SHA-256 of the bearer token
      - name: importer
        org: operator
        role: admin
        client_cert_sha256: "AB:CD:..."   # SHA-256 of the client certificate (DER)
        client_cert_subject_cn: importer.example  # or its subject CN

The file never holds tokens, only their hashes (``hash_token``). Every entry
needs at least one credential: ``token_sha256``, ``client_cert_sha256`` or
``client_cert_subject_cn``. Certificate identities are only consulted for
peers whose certificate the server verified against ``--tls-client-ca``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from ledger.domain.access import ROLES, Principal

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = frozenset(
    {"name", "org", "role", "token_sha256", "client_cert_sha256", "client_cert_subject_cn"}
)
_CREDENTIALS = ("token_sha256", "client_cert_sha256", "client_cert_subject_cn")


class PrincipalsFileError(ValueError):
    """The principals file is unreadable or an entry is invalid.

    ``index`` (0-based position in the ``principals`` list) and ``field`` name
    the offending entry and field when the problem is inside one entry.
    """

    def __init__(
        self, source: str, message: str, index: int | None = None, field: str | None = None
    ) -> None:
        where = source
        if index is not None:
            where += f": principals[{index}]"
            if field is not None:
                where += f".{field}"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.index = index
        self.field = field
        self.reason = message


def hash_token(token: str) -> str:
    """The hex SHA-256 of a bearer token, as stored in ``token_sha256``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def certificate_fingerprint(der: bytes) -> str:
    """The hex SHA-256 of a certificate's DER encoding, as in ``client_cert_sha256``."""
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True, slots=True)
class PrincipalEntry:
    """One entry of the file: a principal and the credentials that prove it."""

    principal: Principal
    token_sha256: str | None = None
    client_cert_sha256: str | None = None
    client_cert_subject_cn: str | None = None


class PrincipalDirectory:
    """Resolves credentials to principals. Holds hashes only, never tokens."""

    def __init__(self, entries: Iterable[PrincipalEntry]) -> None:
        self._entries = tuple(entries)
        # bytes so hmac.compare_digest compares equal-length digests
        self._tokens = tuple(
            (bytes.fromhex(e.token_sha256), e.principal)
            for e in self._entries
            if e.token_sha256 is not None
        )
        self._fingerprints = {
            e.client_cert_sha256: e.principal
            for e in self._entries
            if e.client_cert_sha256 is not None
        }
        self._common_names = {
            e.client_cert_subject_cn: e.principal
            for e in self._entries
            if e.client_cert_subject_cn is not None
        }

    @property
    def entries(self) -> tuple[PrincipalEntry, ...]:
        return self._entries

    @property
    def principals(self) -> tuple[Principal, ...]:
        return tuple(e.principal for e in self._entries)

    @property
    def has_certificate_identities(self) -> bool:
        return bool(self._fingerprints or self._common_names)

    def __len__(self) -> int:
        return len(self._entries)

    def by_token(self, token: str) -> Principal | None:
        """The principal whose ``token_sha256`` is the hash of ``token``.

        Every stored hash is compared with ``hmac.compare_digest`` and the loop
        never exits early, so timing reveals neither which entry matched nor
        how much of a hash did.
        """
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found: Principal | None = None
        for stored, principal in self._tokens:
            if hmac.compare_digest(stored, digest) and found is None:
                found = principal
        return found

    def by_certificate(self, der_or_cn: bytes | str) -> Principal | None:
        """The principal for a verified client certificate.

        ``bytes`` are the certificate's DER encoding, matched by SHA-256
        fingerprint; ``str`` is the certificate's subject common name.
        """
        if isinstance(der_or_cn, bytes):
            return self._fingerprints.get(certificate_fingerprint(der_or_cn))
        return self._common_names.get(der_or_cn)


def load_principals(path: str | Path) -> PrincipalDirectory:
    """Reads and validates a principals file (YAML, or JSON for ``*.json``)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PrincipalsFileError(source, f"cannot read: {exc.strerror or exc}") from exc
    return parse_principals(text, source=source, as_json=source.endswith(".json"))


def parse_principals(
    text: str, *, source: str = "<principals>", as_json: bool = False
) -> PrincipalDirectory:
    """Parses and validates principals file content."""
    data: object
    try:
        data = json.loads(text) if as_json else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise PrincipalsFileError(
            source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PrincipalsFileError(source, f"invalid YAML{where}: {problem}") from exc

    if isinstance(data, Mapping):
        unknown = sorted(str(k) for k in data if k != "principals")
        if unknown:
            raise PrincipalsFileError(
                source, f"unknown top-level key(s) {unknown}; expected only 'principals'"
            )
        if "principals" not in data:
            raise PrincipalsFileError(source, "missing the 'principals' list")
        data = data["principals"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise PrincipalsFileError(
            source, "expected a list of principals (or a mapping with a 'principals' list)"
        )
    entries = [_parse_entry(source, i, raw) for i, raw in enumerate(data)]
    if not entries:
        raise PrincipalsFileError(source, "no principals defined; nobody could call the ledger")
    _check_unique(source, entries)
    return PrincipalDirectory(entries)


def _parse_entry(source: str, index: int, raw: object) -> PrincipalEntry:
    def fail(field: str | None, message: str) -> PrincipalsFileError:
        return PrincipalsFileError(source, message, index=index, field=field)

    if not isinstance(raw, Mapping):
        raise fail(None, f"expected a mapping, got {type(raw).__name__}")
    if "token" in raw:
        raise fail(
            "token",
            "plaintext tokens are not accepted; store token_sha256, the hex SHA-256 of the token",
        )
    unknown = sorted(str(k) for k in raw if k not in _FIELDS)
    if unknown:
        raise fail(unknown[0], f"unknown field; expected some of {sorted(_FIELDS)}")

    def text(field: str, *, required: bool) -> str | None:
        return _text_field(raw, field, required=required, fail=fail)

    name = cast(str, text("name", required=True))
    org = cast(str, text("org", required=True))
    role = cast(str, text("role", required=True))
    if role not in ROLES:
        raise fail("role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    token = text("token_sha256", required=False)
    if token is not None:
        token = _hex_digest(token, fail("token_sha256", _DIGEST_HELP))
    fingerprint = text("client_cert_sha256", required=False)
    if fingerprint is not None:
        fingerprint = _hex_digest(
            fingerprint.replace(":", ""), fail("client_cert_sha256", _DIGEST_HELP)
        )
    common_name = text("client_cert_subject_cn", required=False)
    if token is None and fingerprint is None and common_name is None:
        raise fail(None, f"has no credential; give at least one of {', '.join(_CREDENTIALS)}")
    return PrincipalEntry(
        principal=Principal(name=name, org=org, role=role),
        token_sha256=token,
        client_cert_sha256=fingerprint,
        client_cert_subject_cn=common_name,
    )


def _text_field(raw: Mapping[Any, Any], field: str, *, required: bool,
                fail: Callable[[str | None, str], PrincipalsFileError]) -> str | None:
    value = raw.get(field)
    if value is None:
        if required:
            raise fail(field, "is required")
        return None
    if not isinstance(value, str):
        raise fail(field, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise fail(field, "must not be empty")
    return value


_DIGEST_HELP = "must be 64 hex digits (a SHA-256 digest)"


def _hex_digest(value: str, error: PrincipalsFileError) -> str:
    value = value.lower()
    if not _HEX64.match(value):
        raise error
    return value


def _check_unique(source: str, entries: Sequence[PrincipalEntry]) -> None:
    def check(field: str, key: str | None, index: int, seen: dict[str, int]) -> None:
        if key is None:
            return
        if key in seen:
            raise PrincipalsFileError(
                source, f"duplicates principals[{seen[key]}].{field}", index=index, field=field
            )
        seen[key] = index

    names: dict[str, int] = {}
    tokens: dict[str, int] = {}
    fingerprints: dict[str, int] = {}
    common_names: dict[str, int] = {}
    for i, e in enumerate(entries):
        check("name", e.principal.name, i, names)
        check("token_sha256", e.token_sha256, i, tokens)
        check("client_cert_sha256", e.client_cert_sha256, i, fingerprints)
        check("client_cert_subject_cn", e.client_cert_subject_cn, i, common_names)
