"""Webhook receivers: request bodies read under a size limit, HMAC signatures checked in
constant time, refusals as ``401`` problems.

A webhook sender (Flux's notification-controller, Gitea) sends no bearer token: it signs each
delivery's body with a shared secret and puts the HMAC in a header. An :class:`HmacScheme`
describes one sender's way of signing; a receiver route (declared with :func:`webhook_route`)
checks, in an order that tells an unsigned caller nothing, that a secret is configured (else its
own ``404``), then::

    try:
        body = await SCHEME.read_signed(request, secret, limit=max_body)  # 413 when too large
    except BadSignature as exc:
        log.warning("delivery refused: %s", exc)
        return SCHEME.refusal(request, exc)  # 401 unauthenticated, WWW-Authenticate: HMAC
    document = json.loads(body)  # only now, and InvalidInput (422) when it is not a document

No message here holds the secret, the expected signature or the received one.
"""

from __future__ import annotations

import hashlib
import hmac
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from attrs import field, frozen
from litestar import MediaType, post
from litestar.exceptions import HTTPException

from catalyst_kernel.api.problems import problem_body, problem_response
from catalyst_kernel.errors import InvalidInput, Unauthenticated

if TYPE_CHECKING:
    from litestar import Request, Response

__all__ = ["BadSignature", "HmacScheme", "read_body", "webhook_route"]


class BadSignature(Unauthenticated):
    """A delivery's signature header is missing, garbled, of a refused hash or wrong.

    The message says which, and never holds the secret or a signature. Receivers answer it with
    :meth:`HmacScheme.refusal`; raised past them, it is still a ``401`` ``unauthenticated``
    problem, though with the API's ``Bearer`` challenge.
    """


def webhook_route(path: str, *, summary: str) -> post:
    """The route decorator of a webhook receiver at ``path``: ``POST``, JSON answers, ``202
    Accepted`` on success, listed under the ``webhooks`` tag of the OpenAPI description."""
    return post(
        path,
        media_type=MediaType.JSON,
        status_code=HTTPStatus.ACCEPTED,
        tags=["webhooks"],
        summary=summary,
    )


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes.

    A larger body is refused from its ``Content-Length`` before reading and, without one, as
    soon as the bytes read pass the limit.

    :raises HTTPException: ``413``, which the API answers as a ``body-too-large`` problem.
    """
    too_large = HTTPException(status_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _check_algorithms(scheme: HmacScheme, _: Any, algorithms: tuple[str, ...]) -> None:
    if not algorithms:
        raise InvalidInput("an HMAC scheme needs at least one hash", field="algorithms")
    for name in algorithms:
        if name != name.lower() or name not in hashlib.algorithms_available:
            raise InvalidInput(f"{name!r} is not a hashlib hash name", field="algorithms")
    if not scheme.prefixed and len(algorithms) != 1:
        raise InvalidInput(
            "a signature without an '<hash>=' prefix can only be of one hash", field="algorithms"
        )


@frozen
class HmacScheme:
    """How one sender signs its deliveries, and how its receiver refuses a bad signature.

    :param header: the request header carrying the signature (``X-Gitea-Signature``).
    :param realm: the realm of the ``WWW-Authenticate: HMAC`` challenge of a refusal.
    :param refused: how a refusal's problem detail begins, saying what was not signed with
        which secret; ``": <reason>"`` follows.
    :param algorithms: the accepted hashes, by their lower-case :mod:`hashlib` names; the first
        is the one :meth:`sign` uses.
    :param prefixed: the header reads ``<hash>=<hex digest>`` (the hash's name is matched
        without regard to case, as Flux's ``generic-hmac`` sends it); else it is the bare hex
        digest of the only hash in ``algorithms`` (as Gitea sends it).
    """

    header: str
    realm: str
    refused: str
    prefixed: bool = False
    algorithms: tuple[str, ...] = field(default=("sha256",), validator=_check_algorithms)

    def sign(self, secret: str, body: bytes) -> str:
        """The header value signing ``body`` with ``secret`` (senders, stand-ins and tests)."""
        algorithm = self.algorithms[0]
        digest = hmac.new(secret.encode("utf-8"), body, algorithm).hexdigest()
        return f"{algorithm}={digest}" if self.prefixed else digest

    def verify(self, secret: str, body: bytes, signature: str | None) -> None:
        """Check the header value ``signature`` against ``body``, in constant time.

        :raises BadSignature: the header is missing or garbled, names a hash not accepted, or
            does not match; the reason names neither the secret nor a signature.
        """
        header = self.header
        value = (signature or "").strip()
        if not value:
            raise BadSignature(f"the {header} header is missing")
        if self.prefixed:
            algorithm, separator, given = value.partition("=")
            algorithm = algorithm.strip().lower()
            if not separator:
                raise BadSignature(f"the {header} header is not <hash>=<hex digest>")
            if algorithm not in self.algorithms:
                raise BadSignature(
                    f"{header} hash {algorithm[:16]!r} is not accepted; use {self._choices()}"
                )
        else:
            algorithm, given = self.algorithms[0], value
        try:
            received = bytes.fromhex(given.strip())
        except ValueError:
            raise BadSignature(f"the {header} digest is not hexadecimal") from None
        expected = hmac.new(secret.encode("utf-8"), body, algorithm).digest()
        if not hmac.compare_digest(expected, received):
            raise BadSignature(f"the {header} signature does not match the body")

    async def read_signed(self, request: Request[Any, Any, Any], secret: str, limit: int) -> bytes:
        """The request's body (see :func:`read_body`) once its signature is verified.

        :raises HTTPException: ``413``, the body is larger than ``limit`` bytes.
        :raises BadSignature: see :meth:`verify`.
        """
        body = await read_body(request, limit)
        self.verify(secret, body, request.headers.get(self.header))
        return body

    def refusal(self, request: Request[Any, Any, Any], error: BadSignature) -> Response[Any]:
        """The ``401`` ``unauthenticated`` problem answering ``error``, with an ``HMAC``
        challenge (not ``Bearer``: the signature is the route's only authentication)."""
        body = problem_body(
            code=Unauthenticated.code,
            status=int(HTTPStatus.UNAUTHORIZED),
            detail=f"{self.refused}: {error}",
            instance=request.url.path,
        )
        return problem_response(body, headers={"WWW-Authenticate": f'HMAC realm="{self.realm}"'})

    def _choices(self) -> str:
        *others, last = self.algorithms
        return f"{', '.join(others)} or {last}" if others else last
