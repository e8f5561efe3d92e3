"""Catalyst plugin: NATS JetStream spine and KV read model."""
