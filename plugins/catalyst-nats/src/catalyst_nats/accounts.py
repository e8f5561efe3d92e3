"""Per-Organization NATS accounts: the server configuration that isolates Organizations.

The spine keeps every stream and bucket in one account, the *system account* (``CATALYST``,
not NATS's own ``$SYS``), where Catalyst (API and projector) connects. Each Organization gets
an account of its own, ``ORG_<ORG>``, that holds no data and sees exactly what the system
account exports to it, for each of its five possible Environments (``<org>-prod`` … ``<org>-poc``:
``ws.<org>-*.>`` spelt out, since a NATS wildcard is a whole token):

========================================================  =========  ===========================
subject                                                   import     lets the Organization's
                                                                     users…
========================================================  =========  ===========================
``ws.<env>.>``                                            service    publish events (JetStream
                                                                     acknowledges, deduplicates)
``ws.<env>.>``                                            stream     subscribe to its events
``$JS.API.DIRECT.GET.KV_ws-<env>-state`` (and ``.>``)     service    read its KV (direct get)
``$KV.ws-<env>-state.>``                                  stream     follow its KV changes live
========================================================  =========  ===========================

Exports name their one importing account, so no Organization can import another's subjects;
an Organization's users are further limited by permissions to those subjects (and their reply
inboxes). Anything else they publish reaches nothing: their account has no JetStream and no
other imports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import EnvType, check_organization_name
from catalyst_kernel.readside.subjects import SUBJECT_PREFIX, kv_bucket
from catalyst_nats.names import kv_stream

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "AccountsConfig",
    "OrganizationAccess",
    "organization_access",
    "organization_account",
    "password_variable",
    "render_accounts",
]

_INBOXES: Final = "_INBOX.>"


def organization_account(organization: str) -> str:
    """``ORG_<ORG>``: the account name of an Organization (``-`` becomes ``_``)."""
    return "ORG_" + check_organization_name(organization).upper().replace("-", "_")


def password_variable(organization: str) -> str:
    """``NATS_PASSWORD_<ORG>``: the environment variable holding its user's password."""
    return "NATS_PASSWORD_" + check_organization_name(organization).upper().replace("-", "_")


@frozen
class OrganizationAccess:
    """What one Organization's account imports, by kind."""

    publish_services: tuple[str, ...]
    """Services whose requests it publishes (events, KV direct gets)."""

    streams: tuple[str, ...]
    """Subjects it may subscribe to (its events and KV changes)."""


def organization_access(organization: str) -> OrganizationAccess:
    """The subjects an Organization's account imports from the system account."""
    check_organization_name(organization)
    services: list[str] = []
    streams: list[str] = []
    for env_type in EnvType:
        environment = f"{organization}-{env_type.value}"
        bucket = kv_bucket(environment)
        direct = f"$JS.API.DIRECT.GET.{kv_stream(bucket)}"
        services += [f"{SUBJECT_PREFIX}.{environment}.>", direct, f"{direct}.>"]
        streams += [f"{SUBJECT_PREFIX}.{environment}.>", f"$KV.{bucket}.>"]
    return OrganizationAccess(tuple(services), tuple(streams))


def _user_key(value: str) -> str:
    if not (value.startswith("U") and len(value) == 56 and value.isalnum() and value.isupper()):
        raise InvalidInput(f"{value!r} is not a user NKey (U…, 56 characters)", field="nkey")
    return value


@frozen
class AccountsConfig:
    """How :func:`render_accounts` names the system account and authenticates users.

    :ivar system_account: the account the spine lives in (Catalyst connects to it).
    :ivar system_user: Catalyst's user in it.
    :ivar system_password_variable: the environment variable of that user's password (the
        server reads it when it loads the configuration; the file holds no secret).
    :ivar system_nkey: authenticate Catalyst with this user NKey instead of a password.
    :ivar organization_nkeys: Organization → user NKey, for Organizations whose users
        authenticate with an NKey; the others get user ``<org>`` with the password in
        ``NATS_PASSWORD_<ORG>``.
    """

    system_account: str = "CATALYST"
    system_user: str = "catalyst"
    system_password_variable: str = "CATALYST_NATS_PASSWORD"
    system_nkey: str | None = None
    organization_nkeys: Mapping[str, str] = field(factory=dict)


def _q(text: str) -> str:
    return json.dumps(text)


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(_q(item) for item in items) + "]"


def _user(name: str, password_variable: str, nkey: str | None, permissions: str = "") -> str:
    extra = f", permissions: {permissions}" if permissions else ""
    if nkey is not None:
        return f"{{nkey: {_q(_user_key(nkey))}{extra}}}"
    return f"{{user: {_q(name)}, password: ${password_variable}{extra}}}"


def render_accounts(organizations: Sequence[str], config: AccountsConfig | None = None) -> str:
    """The ``accounts { … }`` block of a ``nats-server`` configuration (include it in the
    server's file). Organizations are checked against the naming rules and sorted.

    :raises InvalidInput: a name breaks the rules, an NKey is malformed, or an NKey is given
        for an Organization not rendered.
    """
    config = config or AccountsConfig()
    names = sorted({check_organization_name(name) for name in organizations})
    unknown = set(config.organization_nkeys) - set(names)
    if unknown:
        raise InvalidInput(f"NKeys given for unknown Organizations: {', '.join(sorted(unknown))}")
    system = config.system_account
    lines = [
        f"# Catalyst spine accounts for {len(names)} Organization(s): {', '.join(names) or '-'}.",
        "# Rendered by `python -m catalyst_nats accounts`; see docs/nats.md.",
        "accounts {",
        f"  {system}: {{",
        "    jetstream: enabled",
        "    users: [",
        "      " + _user(config.system_user, config.system_password_variable, config.system_nkey),
        "    ]",
        "    exports: [",
    ]
    for name in names:
        account = organization_account(name)
        access = organization_access(name)
        lines.append(f"      # {name}")
        lines += [
            f"      {{service: {_q(subject)}, accounts: [{account}]}}"
            for subject in access.publish_services
        ]
        lines += [
            f"      {{stream: {_q(subject)}, accounts: [{account}]}}" for subject in access.streams
        ]
    lines += ["    ]", "  }"]
    for name in names:
        account = organization_account(name)
        access = organization_access(name)
        permissions = (
            f"{{publish: {{allow: {_list(access.publish_services)}}}, "
            f"subscribe: {{allow: {_list((_INBOXES, *access.streams))}}}}}"
        )
        user = _user(
            name, password_variable(name), config.organization_nkeys.get(name), permissions
        )
        lines += [
            f"  {account}: {{",
            "    users: [",
            f"      {user}",
            "    ]",
            "    imports: [",
        ]
        lines += [
            f"      {{service: {{account: {system}, subject: {_q(subject)}}}}}"
            for subject in access.publish_services
        ]
        lines += [
            f"      {{stream: {{account: {system}, subject: {_q(subject)}}}}}"
            for subject in access.streams
        ]
        lines += ["    ]", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"
