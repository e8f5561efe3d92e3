"""Secrets: values kept out of Git, referenced by ExternalSecrets (SPEC §8)."""
