"""Catalyst plugin: Crossplane claims, compositions and resource watches."""
