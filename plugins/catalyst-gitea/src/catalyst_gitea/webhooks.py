"""``POST /v1/webhooks/gitea``: Gitea's webhook deliveries become Catalyst events.

Gitea signs each delivery's body: ``X-Gitea-Signature`` is the hex HMAC-SHA256 of the body with
the webhook's secret (``[plugins.gitea] webhook_secret``, which Catalyst sets on the webhooks it
creates). The signature is the only authentication, so the checks run in an order that tells an
unsigned caller nothing: a configured secret (else 404), the body size (413), the signature (401,
nothing published), then the document (422).

What is published (event ids derive from what happened, so a redelivery is deduplicated by the
spine, and an event Catalyst already published for its own action is not published twice):

``push`` to ``main``
    Nothing when Catalyst's user pushed (Catalyst published its commit). Otherwise each new
    commit's ``io.catalyst.git.commit`` on ``ws.<env>.git.<sha>``: a change request merged in
    Gitea's UI with the change's Applications (and ``io.catalyst.change.merged``), any other
    commit without; and when ``main`` is protected, ``io.catalyst.gitea.push.bypassed``
    (:mod:`catalyst_gitea.bypass`).
``pull_request``
    For a Catalyst change request, ``io.catalyst.change.opened|updated|closed|merged`` as the
    committer would publish them; then its policy verdict is evaluated and published as the
    ``catalyst/environment-policy`` status. A pull request Catalyst did not open gets a failing
    policy status.
``pull_request_review`` (``pull_request_approved|rejected|comment``)
    A review by a Gitea user other than Catalyst's is ``io.catalyst.change.reviewed`` (it does not
    count as an approval: approvals go through Catalyst); either way the verdict is evaluated and
    published again.

Other events are accepted (202) and ignored.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, cast

from litestar import Request, Response

# Handler annotations are resolved by Litestar at run time: these imports must stay real.
from litestar.di import NamedDependency  # noqa: TC002

from catalyst_gitea.bypass import bypass_event
from catalyst_gitea.committer import GiteaCommitter
from catalyst_kernel.api.runtime import Runtime  # noqa: TC001
from catalyst_kernel.api.webhooks import BadSignature, HmacScheme, webhook_route
from catalyst_kernel.errors import (
    BackendUnavailable,
    CatalystError,
    InvalidInput,
    NotFound,
)
from catalyst_kernel.model.names import check_environment_name, split_environment_name
from catalyst_kernel.plugins.manager import Slot
from catalyst_kernel.provisioning.committer import ChangeRequest, ChangeStatus
from catalyst_kernel.provisioning.gitformat import DEFAULT_BRANCH
from catalyst_kernel.provisioning.publishing import change_event, commit_event
from catalyst_kernel.settings import Settings  # noqa: TC001

if TYPE_CHECKING:
    from catalyst_gitea.settings import GiteaSettings
    from catalyst_kernel.model.event import Event

__all__ = ["GITEA_SIGNATURE", "SIGNATURE_HEADER", "WEBHOOK_PATH", "GiteaWebhooks", "signature_of"]

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/v1/webhooks/gitea"
SIGNATURE_HEADER: Final = "X-Gitea-Signature"
GITEA_SIGNATURE: Final = HmacScheme(
    header=SIGNATURE_HEADER,
    realm="gitea-webhook",
    refused="the delivery is not signed with the Gitea webhook secret",
)
"""``X-Gitea-Signature: <hex HMAC-SHA256 of the body>``."""
_ZERO: Final = "0" * 40
_REVIEWS: Final = {
    "pull_request_approved": "APPROVED",
    "pull_request_rejected": "REQUEST_CHANGES",
    "pull_request_comment": "COMMENT",
    "pull_request_review_approved": "APPROVED",
    "pull_request_review_rejected": "REQUEST_CHANGES",
    "pull_request_review_comment": "COMMENT",
}


def signature_of(secret: str, body: bytes) -> str:
    """Gitea's signature of ``body``: hex HMAC-SHA256 with ``secret``."""
    return GITEA_SIGNATURE.sign(secret, body)


def _kind(request: Request[Any, Any, Any]) -> str:
    """``push``, ``pull_request``, ``review`` or the delivery's own name (ignored)."""
    headers = request.headers
    event_type = headers.get("X-Gitea-Event-Type", "").strip()
    event = headers.get("X-Gitea-Event", "").strip()
    if event_type in _REVIEWS or event in _REVIEWS:
        return "review"
    if event == "push" or event_type == "push":
        return "push"
    if event == "pull_request" or event_type.startswith("pull_request"):
        return "pull_request"
    return event or event_type or "unknown"


def _login(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("login"), str):
        return cast(str, document["login"])
    return None


