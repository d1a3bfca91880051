"""The auditor's toolkit: the verifiable event log (RFC 9162 Merkle tree),
signed checkpoints (C2SP signed notes) and offline export bundles.

Pure code: no clock, no database, no network. See docs/audit.md.
"""
