"""Container health check: asks the ledger's standard gRPC health service
(grpc.health.v1.Health/Check, overall status "") and exits 0 only if SERVING.

The server reports NOT_SERVING while it drains on SIGTERM, so a stopping
container turns unhealthy before it goes away.

Environment:
  SLA_LEDGER_HEALTH_TARGET  host:port to ask (default 127.0.0.1 and the port
                            of SLA_LEDGER_LISTEN, else 50051)
  SLA_LEDGER_HEALTH_CA      CA certificate (PEM) for a TLS listener; with
                            SLA_LEDGER_TLS_CERT set and no CA, the server's
                            own certificate is trusted
  SLA_LEDGER_HEALTH_TLS_NAME  name to verify in the server certificate
                            (default: the certificate's, for 127.0.0.1)
  SLA_LEDGER_HEALTH_TIMEOUT seconds (default 3)
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def target_from_env(env: dict[str, str]) -> str:
    if env.get("SLA_LEDGER_HEALTH_TARGET"):
        return env["SLA_LEDGER_HEALTH_TARGET"]
    port = env.get("SLA_LEDGER_LISTEN", "").rpartition(":")[2]
    return f"127.0.0.1:{port if port.isdigit() and port != '0' else '50051'}"


def channel_from_env(env: dict[str, str], target: str) -> grpc.Channel:
    ca_path = env.get("SLA_LEDGER_HEALTH_CA") or env.get("SLA_LEDGER_TLS_CERT")
    if not ca_path:
        return grpc.insecure_channel(target)
    with open(ca_path, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    options = []
    if env.get("SLA_LEDGER_HEALTH_TLS_NAME"):
        options.append(("grpc.ssl_target_name_override", env["SLA_LEDGER_HEALTH_TLS_NAME"]))
    return grpc.secure_channel(target, credentials, options=options)


def main() -> int:
    env = dict(os.environ)
    target = target_from_env(env)
    timeout = float(env.get("SLA_LEDGER_HEALTH_TIMEOUT", "3"))
    try:
        with channel_from_env(env, target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
    except grpc.RpcError as exc:
        print(f"unhealthy: {target}: {exc.code().name}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"unhealthy: {target}: {status}", file=sys.stderr)
        return 1
    print(f"healthy: {target}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
