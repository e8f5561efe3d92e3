"""Catalyst plugin: OpenBao secret backend."""
