"""Read models maintained from the event log (issue 3: not yet built; reports
are computed from the store at their knowledge cut)."""
