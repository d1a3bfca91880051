"""The composition root: the one place that builds the stores, read models,
application services, gRPC servicers, metrics and the console, and wires
them together (`sla-ledger serve`, the tests' server harness and the
benchmarks start a ledger through here)."""
