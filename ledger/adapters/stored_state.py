"""The bytes an event is stored as (every store keeps the same form): the
stored dict of ledger.domain.codec as compact sorted JSON, without the
position, which the store assigns inside its insert."""

from __future__ import annotations

import json

from ledger.domain.codec import event_from_stored, event_to_dict
from ledger.domain.events import LedgerEvent


def encode_state(event: LedgerEvent) -> bytes:
    body = event_to_dict(event, stored=True)
    del body["position"]  # assigned inside the insert transaction, kept in ledger_log
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_state(state: bytes, position: int) -> LedgerEvent:
    body = json.loads(state)
    body["position"] = position  # cheaper than dataclasses.replace afterwards
    return event_from_stored(body)
