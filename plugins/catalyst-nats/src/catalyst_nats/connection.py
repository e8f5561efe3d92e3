"""One NATS connection: authentication, TLS, reconnection with back-off, bounded requests.

The connection never makes its owner wait for a server that is down. :meth:`Connection.start`
tries once (bounded by ``connect_timeout``) and, failing that, keeps trying in the background
with exponential back-off; meanwhile every request fails at once with
:class:`~catalyst_kernel.errors.BackendUnavailable` naming the servers and the last error, and
:meth:`Connection.readiness` says the same. Once connected, nats-py reconnects on its own, paced
by the same back-off (its ``reconnect_to_server_handler``).

Requests go through one wildcard reply subscription (a *mux*): a batch of publishes is written at
once and their acknowledgements are awaited together, under one deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import ssl
from typing import TYPE_CHECKING, Any, Final, cast

import anyio
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoServersError

from catalyst_kernel.errors import (
    BackendUnavailable,
    CatalystError,
    Conflict,
    InvalidInput,
    NotFound,
)
from catalyst_kernel.health import Readiness
from catalyst_nats import nkeys
from catalyst_nats.binary import MINIMUM_VERSION, supported

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from nats.aio.client import Server
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from catalyst_nats.settings import NatsSettings

__all__ = ["Connection", "Request", "acknowledged", "api_error", "status_of"]

log = logging.getLogger(__name__)

Request = tuple[str, bytes, "Mapping[str, str] | None"]
"""A request of a batch: subject, payload, headers."""

_NO_RESPONDERS: Final = "503"
# JetStream API error codes with a meaning of their own (nats-server's errors.json).
_CONFLICT_CODES: Final = frozenset(
    {
        10058,  # stream name already in use with a different configuration
        10071,  # wrong last sequence
        10148,  # consumer already exists (with another configuration)
        10164,  # wrong last sequence (constant)
    }
)
_PING_INTERVAL: Final = 10
_RECONNECT_POLL: Final = 0.05
_MAX_OUTSTANDING_PINGS: Final = 3


def status_of(msg: Msg) -> str | None:
    """The status code of a control message (``404``, ``408``, ``503``…), else ``None``."""
    headers = msg.headers
    if not headers or msg.data:
        return None
    return headers.get("Status")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("nats: ")


class Connection:
    """A started-on-demand NATS connection for the spine.

    :param settings: the plugin's settings.
    :param servers: the URLs to use instead of ``settings.servers`` (managed mode).
    """

    def __init__(self, settings: NatsSettings, servers: Sequence[str] | None = None) -> None:
        self.settings = settings
        self.servers = tuple(servers or settings.servers)
        domain = settings.jetstream_domain
        self.api_prefix = f"$JS.{domain}.API" if domain else "$JS.API"
        self._client: Client | None = None
        self._started = False
        self._supervisor: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        self._inbox = ""
        self._pending: dict[str, asyncio.Future[Msg]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._counter = 0
        self.generation = 0
        """Increments with every new client: subscriptions made on an older one are gone."""
        self.reconnects = 0
        """Increments with every reconnection: server-side pull requests are gone."""

    # ---------------------------------------------------------------------------------------------
    # Lifecycle
    # ---------------------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    @property
    def connected(self) -> bool:
        client = self._client
        return client is not None and client.is_connected

    def _where(self) -> str:
        return ", ".join(self.servers)

    async def start(self) -> None:
        """Connect, or keep trying in the background if no server answers now."""
        if self._started:
            return
        self._started = True
        if not await self._attempt():
            log.warning(
                "nats: cannot connect to %s (%s); retrying in the background",
                self._where(),
                self._last_error,
            )
            self._supervisor = asyncio.get_running_loop().create_task(self._keep_trying())

    async def close(self) -> None:
        """Close the connection and stop reconnecting. Safe to call twice."""
        self._started = False
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await supervisor
        client, self._client = self._client, None
        failure = BackendUnavailable("nats: the connection was closed")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()
        for callback in list(self._listeners):
            callback()
        if client is not None:
            with anyio.move_on_after(self.settings.request_timeout, shield=True):
                with contextlib.suppress(Exception):
                    await client.close()

    async def _keep_trying(self) -> None:
        attempt = 0
        while self._started and self._client is None:
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1
            try:
                connected = await self._attempt()
            except CatalystError as exc:  # unreadable credentials or TLS files, say
                self._last_error = str(exc)
                continue
            if connected:
                log.info("nats: connected to %s", self._connected_url())
                return

    def _backoff(self, attempt: int) -> float:
        settings = self.settings
        growth = float(2 ** min(attempt, 30))
        ceiling = min(settings.reconnect_wait * growth, settings.reconnect_wait_max)
        return ceiling * random.uniform(0.5, 1.0)

    def _next_server(self, servers: list[Server], _info: dict[str, Any]) -> tuple[Server, float]:
        # nats-py's reconnection loop asks this before every attempt: the least-tried server,
        # after a back-off that grows with its failed attempts.
        server = min(servers, key=lambda s: s.reconnects)
        return server, self._backoff(server.reconnects)

    def _connected_url(self) -> str:
        client = self._client
        url = client.connected_url if client is not None else None
        return url.geturl() if url is not None else self._where()

    async def _attempt(self) -> bool:
        client = Client()
        options = self._options(client)
        self._last_error = None
        try:
            # nats-py bounds each socket connect; the whole attempt is bounded here.
            with anyio.fail_after(self.settings.connect_timeout * 3):
                await client.connect(**options)
        except BaseException as exc:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                with anyio.move_on_after(self.settings.request_timeout):
                    await client.close()
            if not isinstance(exc, Exception):
                raise  # cancelled: the spine is closing
            # "No servers available" says less than the error of the last server tried.
            if not (isinstance(exc, NoServersError) and self._last_error):
                self._last_error = "timeout" if isinstance(exc, TimeoutError) else _describe(exc)
            return False
        if not self._started:
            await client.close()
            return False
        # Connected: from now on nats-py reconnects by itself, forever, with our back-off.
        client.options["allow_reconnect"] = True
        client.options["max_reconnect_attempts"] = -1
        self._inbox = client.new_inbox()
        await client.subscribe(f"{self._inbox}.*", cb=self._on_reply)
        self._client = client
        server = client.connected_server_version
        if not supported(server.major, server.minor):
            log.warning(
                "nats: %s runs nats-server %d.%d.%d; Catalyst supports %d.%d or later",
                self._connected_url(),
                server.major,
                server.minor,
                server.patch,
                *MINIMUM_VERSION,
            )
        self._last_error = None
        self.generation += 1
        return True

    def _options(self, client: Client) -> dict[str, Any]:
        settings = self.settings
        options: dict[str, Any] = {
            "servers": list(self.servers),
            "name": settings.name,
            # Set to reconnect (forever) once connected. Until then each attempt tries every
            # server twice and gives up; the next attempt, with a new client, is ours.
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,
            # nats-py declares these int but waits with asyncio, which takes any seconds.
            "connect_timeout": cast("int", settings.connect_timeout),
            "reconnect_time_wait": cast("int", settings.reconnect_wait),
            "reconnect_to_server_handler": self._next_server,
            "ping_interval": _PING_INTERVAL,
            "max_outstanding_pings": _MAX_OUTSTANDING_PINGS,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
            "closed_cb": self._on_closed,
        }
        if settings.user is not None:
            options["user"] = settings.user
            options["password"] = settings.password or ""
        if settings.token is not None:
            options["token"] = settings.token
        if settings.nkey_seed_file is not None:
            seed_file = settings.nkey_seed_file
            # nats-py would need the optional ``nkeys`` package: sign with our own.
            client._auth_configured = True
            client._public_nkey = nkeys.read_seed(seed_file).public_key
            options["signature_cb"] = lambda nonce: nkeys.read_seed(seed_file).sign_nonce(nonce)
        if settings.creds_file is not None:
            creds = settings.creds_file
            client._auth_configured = True
            options["user_jwt_cb"] = lambda: nkeys.read_creds(creds)[0].encode()
            options["signature_cb"] = lambda nonce: nkeys.read_creds(creds)[1].sign_nonce(nonce)
        if settings.tls:
            options["tls"] = self._tls_context()
            if settings.tls_hostname:
                options["tls_hostname"] = settings.tls_hostname
        return options

    def _tls_context(self) -> ssl.SSLContext:
        settings = self.settings
        try:
            context = ssl.create_default_context(
                cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None
            )
            if settings.tls_cert_file is not None and settings.tls_key_file is not None:
                context.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_key_file))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInput(f"nats: cannot load the TLS files: {exc}") from None
        return context

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = _describe(exc)
        log.debug("nats: %s", self._last_error)

    async def _on_disconnected(self) -> None:
        if not self._started:
            return
        log.warning("nats: disconnected from %s; reconnecting", self._where())
        # Replies to what was sent before are lost with a restarted server: fail those requests
        # now rather than at their timeout (their outcome is unknown; callers retry or resolve).
        failure = BackendUnavailable(
            f"nats: connection to {self._where()} lost while waiting for an answer"
        )
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(failure)

    async def _on_reconnected(self) -> None:
        self.reconnects += 1
        self._last_error = None
        for callback in list(self._listeners):
            callback()
        log.info("nats: reconnected to %s", self._connected_url())

    async def _on_closed(self) -> None:
        # Closed for good while we still want it (an authorization failure while reconnecting,
        # say): start over with a new client.
        if self._started and self._client is not None and self._client.is_closed:
            self._client = None
            log.warning("nats: connection closed: %s; starting over", self._last_error)
            if self._supervisor is None or self._supervisor.done():
                self._supervisor = asyncio.get_running_loop().create_task(self._keep_trying())

    # ---------------------------------------------------------------------------------------------
    # Readiness
    # ---------------------------------------------------------------------------------------------

    def unavailable(self) -> BackendUnavailable:
        """The error to raise while there is no usable connection."""
        if not self._started:
            return BackendUnavailable("nats spine is not started (or was closed)")
        client = self._client
        if client is not None and client.is_reconnecting:
            return BackendUnavailable(
                f"nats: connection to {self._where()} lost, reconnecting"
                + (f" ({self._last_error})" if self._last_error else "")
            )
        return BackendUnavailable(
            f"nats: cannot connect to {self._where()}"
            + (f": {self._last_error}" if self._last_error else "")
        )

    async def wait_connected(self, within: float) -> bool:
        """Wait up to ``within`` seconds for a usable connection; whether there is one."""
        deadline = asyncio.get_running_loop().time() + within
        while not self.connected:
            if not self._started or asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_RECONNECT_POLL)
        return self._started

    def client(self) -> Client:
        """The connected client. :raises BackendUnavailable: not connected now."""
        client = self._client
        if client is None or not client.is_connected or not self._started:
            raise self.unavailable()
        return client

    async def readiness(self) -> Readiness:
        """Connected, and JetStream answers this account."""
        try:
            self.client()
            info = await self.api("INFO")
        except CatalystError as exc:
            return Readiness.unavailable(f"unavailable: {exc}")
        if not isinstance(info.get("limits"), dict):
            return Readiness.unavailable("unavailable: nats: JetStream answered without limits")
        return Readiness.ok()

    # ---------------------------------------------------------------------------------------------
    # Requests
    # ---------------------------------------------------------------------------------------------

    async def _on_reply(self, msg: Msg) -> None:
        future = self._pending.pop(msg.subject[len(self._inbox) + 1 :], None)
        if future is not None and not future.done():
            future.set_result(msg)

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the connection is re-established or closed (it wakes waiters
        whose pull requests are gone); returns the function that undoes this."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        reply: str = "",
    ) -> None:
        """Publish without waiting for an answer (pull requests, deletes of scan consumers)."""
        client = self.client()
        try:
            await client.publish(
                subject, payload, reply=reply, headers=dict(headers) if headers else None
            )
        except NatsError as exc:
            raise BackendUnavailable(
                f"nats: cannot publish to {subject}: {_describe(exc)}"
            ) from None

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        within: float | None = None,
    ) -> Msg:
        """One request; its reply (a ``503`` no-responders status is returned, not raised)."""
        (reply,) = await self.requests([(subject, payload, headers)], within=within)
        return reply

    async def requests(self, batch: Sequence[Request], *, within: float | None = None) -> list[Msg]:
        """Send every request at once, in order; their replies, in the same order.

        :raises BackendUnavailable: not connected, or not every reply came ``within`` that many
            seconds (default ``request_timeout``).
        """
        futures = await self.send(batch)
        return await self.replies(futures, within=within, what=batch[0][0] if batch else "?")

    async def send(self, batch: Sequence[Request]) -> list[asyncio.Future[Msg]]:
        """Send requests without waiting: the futures of their replies (see :meth:`replies`)."""
        client = self.client()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Msg]] = []
        try:
            for subject, payload, headers in batch:
                self._counter += 1
                token = str(self._counter)
                future: asyncio.Future[Msg] = loop.create_future()
                self._pending[token] = future
                futures.append(future)
                await client.publish(
                    subject,
                    payload,
                    reply=f"{self._inbox}.{token}",
                    headers=dict(headers) if headers else None,
                )
        except NatsError as exc:
            self._forget(futures)
            raise BackendUnavailable(f"nats: cannot send requests: {_describe(exc)}") from None
        return futures

    async def replies(
        self,
        futures: Sequence[asyncio.Future[Msg]],
        *,
        within: float | None = None,
        what: str = "?",
    ) -> list[Msg]:
        """Wait (bounded) for the replies of :meth:`send`; errors as :meth:`requests`."""
        wait = self.settings.request_timeout if within is None else within
        try:
            if len(futures) == 1:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(futures[0]), wait)
                pending = [f for f in futures if not f.done()]
            elif futures:
                _done, pending_set = await asyncio.wait(futures, timeout=wait)
                pending = list(pending_set)
            else:
                pending = []
        except BaseException:
            self._forget(futures)
            raise
        if pending:
            self._forget(futures)
            if not self.connected:
                raise self.unavailable()
            raise BackendUnavailable(
                f"nats: no answer from {what} within {wait:g} s"
                + (f" ({len(pending)} of {len(futures)} requests)" if len(futures) > 1 else "")
            )
        for future in futures:
            if future.cancelled():
                raise BackendUnavailable(f"nats: the request to {what} was abandoned")
            failure = future.exception()
            if failure is not None:
                raise failure
        return [future.result() for future in futures]

    def _forget(self, futures: Sequence[asyncio.Future[Msg]]) -> None:
        if not futures:
            return
        waiting = set(futures)
        for token in [t for t, f in self._pending.items() if f in waiting]:
            del self._pending[token]
        for future in futures:
            if not future.done():
                future.cancel()

    async def api(
        self, suffix: str, body: Mapping[str, Any] | None = None, *, what: str | None = None
    ) -> dict[str, Any]:
        """A JetStream API request (``$JS.API.<suffix>``); errors become Catalyst's."""
        payload = json.dumps(body).encode() if body is not None else b""
        reply = await self.request(f"{self.api_prefix}.{suffix}", payload)
        if status_of(reply) == _NO_RESPONDERS:
            raise BackendUnavailable(
                f"nats: JetStream does not answer at {self._connected_url()} "
                "(is JetStream enabled for this account?)"
            )
        try:
            response = json.loads(reply.data)
        except ValueError:
            raise BackendUnavailable(f"nats: unreadable JetStream answer to {suffix}") from None
        error = response.get("error")
        if error:
            raise api_error(error, what or suffix)
        return cast("dict[str, Any]", response)

    # ---------------------------------------------------------------------------------------------
    # Subscriptions
    # ---------------------------------------------------------------------------------------------

    def new_inbox(self) -> str:
        return self.client().new_inbox()

    async def subscribe(self, subject: str, callback: Callable[[Msg], Any]) -> Subscription:
        """Subscribe with an async ``callback``."""
        client = self.client()
        try:
            return await client.subscribe(subject, cb=callback)
        except NatsError as exc:
            raise BackendUnavailable(
                f"nats: cannot subscribe to {subject}: {_describe(exc)}"
            ) from None


