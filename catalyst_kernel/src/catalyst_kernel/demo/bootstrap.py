"""The demo's Organization, Environments and tokens: what ``catalyst serve --demo`` sets up.

:func:`bootstrap_demo` runs once the runtime is started. It creates Organization ``acme`` and
Environments ``acme-dev``, ``acme-stg`` and ``acme-prod`` unless they exist (so a demo restarted
on its data directory carries on), and mints one development token per demo user with the
development identity provider. :meth:`DemoSetup.render` is the text the command prints.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from attrs import field, frozen

from catalyst_kernel.errors import BackendUnavailable, Conflict, SettingsError
from catalyst_kernel.identity.dev import DevIdentityProvider
from catalyst_kernel.model.names import EnvType
from catalyst_kernel.model.principal import Role
from catalyst_kernel.model.tenancy import Environment, Organization
from catalyst_kernel.plugins.manager import Slot

if TYPE_CHECKING:
    from catalyst_kernel.api.runtime import Runtime

__all__ = [
    "DEMO_ACTOR",
    "DEMO_ENVIRONMENTS",
    "DEMO_ORGANIZATION",
    "DEMO_SOVEREIGN",
    "DEMO_TOKEN_TTL",
    "DEMO_USERS",
    "DemoSetup",
    "DemoUser",
    "bootstrap_demo",
]

log = logging.getLogger(__name__)

DEMO_SOVEREIGN: Final = "demo"
"""The Sovereign name ``catalyst serve --demo`` runs as (settings key ``sovereign``)."""

DEMO_ORGANIZATION: Final = "acme"
DEMO_ENVIRONMENTS: Final = tuple(
    Environment(DEMO_ORGANIZATION, env_type).name
    for env_type in (EnvType.DEV, EnvType.STG, EnvType.PROD)
)
DEMO_ACTOR: Final = "catalyst-demo"
"""Who the directory records as creator of the demo's Organization and Environments."""

DEMO_TOKEN_TTL: Final = timedelta(hours=12)
"""How long demo tokens live, unless the identity provider's ``max_ttl`` is shorter."""


@frozen
class DemoUser:
    """One demo user: a role, who holds it, in which Organization, in which teams."""

    role: Role
    subject: str
    organization: str | None
    groups: tuple[str, ...] = ()
    summary: str = ""


DEMO_USERS: Final = (
    DemoUser(Role.SOVEREIGN_ADMIN, "admin@demo", None, summary="everything, in every Organization"),
    DemoUser(
        Role.ORG_ADMIN,
        "owner@acme",
        DEMO_ORGANIZATION,
        summary="creates Environments, installs, approves",
    ),
    DemoUser(
        Role.ORG_DEVELOPER,
        "dev@acme",
        DEMO_ORGANIZATION,
        ("team-platform",),
        summary="plans, installs, updates, promotes (team team-platform)",
    ),
    DemoUser(Role.ORG_VIEWER, "viewer@acme", DEMO_ORGANIZATION, summary="reads only"),
    DemoUser(
        Role.SECURITY_OFFICER,
        "security@acme",
        DEMO_ORGANIZATION,
        ("team-security",),
        summary="reads, approves, blocks versions (team team-security)",
    ),
)
"""Who gets a token: one user per role the demo shows."""

_EXAMPLE_APPLICATION: Final = {
    "name": "blog",
    "blueprint": "bp-wordpress",
    "config": {
        "siteTitle": "Acme blog",
        "adminEmail": "web@acme.example",
        "adminPassword": "change-me-demo-only",
    },
}


def _variable(role: Role) -> str:
    return "CATALYST_DEMO_" + role.value.upper().replace("-", "_")


