"""Identity: bearer tokens to Principals (SPEC §7)."""
