"""Promotion and EnvironmentPolicy (SPEC §5.4)."""