@frozen
class DemoSetup:
    """What :func:`bootstrap_demo` set up.

    :ivar environments: the demo Environments, ``acme-dev``, ``acme-stg``, ``acme-prod``.
    :ivar tokens: a bearer token per role of :data:`DEMO_USERS` (not in ``repr``: whoever holds
        one acts as that user until ``expires_at``).
    :ivar data_dir: the data directory (``catalyst token`` needs it to mint more tokens).
    :ivar created: the Organization and Environments this call created (empty when every one
        existed already).
    """

    sovereign: str
    organization: str
    environments: tuple[str, ...]
    tokens: Mapping[Role, str] = field(repr=False)
    expires_at: datetime
    data_dir: Path
    created: tuple[str, ...] = ()

    def token(self, role: Role | str) -> str:
        """The token of ``role``. :raises KeyError: the demo has no user of that role."""
        return self.tokens[Role(role)]

    def render(self, base_url: str) -> str:
        """The text ``catalyst serve --demo`` prints once it serves on ``base_url``: where the
        API documentation is, the tokens (as ``export`` lines) and a few ``curl`` commands,
        following the read model with server-sent events among them."""
        base = base_url.rstrip("/")
        env = self.environments[0]
        developer = f"${_variable(Role.ORG_DEVELOPER)}"
        expires = self.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"Catalyst demo: Sovereign {self.sovereign!r}, Organization {self.organization!r}",
            f"  Environments:      {', '.join(self.environments)}",
            f"  API documentation: {base}/schema (Swagger UI: {base}/schema/swagger)",
            f"  OpenAPI document:  {base}/schema/openapi.json",
            "  Reconciler:        SIMULATED (demo only). There is no Kubernetes and no Flux:",
            "                     the demo's simulated reconciler answers every commit with",
            "                     Flux-shaped events, so Applications go Installing -> Running.",
            "",
            f"Demo tokens, valid until {expires} (anyone holding one acts as that user):",
        ]
        for user in DEMO_USERS:
            if user.role not in self.tokens:
                continue
            lines.append(f"  # {user.role.value} {user.subject}: {user.summary}")
            lines.append(f"  export {_variable(user.role)}={self.tokens[user.role]}")
        body = shlex.quote(json.dumps(_EXAMPLE_APPLICATION))
        auth = f'-H "Authorization: Bearer {developer}"'
        lines += [
            "  # more tokens (same signing key and issuer):",
            f"  #   catalyst token --data-dir {shlex.quote(str(self.data_dir))} "
            f"--sovereign {self.sovereign} --role org-viewer --org {self.organization}",
            "",
            "Try it (after the export lines above):",
            f"  curl -s {auth} {base}/v1/environments/{env}/applications",
            "  # in a second terminal, follow the read model (server-sent events):",
            f"  curl -N {auth} {base}/v1/environments/{env}/events",
            "  # install WordPress with its own PostgreSQL; both go Installing -> Running:",
            f"  curl -s {auth} -H 'Content-Type: application/json' \\",
            f"       -d {body} \\",
            f"       {base}/v1/environments/{env}/applications",
            f"  curl -s {auth} {base}/v1/environments/{env}/applications/blog/history",
        ]
        return "\n".join(lines) + "\n"


def _identity(runtime: Runtime) -> DevIdentityProvider:
    provider = runtime.started.get(Slot.IDENTITY)
    if provider is None:
        reason = runtime.inactive.get(Slot.IDENTITY, "the service is not running")
        raise BackendUnavailable(f"the demo needs the identity provider: {reason}")
    if not isinstance(provider, DevIdentityProvider):
        raise SettingsError(
            "the demo mints its tokens with the development identity provider: set "
            "providers.identity = 'dev'",
            field="providers.identity",
        )
    return provider


async def _ensure_organization(runtime: Runtime, created: list[str]) -> None:
    directory = runtime.directory
    if await directory.find_organization(DEMO_ORGANIZATION) is not None:
        return
    try:
        await directory.create_organization(Organization(DEMO_ORGANIZATION), actor=DEMO_ACTOR)
    except Conflict:
        return  # created concurrently: it exists, which is all the demo needs
    created.append(DEMO_ORGANIZATION)


async def _ensure_environment(runtime: Runtime, name: str, created: list[str]) -> None:
    directory = runtime.directory
    if await directory.find_environment(name) is not None:
        return
    environment = Environment.parse(name)
    try:
        await directory.create_environment(
            environment,
            runtime.committer,
            sovereign=runtime.settings.sovereign,
            repository_url=runtime.settings.repository_url(environment.organization, name),
            actor=DEMO_ACTOR,
        )
    except Conflict:
        return
    created.append(name)


async def bootstrap_demo(runtime: Runtime) -> DemoSetup:
    """Create the demo's Organization and Environments unless they exist, and mint its tokens.

    Idempotent: on a data directory where the demo ran before, nothing is created again.

    :param runtime: a started runtime (``async with runtime:``) whose identity provider is the
        development one (``providers.identity = "dev"``, the default).
    :raises BackendUnavailable: the runtime is not running, or has no identity provider.
    :raises SettingsError: the identity provider is not the development one.
    """
    identity = _identity(runtime)
    created: list[str] = []
    await _ensure_organization(runtime, created)
    for name in DEMO_ENVIRONMENTS:
        await _ensure_environment(runtime, name, created)
    ttl = min(DEMO_TOKEN_TTL, identity.max_ttl)
    issued = datetime.now(UTC).replace(microsecond=0)
    tokens = {
        user.role: identity.mint(
            user.subject,
            organization=user.organization,
            role=user.role,
            groups=user.groups,
            ttl=ttl,
        )
        for user in DEMO_USERS
    }
    if created:
        log.info("demo: created %s", ", ".join(created))
    return DemoSetup(
        sovereign=runtime.settings.sovereign,
        organization=DEMO_ORGANIZATION,
        environments=DEMO_ENVIRONMENTS,
        tokens=tokens,
        expires_at=issued + ttl,
        data_dir=runtime.settings.data_dir,
        created=tuple(created),
    )
