"""The partner's package: a typed client of the ledger's gRPC API.

    from ledger.client import LedgerClient
    with LedgerClient("ledger.example:50051", token=os.environ["LEDGER_TOKEN"]) as client:
        client.append([LedgerEvent(...)])

It depends on grpc, protobuf, the generated ``ledger.v1`` messages, the pure
domain values (``ledger.domain``) and the offline audit toolkit
(``ledger.audit``) only, never on the server's storage or wiring, so it can ship
as its own small distribution. ``convert`` is the one place where protobuf
messages and domain values meet (the server's servicers use it too), with
``report_convert`` for the typed reports;
``errors.decode_error`` reads a refusal's details back.
"""

from ledger.client.audit_client import AuditClient
from ledger.client.errors import DecodedError, decode_error
from ledger.client.ledger_client import LedgerClient, retry_service_config
from ledger.domain.events import AppendResult

__all__ = ["AppendResult", "AuditClient", "DecodedError", "LedgerClient", "decode_error",
           "retry_service_config"]
