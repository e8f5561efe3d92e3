"""The read side: events, the spine, projections and fan-out (SPEC §6)."""
