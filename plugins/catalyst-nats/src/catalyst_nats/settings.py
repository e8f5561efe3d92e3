"""``[plugins.nats]``: how the spine reaches NATS and how it lays out JetStream.

Every key can also come from the environment: ``CATALYST_PLUGINS__NATS__SERVERS=nats://a:4222,
nats://b:4222``, ``CATALYST_PLUGINS__NATS__PASSWORD=…``.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any, Final

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput

__all__ = ["DEFAULT_SERVER", "NatsSettings", "Storage"]

DEFAULT_SERVER: Final = "nats://127.0.0.1:4222"
_SCHEMES: Final = ("nats://", "tls://", "ws://", "wss://")


class Storage(enum.StrEnum):
    """Where JetStream keeps the spine's streams and buckets."""

    FILE = "file"
    MEMORY = "memory"


def _between(low: float, high: float) -> Any:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if not low <= value <= high:
            raise InvalidInput(
                f"{attribute.name} must be between {low} and {high}, got {value}",
                field=attribute.name,
            )

    return validate


def _servers(_instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value:
        raise InvalidInput("at least one server URL is needed", field=attribute.name)
    for url in value:
        if not url.startswith(_SCHEMES):
            raise InvalidInput(
                f"{url.split('@')[-1]!r} is not a NATS URL "
                "(nats://host:port, tls://…, ws://…, wss://…)",
                field=attribute.name,
            )
        if "@" in url.partition("://")[2].partition("/")[0]:
            # Credentials in a URL end up in logs and error messages: they have their own keys.
            raise InvalidInput(
                "server URLs must not carry credentials; use plugins.nats.user/password, "
                "token, nkey_seed_file or creds_file",
                field=attribute.name,
            )


def _domain(_instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not value or any(c in value for c in ". *>\t")):
        raise InvalidInput(f"{value!r} is not a JetStream domain", field=attribute.name)


@frozen
class NatsSettings:
    """``[plugins.nats]``.

    Connection:

    :ivar servers: NATS URLs; the client picks one at random and fails over to the others.
    :ivar user: user name (with ``password``), for ``user``/``password`` authorization.
    :ivar password: the user's password.
    :ivar token: an authorization token (instead of user and password).
    :ivar nkey_seed_file: a file holding the NKey seed (``SU…``) of an NKey user.
    :ivar creds_file: a ``.creds`` file (user JWT and NKey seed) for decentralized auth.
    :ivar tls_ca_file: CA bundle that verifies the servers (turns TLS on).
    :ivar tls_cert_file: client certificate, for servers that verify clients (with
        ``tls_key_file``).
    :ivar tls_key_file: the client certificate's private key.
    :ivar tls_hostname: the name to verify the servers' certificates against, when it is not
        the host of the URL.
    :ivar name: the connection name servers show in their monitoring.
    :ivar connect_timeout: seconds one connection attempt may take.
    :ivar request_timeout: seconds any one request may take (JetStream API calls, publish
        acknowledgements, KV reads); a slower answer is ``BackendUnavailable``.
    :ivar reconnect_wait: seconds before the first reconnection attempt; doubles per failed
        attempt, with jitter, up to ``reconnect_wait_max``.
    :ivar reconnect_wait_max: the longest pause between reconnection attempts.
    :ivar outage_grace: seconds a KV batch write (the projector's) and a KV watch (the SSE
        feed) ride out a lost server, retrying once it is back, before they report the backend
        unavailable.

    JetStream layout:

    :ivar jetstream_domain: the JetStream domain to address (leaf-node setups), if any.
    :ivar storage: ``file`` (durable) or ``memory``.
    :ivar replicas: replicas of every stream and bucket (1, 3 or 5 in a cluster).
    :ivar history: revisions kept per KV key, delete markers included (1-64).
    :ivar duplicate_window: seconds within which a re-published event id is deduplicated.
        JetStream forgets ids after this window (the embedded spine never does); sources
        derive ids from what they saw, so keep it longer than any replay of theirs.
    :ivar ack_wait: seconds JetStream waits for the projector's acknowledgement before it
        redelivers.

    Managed mode (single-node installations):

    :ivar managed: start a local ``nats-server`` with JetStream under
        ``<data_dir>/plugins/nats/jetstream`` and connect to it (``servers`` is ignored).
    :ivar managed_binary: the ``nats-server`` executable (looked up on ``PATH``).
    :ivar managed_port: the loopback port of the managed server (0: any free port).
    """

    servers: tuple[str, ...] = field(default=(DEFAULT_SERVER,), validator=_servers)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    nkey_seed_file: Path | None = None
    creds_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_hostname: str | None = None
    name: str = "catalyst"
    connect_timeout: float = field(default=5.0, validator=_between(0.1, 120))
    request_timeout: float = field(default=5.0, validator=_between(0.05, 300))
    reconnect_wait: float = field(default=0.25, validator=_between(0.01, 60))
    reconnect_wait_max: float = field(default=10.0, validator=_between(0.01, 600))
    outage_grace: float = field(default=30.0, validator=_between(0.1, 3600))
    jetstream_domain: str | None = field(default=None, validator=_domain)
    storage: Storage = Storage.FILE
    replicas: int = field(default=1, validator=_between(1, 5))
    history: int = field(default=64, validator=_between(1, 64))
    duplicate_window: float = field(default=86_400.0, validator=_between(1, 30 * 86_400))
    ack_wait: float = field(default=30.0, validator=_between(1, 3600))
    managed: bool = False
    managed_binary: str = "nats-server"
    managed_port: int = field(default=4222, validator=_between(0, 65535))

    def __attrs_post_init__(self) -> None:
        if self.password is not None and self.user is None:
            raise InvalidInput("password needs a user", field="password")
        methods = [
            name
            for name, value in (
                ("user", self.user),
                ("token", self.token),
                ("nkey_seed_file", self.nkey_seed_file),
                ("creds_file", self.creds_file),
            )
            if value is not None
        ]
        if len(methods) > 1:
            raise InvalidInput(
                f"choose one way to authenticate, not {' and '.join(methods)}", field=methods[1]
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise InvalidInput("tls_cert_file and tls_key_file go together", field="tls_cert_file")
        if self.reconnect_wait_max < self.reconnect_wait:
            raise InvalidInput(
                "reconnect_wait_max must be at least reconnect_wait", field="reconnect_wait_max"
            )

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS (a CA, a client certificate or a ``tls://`` URL)."""
        return (
            self.tls_ca_file is not None
            or self.tls_cert_file is not None
            or any(url.startswith(("tls://", "wss://")) for url in self.servers)
        )
