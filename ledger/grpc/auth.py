"""Who is calling: bearer tokens and client certificates -> Principal.

``AuthInterceptor`` wraps every method handler except health checks and server
reflection. Before the servicer runs it resolves the caller:

1. no directory (local mode): every caller is ``LOCAL_ADMIN``;
2. ``authorization: Bearer <token>`` metadata: the token's hash must be in the
   directory (a present but unknown token is refused even if a certificate
   would match: an explicit credential is never silently ignored);
3. otherwise, with mutual TLS, the peer certificate the server verified against
   the client CA: by SHA-256 fingerprint of its DER, then by subject CN;
4. otherwise the call ends UNAUTHENTICATED (the message never echoes a token).

The principal is stored in a contextvar read by ``current_principal()``, and
``principal``/``org``/``role`` are bound into ``structlog.contextvars`` for the
canonical log line. Each RPC runs in its own asyncio task with its own copy of
the context, so nothing leaks between calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import structlog

from ledger.adapters.principals_file import PrincipalDirectory
from ledger.domain.access import LOCAL_ADMIN, Principal
from ledger.grpc.errors import unauthenticated_status
from ledger.grpc.interceptor import Proceed, Rpc, ServerInterceptor

log = structlog.get_logger("ledger.grpc.auth")

#: Method-name prefixes that need no credentials (load balancers, buf curl, grpcurl).
EXEMPT_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "ledger_principal", default=None
)


class NoPrincipalError(RuntimeError):
    """``current_principal()`` was called outside an authenticated call."""


def current_principal() -> Principal:
    """The authenticated caller of the RPC being served."""
    principal = _principal.get()
    if principal is None:
        raise NoPrincipalError(
            "no principal: current_principal() outside an authenticated gRPC call "
            "(is AuthInterceptor installed? health/reflection methods have none)"
        )
    return principal


def optional_principal() -> Principal | None:
    """The caller, or None outside an authenticated call."""
    return _principal.get()


@contextlib.contextmanager
def principal_scope(principal: Principal) -> Iterator[Principal]:
    """Acts as ``principal`` inside the block (in-process callers and tests)."""
    token = _principal.set(principal)
    try:
        yield principal
    finally:
        _principal.reset(token)


class Unauthenticated(Exception):
    """Credentials missing or not recognised; ``message`` is safe to show."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


_BEARER_HELP = "send 'authorization: Bearer <token>' metadata"


def _bearer_token(metadata: Any) -> str | None:
    values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated("more than one authorization header", "MALFORMED_CREDENTIALS")
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    scheme, _, token = str(value).strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            f"malformed authorization metadata: {_BEARER_HELP}", "MALFORMED_CREDENTIALS"
        )
    return token.strip()


def _peer_certificate(context: Any) -> tuple[bytes | None, str | None]:
    """(DER, subject CN) of the TLS peer certificate the server verified, if any."""
    if not context.peer_identities():  # None unless the peer is authenticated
        return None, None
    auth = context.auth_context() or {}
    der: bytes | None = None
    pems = auth.get("x509_pem_cert") or []
    if pems:
        try:
            der = ssl.PEM_cert_to_DER_cert(pems[0].decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            der = None
    names = auth.get("x509_common_name") or []
    common_name = names[0].decode("utf-8", "replace") if names else None
    return der, common_name


def authenticate(directory: PrincipalDirectory | None, context: Any) -> Principal:
    """Resolves the caller of ``context``; raises ``Unauthenticated``."""
    if directory is None:
        return LOCAL_ADMIN
    token = _bearer_token(context.invocation_metadata())
    if token is not None:
        principal = directory.by_token(token)
        if principal is None:
            raise Unauthenticated("invalid bearer token", "INVALID_TOKEN")
        return principal
    der, common_name = _peer_certificate(context)
    if der is None and common_name is None:
        raise Unauthenticated(
            f"missing credentials: {_BEARER_HELP} or present a client certificate",
            "MISSING_CREDENTIALS",
        )
    principal = directory.by_certificate(der) if der is not None else None
    if principal is None and common_name is not None:
        principal = directory.by_certificate(common_name)
    if principal is None:
        raise Unauthenticated(
            "client certificate is not mapped to any principal", "UNKNOWN_CERTIFICATE"
        )
    return principal


class AuthInterceptor(ServerInterceptor):
    """Authenticates every non-exempt call before its servicer method runs."""

    exempt = EXEMPT_PREFIXES

    def __init__(self, directory: PrincipalDirectory | None) -> None:
        self._directory = directory

    @property
    def local_mode(self) -> bool:
        return self._directory is None

    async def intercept(self, rpc: Rpc, request: Any, context: Any,
                        proceed: Proceed) -> AsyncIterator[Any]:
        status = _enter_or_status(self._directory, context, rpc.method)
        if status is not None:
            await context.abort_with_status(status)
        async for response in proceed(request, context):
            yield response


def _enter_or_status(
    directory: PrincipalDirectory | None, context: Any, method: str
) -> grpc.Status | None:
    """Authenticates and binds the principal; returns a status to abort with on failure."""
    try:
        principal = authenticate(directory, context)
    except Unauthenticated as exc:
        log.warning(
            "unauthenticated call refused", method=method, peer=context.peer(), reason=exc.reason
        )
        return unauthenticated_status(exc.message, exc.reason)
    _principal.set(principal)
    structlog.contextvars.bind_contextvars(
        principal=principal.name, org=principal.org, role=principal.role
    )
    return None
