"""The auditor's toolkit: the verifiable event log (RFC 9162 Merkle tree),
signed checkpoints (C2SP signed notes, Ed25519) and offline export bundles.

No wall clock (times are parameters), no database, no network; the only I/O
is key files (checkpoint.py) and bundle directories (bundle.py); its
measurements are bench/audit_synthetic.py. See docs/audit.md.
"""
