"""gRPC transport: authentication, error mapping and the server (issue 2, items 5-6).

Servicers live next to this package's modules but are written by the
application layer; they use ``current_principal()`` and ``@translate_errors``.
"""

from ledger.grpc.auth import AuthInterceptor, current_principal, principal_scope
from ledger.grpc.errors import status_for, translate_errors
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
    "translate_errors",
]
