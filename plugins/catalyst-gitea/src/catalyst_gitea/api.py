"""A small client of Gitea's REST API (``/api/v1``): bounded, retried, translated.

Every request has a connect and a read timeout. Transient failures are retried with exponential
back-off and jitter (tenacity): a connection that could not be made or was reset, 502/503/504 and
429 — a 429 after the ``Retry-After`` Gitea (or its proxy) asked for, as long as that is within
``rate_limit_max_wait``. A request that may have reached Gitea is retried only when repeating it
is harmless (``GET``, ``PUT``, ``PATCH``, ``DELETE``); a ``POST`` is retried only when it was
never sent (connect errors) or refused unprocessed (429). What remains becomes a kernel error
(:mod:`catalyst_gitea.errors`), whose message says what Catalyst was doing and never holds the
token.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from catalyst_gitea.errors import (
    GiteaUnreachable,
    InsufficientPermission,
    RateLimited,
    TokenRejected,
)
from catalyst_kernel.errors import BackendUnavailable, CatalystError, Conflict, NotFound

if TYPE_CHECKING:
    from catalyst_gitea.settings import GiteaSettings

__all__ = ["GiteaApi", "Json", "message_of", "translate"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
_RETRY_STATUSES: Final = frozenset({502, 503, 504})
_PAGE_SIZE: Final = 50
_MAX_PAGES: Final = 200
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def translate(status: int, said: str, what: str) -> CatalystError:
    """The kernel error for an error answer of Gitea (``said`` is Gitea's message)."""
    detail = f": {said}" if said else ""
    if status == 401:
        return TokenRejected(
            f"gitea rejected Catalyst's token (401) while {what}; check plugins.gitea.token "
            "(or token_file): it may be wrong, expired or revoked"
        )
    if status == 403:
        return InsufficientPermission(
            f"Catalyst's Gitea user may not {what} (403){detail}; grant it the permission or "
            "use a token with the needed scopes"
        )
    if status == 404:
        return NotFound(f"gitea: {what}: not found{detail}")
    if status in (405, 409, 422, 423):
        return Conflict(f"gitea refused to {what} ({status}){detail}")
    if status == 429:
        return RateLimited(f"gitea is rate limiting Catalyst (429) while {what}")
    return GiteaUnreachable(f"gitea answered {status} while {what}{detail}")


class _Transient(Exception):
    """A failure worth retrying; ``error`` is what to raise when the retries are used up."""

    def __init__(self, error: CatalystError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        # Delay-seconds (RFC 9110 says an integer; fractions are accepted too).
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def message_of(response: httpx.Response) -> str:
    """Gitea's ``message`` in an error answer (``APIError``), shortened; empty if none."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200]
    if isinstance(body, Mapping):
        for key in ("message", "Message"):
            if isinstance(body.get(key), str):
                return cast(str, body[key])[:500]
    return ""


class GiteaApi:
    """The REST client of one Gitea. ``start()`` opens the connection pool, ``close()`` ends it.

    :param settings: the plugin's settings (URL, timeouts, retries).
    :param token: the access token requests carry (``Authorization: token …``).
    :param transport: an httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        settings: GiteaSettings,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._token = token
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"GiteaApi({self.settings.url!r})"

    async def start(self) -> None:
        if self._client is not None:
            return
        settings = self.settings
        verify: str | bool = str(settings.ca_file) if settings.ca_file else settings.verify_tls
        self._client = httpx.AsyncClient(
            base_url=settings.api_url,
            headers={
                "Authorization": f"token {self._token}",
                "Accept": "application/json",
                "User-Agent": "catalyst-gitea",
            },
            timeout=httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout),
            verify=verify,
            transport=self._transport,
            follow_redirects=False,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return failure.retry_after
        settings = self.settings
        ceiling = min(
            settings.backoff_max, settings.backoff_initial * 2 ** (state.attempt_number - 1)
        )
        return float(ceiling * random.uniform(0.5, 1.0))

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        ok: Collection[int] = (200, 201, 204),
        idempotent: bool | None = None,
        retries: int | None = None,
    ) -> httpx.Response:
        """Send one request (retrying transient failures); the response if its status is in
        ``ok``.

        :param what: what Catalyst is doing, for error messages ("create the pull request").
        :param retries: retries instead of ``max_retries`` (a readiness check makes none).
        :raises CatalystError: Gitea answered another status (see :func:`translate`); a caller
            that handles a status itself lists it in ``ok``.
        :raises BackendUnavailable: Gitea could not be reached, or kept failing.
        """
        client = self._client
        if client is None:
            raise GiteaUnreachable("the gitea committer is not started (or was closed)")
        repeatable = method.upper() in _IDEMPOTENT if idempotent is None else idempotent
        retrying = AsyncRetrying(
            stop=stop_after_attempt(
                (self.settings.max_retries if retries is None else retries) + 1
            ),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        started = time.monotonic()
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._send(
                        client, method, path, json, params, what=what, repeatable=repeatable
                    )
        except _Transient as exc:
            raise exc.error from None
        log.debug(
            "gitea %s %s -> %s (%.0f ms)",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if response.status_code in ok:
            return response
        raise translate(response.status_code, message_of(response), what)

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, str | int] | None,
        *,
        what: str,
        repeatable: bool,
    ) -> httpx.Response:
        try:
            response = await client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            unreachable = GiteaUnreachable(
                f"gitea at {self.settings.base_url} did not answer while {what}: "
                f"{type(exc).__name__}: {exc}".rstrip(": ")
            )
            if isinstance(exc, _NOT_SENT) or (repeatable and isinstance(exc, httpx.TransportError)):
                raise _Transient(unreachable) from None
            raise unreachable from None
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            limit = self.settings.rate_limit_max_wait
            error = RateLimited(
                f"gitea is rate limiting Catalyst (429) while {what}"
                + (f"; it asked to wait {wait:g} s" if wait is not None else ""),
                retry_after=wait,
            )
            if wait is not None and wait > limit:
                raise error
            raise _Transient(error, wait)
        if status in _RETRY_STATUSES and repeatable:
            raise _Transient(translate(status, message_of(response), what))
        return response

    async def json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        ok: Collection[int] = (200, 201),
        idempotent: bool | None = None,
        retries: int | None = None,
    ) -> Any:
        """:meth:`request`, returning the decoded JSON body."""
        response = await self.request(
            method,
            path,
            what=what,
            json=json,
            params=params,
            ok=ok,
            idempotent=idempotent,
            retries=retries,
        )
        try:
            return response.json()
        except ValueError:
            raise GiteaUnreachable(f"gitea sent an unreadable answer while {what}") from None

    async def object(self, method: str, path: str, *, what: str, **options: Any) -> Json:
        """:meth:`json` for an answer that must be a JSON object."""
        body = await self.json(method, path, what=what, **options)
        if not isinstance(body, dict):
            raise GiteaUnreachable(f"gitea sent something else than an object while {what}")
        return body

    async def pages(
        self, path: str, *, what: str, params: Mapping[str, str | int] | None = None
    ) -> list[Json]:
        """Every item of a paginated list (``page``/``limit``), in Gitea's order."""
        items: list[Json] = []
        for page in range(1, _MAX_PAGES + 1):
            query: dict[str, str | int] = {**(params or {}), "page": page, "limit": _PAGE_SIZE}
            body = await self.json("GET", path, what=what, params=query)
            if not isinstance(body, list):
                raise GiteaUnreachable(f"gitea sent something else than a list while {what}")
            items.extend(item for item in body if isinstance(item, dict))
            if len(body) < _PAGE_SIZE:
                return items
        raise BackendUnavailable(f"gitea: more than {_MAX_PAGES} pages while {what}")