def _environment(payload: dict[str, Any]) -> str | None:
    """The Environment whose repository sent the delivery (``None``: not one of Catalyst's)."""
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    if not isinstance(full_name, str):
        raise InvalidInput("the delivery names no repository", field="repository.full_name")
    owner, _, name = full_name.partition("/")
    try:
        organization, _ = split_environment_name(check_environment_name(name))
    except InvalidInput:
        return None
    return name if organization == owner else None


class GiteaWebhooks:
    """The API extension serving :data:`WEBHOOK_PATH` (see the module docstring).

    :param settings: the plugin's settings (webhook secret and body limit).
    """

    name = "gitea-webhooks"

    def __init__(self, settings: GiteaSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return "GiteaWebhooks()"

    def route_handlers(self) -> list[Any]:
        receiver = self

        @webhook_route(
            WEBHOOK_PATH, summary="Receive a Gitea webhook delivery (push, pull request, review)"
        )
        async def receive_gitea_webhook(
            request: Request[Any, Any, Any],
            settings: NamedDependency[Settings],
            runtime: NamedDependency[Runtime],
        ) -> Response[Any]:
            """Verify the ``X-Gitea-Signature`` HMAC of a Gitea delivery and publish what it
            reports (pushes to ``main`` as Git events, pull requests and reviews as change
            request updates, pushes that bypassed Catalyst as flags). 202 with ``{"event",
            "environment", "published", "duplicates"}``. No bearer token: the HMAC is the
            authentication."""
            return await receiver.receive(request, settings, runtime)

        return [receive_gitea_webhook]

    # ---------------------------------------------------------------------------------------------

    async def receive(
        self, request: Request[Any, Any, Any], settings: Settings, runtime: Runtime
    ) -> Response[Any]:
        """Handle one delivery (see :meth:`route_handlers`)."""
        secret = self.settings.webhook_secret
        if not secret:
            raise NotFound("no Gitea webhook is configured")
        limit = self.settings.webhook_max_body
        try:
            body = await GITEA_SIGNATURE.read_signed(request, secret, limit)
        except BadSignature as exc:
            log.warning("gitea webhook refused: %s", exc)
            return GITEA_SIGNATURE.refusal(request, exc)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("the delivery is not a JSON document") from None
        if not isinstance(payload, dict):
            raise InvalidInput("the delivery is not a JSON object")
        kind = _kind(request)
        environment = _environment(payload)
        if kind not in ("push", "pull_request", "review") or environment is None:
            return self._answer(kind, environment, [], [])
        committer = runtime.started.get(Slot.COMMITTER)
        if not isinstance(committer, GiteaCommitter):
            raise BackendUnavailable("the gitea committer is not active; the delivery is ignored")
        source = f"/sovereigns/{settings.sovereign}/gitea-webhook"
        handlers = {"push": self._push, "pull_request": self._pull, "review": self._review}
        events = await handlers[kind](runtime, committer, source, environment, payload, request)
        published: list[str] = []
        duplicates: list[str] = []
        for event in events:
            result = await runtime.spine.publish(environment, event)
            (duplicates if result.duplicate else published).append(event.id)
        log.info(
            "gitea %s delivery for %s: published %s%s",
            kind,
            environment,
            ", ".join(published) or "nothing",
            f" ({len(duplicates)} duplicates)" if duplicates else "",
        )
        return self._answer(kind, environment, published, duplicates)

    @staticmethod
    def _answer(
        kind: str, environment: str | None, published: list[str], duplicates: list[str]
    ) -> Response[Any]:
        return Response(
            {
                "event": kind,
                "environment": environment,
                "published": published,
                "duplicates": duplicates,
            },
            status_code=HTTPStatus.ACCEPTED,
        )

    # ---------------------------------------------------------------------------------------------

    async def _push(
        self,
        runtime: Runtime,
        committer: GiteaCommitter,
        source: str,
        environment: str,
        payload: dict[str, Any],
        request: Request[Any, Any, Any],
    ) -> list[Event]:
        ref, before, after = payload.get("ref"), payload.get("before"), payload.get("after")
        if ref != f"refs/heads/{DEFAULT_BRANCH}" or not isinstance(after, str) or after == _ZERO:
            return []
        before = before if isinstance(before, str) else _ZERO
        pusher = _login(payload.get("pusher")) or _login(payload.get("sender")) or "unknown"
        if pusher == await committer.identity():
            return []  # Catalyst's own push: the committer published its events
        events: list[Event] = []
        bypassing: list[str] = []
        touched: set[str] = set()
        for info, applications in await committer.pushed_commits(environment, before, after):
            change = await committer.merged_change(environment, info.sha)
            if change is not None:  # merged in Gitea's UI, the policy status allowing it
                events.append(
                    commit_event(source, environment, info, applications=change.applications)
                )
                events.append(change_event(source, change, "merged", {"commit": info.sha}))
                continue
            events.append(commit_event(source, environment, info))
            bypassing.append(info.sha)
            touched.update(applications)
        if bypassing:
            protected_by = []
            if await committer.policy.protected(environment):
                protected_by.append("gitea")
            if before != _ZERO:
                try:
                    if await committer.policy.wanted(environment, before):
                        protected_by.append("policy")
                except (InvalidInput, NotFound) as exc:
                    log.warning(
                        "%s: the policy before %s is unreadable: %s", environment, after, exc
                    )
            if protected_by:
                log.warning(
                    "%s: %s pushed %s to protected %s, bypassing Catalyst",
                    environment,
                    pusher,
                    after[:12],
                    DEFAULT_BRANCH,
                )
                events.append(
                    bypass_event(
                        source,
                        ref=ref,
                        before=before,
                        after=after,
                        pusher=pusher,
                        commits=bypassing,
                        applications=sorted(touched),
                        protected_by=protected_by,
                        time=datetime.now(UTC),
                    )
                )
        return events

    async def _pull(
        self,
        runtime: Runtime,
        committer: GiteaCommitter,
        source: str,
        environment: str,
        payload: dict[str, Any],
        request: Request[Any, Any, Any],
    ) -> list[Event]:
        action = payload.get("action")
        pull = payload.get("pull_request")
        number = payload.get("number") or (pull.get("number") if isinstance(pull, dict) else None)
        if not isinstance(number, int):
            raise InvalidInput("the delivery names no pull request", field="number")
        try:
            change = await committer.get_change(environment, str(number))
        except NotFound:
            head = pull.get("head") if isinstance(pull, dict) else None
            sha = head.get("sha") if isinstance(head, dict) else None
            if action in ("opened", "reopened", "synchronized") and isinstance(sha, str):
                await committer.policy.foreign(environment, sha)
            return []
        events: list[Event] = []
        if action in ("opened", "reopened"):
            events.append(change_event(source, change, "opened"))
        elif action == "synchronized":
            events.append(change_event(source, change, "updated"))
        elif action == "closed" and change.status is ChangeStatus.MERGED and change.merge_commit:
            info = await committer.commit_info(environment, change.merge_commit)
            events.append(commit_event(source, environment, info, applications=change.applications))
            events.append(change_event(source, change, "merged", {"commit": change.merge_commit}))
        elif action == "closed":
            events.append(change_event(source, change, "closed"))
        if action == "closed":
            await self._settle(runtime, change)
        await self._evaluate(runtime, committer, change)
        return events

    @staticmethod
    async def _settle(runtime: Runtime, change: ChangeRequest) -> None:
        """A pull request merged or closed in Gitea's UI: its staged secret values go live or
        are discarded, as when Catalyst merges or closes it (nothing to do when it did)."""
        try:
            await runtime.changes.ended(change)
        except CatalystError as exc:
            log.warning(
                "settling the secrets of change %s in %s failed: %s",
                change.id,
                change.environment,
                exc,
            )

    async def _review(
        self,
        runtime: Runtime,
        committer: GiteaCommitter,
        source: str,
        environment: str,
        payload: dict[str, Any],
        request: Request[Any, Any, Any],
    ) -> list[Event]:
        number = payload.get("number")
        if not isinstance(number, int):
            raise InvalidInput("the delivery names no pull request", field="number")
        try:
            change = await committer.get_change(environment, str(number))
        except NotFound:
            return []
        reviewer = _login(payload.get("sender")) or "unknown"
        headers = request.headers
        state = _REVIEWS.get(headers.get("X-Gitea-Event-Type", "")) or _REVIEWS.get(
            headers.get("X-Gitea-Event", ""), "COMMENT"
        )
        events: list[Event] = []
        if reviewer not in committer.trusted_logins():
            extra = {"reviewer": reviewer, "state": state}
            events.append(change_event(source, change, "reviewed", extra))
        await self._evaluate(runtime, committer, change)
        return events

    @staticmethod
    async def _evaluate(runtime: Runtime, committer: GiteaCommitter, change: ChangeRequest) -> None:
        """Evaluate the change's policy now and publish the verdict as its status."""
        if change.status is not ChangeStatus.OPEN:
            return
        try:
            verdict = await runtime.changes.verdict(change)
            await committer.publish_verdict(change, verdict)
        except CatalystError as exc:
            log.warning(
                "%s: the policy status of change %s was not updated: %s",
                change.environment,
                change.id,
                exc,
            )
