"""Application services: orchestrate the domain and the store, no I/O of their own."""
