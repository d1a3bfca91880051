"""How the ledger's events are grouped into streams, and each stream's stable id.

Each incident and each agreement is one stream. Incident ids are scoped by
their agreement (reading 28; ids cannot hold "/"), so an incident's stream
is named ``incident:AGREEMENT/ID``. The id of a stream is a name-based UUID,
the same in every store and every process.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("5b1f5e8e-3a57-4c1e-9f0e-6c2d7d0a51a1")


def stream_uuid(kind: str, ident: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{ident}")


def incident_name(agreement_id: str, incident_id: str) -> str:
    """An incident's stream name. ``ledger_log.stream`` keeps ``incident:ID``
    (``log_stream``)."""
    return f"incident:{agreement_id}/{incident_id}"


def incident_stream(agreement_id: str, incident_id: str) -> uuid.UUID:
    return stream_for(incident_name(agreement_id, incident_id))


def log_stream(name: str) -> str:
    """The ``ledger_log.stream`` value of a stream name (rows carry their agreement)."""
    if name.startswith("incident:") and "/" in name:
        return "incident:" + name.split("/", 1)[1]
    return name


def agreement_stream(agreement_id: str) -> uuid.UUID:
    return stream_uuid("agreement", agreement_id)


def stream_for(name: str) -> uuid.UUID:
    """The id of a stream name ("incident:AGREEMENT/ID" or "agreement:ID")."""
    kind, ident = name.split(":", 1)
    return stream_uuid(kind, ident)
