"""The HTTP API service (SPEC §10)."""
