"""The leaf bytes of a stored event: what the Merkle log hashes and what an
export line contains.

    leaf bytes = UTF-8( JCS( event_to_dict(event, stored=True) ) )

JCS is the JSON Canonicalization Scheme of RFC 8785. The event dict only holds
strings, integers (|n| <= 2**53 - 1), lists and objects with string keys, so
JCS reduces to: object members sorted by key (UTF-16 code units, i.e. plain
byte order for the ASCII keys the ledger uses), no insignificant whitespace,
strings escaped only where JSON requires it (`\\"`, `\\\\`, `\\b \\f \\n \\r \\t`,
other controls as lowercase `\\u00xx`; everything else literal UTF-8), integers
in plain decimal. Floats, NaN, lone surrogates and larger integers are refused
rather than encoded ambiguously. In Python that is exactly

    json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
               allow_nan=False).encode()

and any RFC 8785 library in another language produces the same bytes from the
parsed line. A leaf never contains a raw newline, so JSON Lines holds one leaf
per line. docs/audit.md has the field list and a worked example.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.audit.merkle import leaf_hash
from ledger.domain.codec import event_from_dict, event_to_dict
from ledger.domain.events import LedgerEvent

MAX_SAFE_INTEGER = 2**53 - 1


class LeafError(ValueError):
    """Bytes that are not a canonical leaf, or a value JCS cannot encode."""


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _normalise(value: Any, path: str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise LeafError(f"{path}: integer {value} is beyond JSON's exact range")
        return value
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise LeafError(f"{path}: object key {key!r} is not a string")
        keys = sorted(value) if all(k.isascii() for k in value) else sorted(
            value, key=_utf16_order)
        return {k: _normalise(value[k], f"{path}.{k}") for k in keys}
    if isinstance(value, list | tuple):
        return [_normalise(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise LeafError(f"{path}: {type(value).__name__} has no canonical JSON form")


def rfc8785_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value made of str, int, bool, None, list, dict."""
    normal = _normalise(value, "$")
    text = json.dumps(normal, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LeafError(f"not encodable as UTF-8 (lone surrogate?): {exc.reason}") from None


def leaf_bytes(event: LedgerEvent) -> bytes:
    """The canonical leaf bytes of a *stored* event (position >= 1)."""
    if event.position < 1:
        raise LeafError(f"event {event.event_id!r} is not stored (position {event.position})")
    return rfc8785_bytes(event_to_dict(event, stored=True))


def event_leaf_hash(event: LedgerEvent) -> bytes:
    return leaf_hash(leaf_bytes(event))


def parse_leaf(data: bytes) -> dict[str, Any]:
    """The JSON object of leaf bytes; LeafError unless they are canonical."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LeafError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LeafError("a leaf is a JSON object")
    if rfc8785_bytes(value) != data:
        raise LeafError("not in canonical (RFC 8785) form")
    return value


def event_from_leaf(data: bytes) -> LedgerEvent:
    """The stored event of canonical leaf bytes (InvalidArgument if the object
    is not a valid event)."""
    return event_from_dict(parse_leaf(data), "leaf")
