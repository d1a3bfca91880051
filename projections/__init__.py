"""Read models kept up to date from the event log by one batched runner
(runner.py), each with its own tracking position, in tables of the event
store's own database (storage.py).

  sla_*.py     the SLA read models: the rows of one incident's facts
               (sla_facts_to_rows), their bitemporal writer (sla_projection),
               per-period tallies (sla_tally) and the reports answered from
               the rows as recorded at any position (sla_read_model)
  audit_*.py   the Merkle log: leaf and subtree hashes (audit_tree,
               audit_nodes) and the transparency log that signs checkpoints
               and proves over them (audit_log)
  leadership.py  which replica projects and signs
  statistics.py  planner statistics kept on PostgreSQL
"""
