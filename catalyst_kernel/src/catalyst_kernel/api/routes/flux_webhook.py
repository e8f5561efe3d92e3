"""``POST /v1/webhooks/flux/{env}``: the Flux event receiver (built-in event source, SPEC §6).

Flux's notification-controller, with a ``generic-hmac`` Provider, POSTs each Flux event as JSON
and signs the body: ``X-Signature: <hash>=<hex HMAC of the body>`` with the Provider secret's
``token`` as key. The secret of each Environment is ``[plugins.core] flux_webhook_secrets``.

The HMAC is the only authentication (notification-controller sends no bearer token), so the
order of checks gives nothing away to an unsigned caller: the Environment name's syntax (422),
a configured secret (404, the same answer whether or not the Environment exists), the body size
(413), the signature (401), then the document (422). Nothing is published unless all pass. The
translation into an event is :mod:`catalyst_kernel.readside.flux_events`.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any, Final, cast

from litestar import Request, Response

# Handler annotations are resolved by Litestar at run time: these imports must stay real.
from litestar.di import NamedDependency  # noqa: TC002
from litestar.params import FromPath  # noqa: TC002

from catalyst_kernel.api.runtime import Runtime  # noqa: TC001
from catalyst_kernel.api.webhooks import BadSignature, HmacScheme, webhook_route
from catalyst_kernel.builtin.core import DEFAULT_FLUX_WEBHOOK_MAX_BODY, CoreSettings
from catalyst_kernel.errors import BackendUnavailable, InvalidInput, NotFound
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.plugins.manager import PluginManager, Slot
from catalyst_kernel.readside.flux_events import (
    FLUX_KINDS,
    notification_event,
    parse_notification,
)
from catalyst_kernel.readside.spine import Spine
from catalyst_kernel.settings import Settings  # noqa: TC001

__all__ = ["FLUX_SIGNATURE", "ROUTES", "SIGNATURE_HEADER", "receive_flux_notification"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Signature"
FLUX_SIGNATURE: Final = HmacScheme(
    header=SIGNATURE_HEADER,
    realm="flux-webhook",
    refused="the notification is not signed with this Environment's secret",
    prefixed=True,
    algorithms=("sha256", "sha384", "sha512"),
)
"""``X-Signature: <hash>=<hex HMAC of the body>`` (``generic-hmac``), sha256, sha384 or sha512."""
_NO_WEBHOOK: Final = "no Flux webhook for this Environment"


def _core_settings(manager: PluginManager) -> CoreSettings:
    settings = manager.plugin_settings("core")
    return settings if isinstance(settings, CoreSettings) else CoreSettings()


def _spine(runtime: Runtime) -> Spine:
    spine = runtime.started.get(Slot.SPINE)
    if spine is None:
        raise BackendUnavailable("the spine is not running; the notification was not recorded")
    return cast(Spine, spine)


@webhook_route(
    "/v1/webhooks/flux/{env:str}", summary="Receive a Flux notification (generic-hmac provider)"
)
async def receive_flux_notification(
    request: Request[Any, Any, Any],
    env: FromPath[str],
    settings: NamedDependency[Settings],
    manager: NamedDependency[PluginManager],
    runtime: NamedDependency[Runtime],
) -> Response[Any]:
    """Verify the ``X-Signature`` HMAC of a Flux notification-controller ``generic-hmac``
    notification and publish it on the Environment's stream as
    ``io.catalyst.flux.object.changed`` (Kustomizations and HelmReleases; other kinds are
    accepted and ignored). 202 with ``{"id", "duplicate", "published"}``; a delivery retried is
    deduplicated by its id. No bearer token: the HMAC is the authentication."""
    check_environment_name(env)
    core = _core_settings(manager)
    secret = core.flux_webhook_secrets.get(env)
    if not secret:
        raise NotFound(_NO_WEBHOOK)
    limit = core.flux_webhook_max_body or DEFAULT_FLUX_WEBHOOK_MAX_BODY
    try:
        body = await FLUX_SIGNATURE.read_signed(request, secret, limit)
    except BadSignature as exc:
        logger.warning("Flux notification for %s refused: %s", env, exc)
        return FLUX_SIGNATURE.refusal(request, exc)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the notification is not a JSON document") from None
    notification = parse_notification(document)
    if notification.kind not in FLUX_KINDS:
        logger.info(
            "Flux notification for %s ignored: %s %s is not a Kustomization or HelmRelease",
            env,
            notification.kind,
            notification.name,
        )
        return Response(
            {"id": None, "duplicate": False, "published": False}, status_code=HTTPStatus.ACCEPTED
        )
    event = notification_event(
        notification, source=f"/sovereigns/{settings.sovereign}/flux-webhook"
    )
    published = await _spine(runtime).publish(env, event)
    logger.info(
        "Flux notification for %s: %s %s %s (%s) published as %s%s",
        env,
        notification.kind,
        notification.name,
        notification.reason,
        notification.severity,
        event.id,
        " (duplicate)" if published.duplicate else "",
    )
    return Response(
        {"id": event.id, "duplicate": published.duplicate, "published": True},
        status_code=HTTPStatus.ACCEPTED,
    )


ROUTES: Final = [receive_flux_notification]
