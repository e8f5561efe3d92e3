"""The write side: plans, manifest composition and Environment repositories (SPEC §5)."""
