"""Pure domain: frozen values and functions, no I/O, no clock, no protobuf.

tests/unit/test_layering.py enforces the import rules.
"""
