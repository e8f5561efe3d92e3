"""The OpenAPI document tells the truth about errors: every route documents the problem
responses (RFC 9457, ``application/problem+json``) it may answer, applied in one place.

:func:`document_problems` adds them to route handlers before the app is built; a handler that
documents a status itself keeps its own. Authenticated routes may answer 401 and 403; routes with
path or query parameters or a body may answer 422; a body may also be malformed (400) or too
large (413); any route may be unable to reach a backend (503).
"""

from __future__ import annotations

import inspect
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from catalyst_kernel.api.auth import PRINCIPAL
from catalyst_kernel.api.problems import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "BEARER",
    "SECURITY_COMPONENTS",
    "Problem",
    "ProblemError",
    "document_problems",
    "problem_responses",
]

BEARER: Final = "bearer"
"""The security scheme of every authenticated route: a bearer JWT (SPEC §7)."""
SECURITY_COMPONENTS: Final = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="A token of the Sovereign's identity provider (for development: "
            "`catalyst token`).",
        )
    }
)


class ProblemError(msgspec.Struct, frozen=True):
    """One failing field of an invalid document, located by a JSON pointer."""

    pointer: str
    message: str


class Problem(msgspec.Struct, frozen=True):
    """An RFC 9457 problem: ``type`` is stable (``…/problems/<code>``), ``field`` names the
    failing input, ``errors`` list every failing field of a document."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    field: str | None = None
    errors: list[ProblemError] | None = None


_DESCRIPTIONS: Final = {
    HTTPStatus.BAD_REQUEST: "The request is malformed (a body that is not JSON, wrong types).",
    HTTPStatus.UNAUTHORIZED: "No valid bearer token.",
    HTTPStatus.FORBIDDEN: "The caller may not do this here (another Organization, a missing role).",
    HTTPStatus.NOT_FOUND: "The target does not exist.",
    HTTPStatus.CONFLICT: "The target exists already or changed meanwhile; or it is in use.",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "The body is larger than the service accepts.",
    HTTPStatus.UNPROCESSABLE_ENTITY: "A name, parameter or document breaks a rule (see field).",
    HTTPStatus.SERVICE_UNAVAILABLE: "A backend (spine, committer, secrets, identity) is down.",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI response specifications of problem details with these statuses."""
    return {
        int(status): ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(HTTPStatus(status), HTTPStatus(status).phrase),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


def _authenticated(handler: HTTPRouteHandler) -> bool:
    parameters = set(inspect.signature(handler.fn).parameters)
    return PRINCIPAL in parameters or PRINCIPAL in (handler.dependencies or {})


def _statuses(handler: HTTPRouteHandler) -> list[int]:
    parameters = set(inspect.signature(handler.fn).parameters)
    statuses = [HTTPStatus.SERVICE_UNAVAILABLE]
    if _authenticated(handler):
        statuses += [HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN]
    if handler.paths and any("{" in path for path in handler.paths):
        statuses += [HTTPStatus.NOT_FOUND, HTTPStatus.UNPROCESSABLE_ENTITY]
    if "data" in parameters:
        statuses += [
            HTTPStatus.BAD_REQUEST,
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            HTTPStatus.UNPROCESSABLE_ENTITY,
            HTTPStatus.CONFLICT,
            HTTPStatus.NOT_FOUND,
        ]
    if len(parameters - {"data", PRINCIPAL, "request"}) > 0:
        statuses.append(HTTPStatus.UNPROCESSABLE_ENTITY)
    if handler.http_methods & {"DELETE", "PATCH"}:
        statuses.append(HTTPStatus.CONFLICT)
    return sorted(set(statuses))


def document_problems(handlers: Iterable[Any]) -> None:
    """Add the problem responses each HTTP route handler in ``handlers`` may answer, and the
    bearer security requirement to the authenticated ones."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler):
            continue
        if _authenticated(handler) and not handler.security:
            handler.security = [{BEARER: []}]
        documented = dict(handler.responses or {})
        for status, spec in problem_responses(*_statuses(handler)).items():
            documented.setdefault(status, spec)
        handler.responses = documented
