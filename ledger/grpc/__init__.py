"""gRPC transport: the servicers, the interceptors (one base,
``ledger.grpc.interceptor``: authentication, the guard with its limits and the
exception-to-status table) and the server.

Servicers convert, call the application and convert back; they read the caller
with ``current_principal()`` and raise domain errors, which the guard maps to
statuses for every method.
"""

from ledger.grpc.auth import AuthInterceptor, current_principal, principal_scope
from ledger.grpc.errors import status_for
from ledger.grpc.server import (
    RunningServer,
    ServerConfig,
    ServerConfigError,
    build_server,
    install_signal_handlers,
)

__all__ = [
    "AuthInterceptor",
    "RunningServer",
    "ServerConfig",
    "ServerConfigError",
    "build_server",
    "current_principal",
    "install_signal_handlers",
    "principal_scope",
    "status_for",
]
