"""Observability: Prometheus metrics, the gRPC interceptor and structured logging.

- ``ledger.observability.metrics``: every metric of the ledger, on its own registry
  (``LedgerMetrics``); its parts: ``labels`` (bounded label values), ``grpc_methods``
  (the gRPC catalogue), ``sla_snapshot`` and ``sla_collector`` (the scrape-time SLA
  figures), ``db_pool`` (pool gauges) and ``listener`` (``start_metrics_server``).
- ``ledger.observability.grpc_interceptor``: ``ObservabilityInterceptor`` for the
  ``grpc.aio`` server (go-grpc-prometheus metrics and one canonical log line per RPC).
- ``ledger.observability.logging``: ``configure_logging`` (structlog, JSON to stdout,
  secrets redacted).
- ``ledger.observability.grafana``: the dashboard sanity check used by ``ops/check``.
"""
