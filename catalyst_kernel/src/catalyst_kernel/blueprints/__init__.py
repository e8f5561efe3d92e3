"""Blueprints: the catalog, its sources, the blueprint.yaml schema and lint (SPEC §5.1)."""
