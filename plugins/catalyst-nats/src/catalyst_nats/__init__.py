"""Catalyst plugin: NATS JetStream spine and KV read model.

The ``nats`` spine keeps each Environment's events in a JetStream stream and its read model in
a JetStream KV bucket; ``python -m catalyst_nats accounts`` renders the server's per-Organization
accounts. See ``docs/nats.md``.
"""

from catalyst_nats.accounts import AccountsConfig, render_accounts
from catalyst_nats.consumer import NatsConsumer
from catalyst_nats.kv import NatsKeyValue
from catalyst_nats.settings import NatsSettings, Storage
from catalyst_nats.spine import NatsSpine

__all__ = [
    "AccountsConfig",
    "NatsConsumer",
    "NatsKeyValue",
    "NatsSettings",
    "NatsSpine",
    "Storage",
    "render_accounts",
]