def api_error(error: Mapping[str, Any], what: str) -> CatalystError:
    """A JetStream API error as Catalyst's exception."""
    code = error.get("code")
    err_code = error.get("err_code")
    message = f"nats: {what}: {error.get('description', 'error')}"
    if err_code in _CONFLICT_CODES:
        return Conflict(message)
    if code == 404:
        return NotFound(message)
    if code == 400:
        return InvalidInput(message)
    return BackendUnavailable(message)


_SEQ: Final = re.compile(rb'"seq":\s*(\d+)')


def acknowledged(reply: Msg, subject: str) -> int:
    """The stream sequence of a JetStream publish acknowledgement; errors become Catalyst's
    (:class:`NotFound` when no stream stores ``subject``)."""
    if status_of(reply) == _NO_RESPONDERS:
        raise NotFound(f"nats: no stream stores {subject}")
    data = reply.data
    if b'"error"' not in data:
        # The common case, read without a JSON parse: {"stream":"KV_x", "seq":42}.
        match = _SEQ.search(data)
        if match is not None:
            return int(match.group(1))
    try:
        ack = json.loads(data)
    except ValueError:
        raise BackendUnavailable(f"nats: unreadable acknowledgement for {subject}") from None
    if ack.get("error"):
        raise api_error(ack["error"], f"writing {subject}")
    return int(ack["seq"])
