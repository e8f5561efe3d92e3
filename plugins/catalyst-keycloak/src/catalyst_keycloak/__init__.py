"""Catalyst plugin: Keycloak identity providers (per-organization and shared-sovereign)."""
