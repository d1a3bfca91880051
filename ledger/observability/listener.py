"""The metrics HTTP listener: ``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

#: Loopback by default: the metrics listener has no authentication.
DEFAULT_METRICS_ADDRESS = "127.0.0.1:9464"


class MetricsServer:
    """The running metrics listener; ``close()`` stops it."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        #: path -> () -> (ok, text): /healthz, and /readyz once a ledger is wired
        self.probes: dict[str, Callable[[], tuple[bool, str]]] = {}

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port). The host is required."""
    host, sep, port = address.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f"metrics address {address!r}: expected host:port, e.g. {DEFAULT_METRICS_ADDRESS}"
        )
    return host, int(port)


def start_metrics_server(address: str, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` on ``http://address/metrics`` from a daemon thread,
    with ``/healthz`` (the process answers) and ``/readyz`` (the replica's
    readiness, ledger.application.readiness: 200 or 503 with the reason).

    Port 0 binds an ephemeral port (``MetricsServer.port``). There is no
    authentication: keep it on loopback or a private network.
    """
    from wsgiref.simple_server import make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

    host, port = parse_address(address)
    metrics_app = make_wsgi_app(registry)
    probes: dict[str, Callable[[], tuple[bool, str]]] = {"/healthz": lambda: (True, "alive")}

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            return metrics_app(environ, start_response)
        # Without a ledger wired (tools, tests) there is nothing to be unready about.
        ok, reason = probes.get(path, lambda: (True, "ready"))()
        start_response("200 OK" if ok else "503 Service Unavailable",
                       [("Content-Type", "text/plain; charset=utf-8")])
        return [(reason + "\n").encode()]

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port)[0][0]

    httpd = make_server(host, port, app, Server, handler_class=_SilentHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server = MetricsServer(httpd, thread)
    server.probes = probes
    return server
