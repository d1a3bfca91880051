"""sla-ledger: an event-sourced SLA accountability ledger."""

__version__ = "0.1.0"
