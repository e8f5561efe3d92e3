"""Catalyst plugin: Kubernetes informers and Flux events as event sources."""
