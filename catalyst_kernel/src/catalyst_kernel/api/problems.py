"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every :class:`~catalyst_kernel.errors.CatalystError` maps to a status by its type, and its stable
``code`` becomes the problem ``type`` URI. Litestar's own errors (unknown route, wrong method,
malformed or invalid body, body too large) get the same shape, and anything unexpected becomes a
500 problem that says nothing about the internals (the exception is logged instead).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from catalyst_kernel.errors import (
    BackendUnavailable,
    CatalystError,
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    PluginError,
    Unauthenticated,
)

if TYPE_CHECKING:
    from litestar.types import ExceptionHandlersMap

__all__ = [
    "INTERNAL_ERROR",
    "MALFORMED_REQUEST",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "exception_handlers",
    "problem_body",
    "problem_response",
    "problem_type",
    "status_of",
]

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
PROBLEM_TYPE_BASE: Final = "https://catalyst.openova.io/problems/"

# Most specific first: the first class in an error's MRO found here decides its status.
_STATUS: Final[Mapping[type[CatalystError], int]] = {
    InvalidInput: HTTPStatus.UNPROCESSABLE_ENTITY,
    NotFound: HTTPStatus.NOT_FOUND,
    Conflict: HTTPStatus.CONFLICT,
    Unauthenticated: HTTPStatus.UNAUTHORIZED,
    Forbidden: HTTPStatus.FORBIDDEN,
    BackendUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
    # A plugin failing while serving is the server's fault, not a passing outage.
    PluginError: HTTPStatus.INTERNAL_SERVER_ERROR,
}

# Codes for Litestar's own HTTP errors, by status; anything else is ``http-<status>``.
MALFORMED_REQUEST: Final = "malformed-request"
"""The problem code of a request that cannot be read (not JSON, wrong framing)."""
INTERNAL_ERROR: Final = "internal-error"
"""The problem code of a failure on the service's side (the detail says nothing more)."""

_HTTP_CODES: Final[Mapping[int, str]] = {
    HTTPStatus.BAD_REQUEST: MALFORMED_REQUEST,
    HTTPStatus.UNAUTHORIZED: Unauthenticated.code,
    HTTPStatus.FORBIDDEN: Forbidden.code,
    HTTPStatus.NOT_FOUND: "route-not-found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method-not-allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "body-too-large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported-media-type",
    HTTPStatus.TOO_MANY_REQUESTS: "too-many-requests",
    HTTPStatus.INTERNAL_SERVER_ERROR: INTERNAL_ERROR,
    HTTPStatus.SERVICE_UNAVAILABLE: "service-unavailable",
}

_INTERNAL_DETAIL: Final = "An unexpected error occurred; it has been logged."


def problem_type(code: str) -> str:
    """The stable ``type`` URI of a problem ``code``."""
    return f"{PROBLEM_TYPE_BASE}{code}"


def status_of(error: CatalystError) -> int:
    """The HTTP status of a :class:`CatalystError` (500 for a type not mapped here)."""
    for cls in type(error).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return int(status)
    return int(HTTPStatus.INTERNAL_SERVER_ERROR)


def problem_body(
    *,
    code: str,
    status: int,
    detail: str,
    instance: str | None,
    title: str | None = None,
    field: str | None = None,
    errors: Iterable[FieldProblem] = (),
    **extensions: Any,
) -> dict[str, Any]:
    """A problem-details document; ``errors`` become ``[{pointer, message}]``."""
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if field is not None:
        body["field"] = field
    listed = [{"pointer": p.pointer, "message": p.message} for p in errors]
    if listed:
        body["errors"] = listed
    body.update(extensions)
    return body


def problem_response(
    body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
) -> Response[Any]:
    """A response carrying ``body`` as ``application/problem+json``."""
    return Response(
        content=dict(body),
        status_code=int(body["status"]),
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _catalyst_error(request: Request[Any, Any, Any], exc: CatalystError) -> Response[Any]:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    problems = exc.problems if isinstance(exc, InvalidInput) else ()
    return problem_response(
        problem_body(
            code=exc.code,
            status=status,
            detail=exc.message,
            instance=request.url.path,
            field=exc.field,
            errors=problems,
            **exc.extensions,
        ),
        headers=headers,
    )


def _validation_problems(exc: ValidationException) -> list[FieldProblem]:
    found: list[FieldProblem] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, Mapping):
            continue
        key = item.get("key")
        source = item.get("source")
        message = str(item.get("message", "invalid value"))
        # Body fields are located in the body; other parameters by their source (query, path…).
        parts: list[str] = [] if source in (None, "body") else [str(source)]
        if key == "data" and source in (None, "body"):
            # The whole body failed to decode: msgspec says where (``… - at `$.items[0]```).
            message, body_parts = _body_location(message)
            parts.extend(body_parts)
        elif key:
            parts.extend(str(key).split("."))
        found.append(FieldProblem.at(parts, message))
    return found


_AT: Final = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$")
_MISSING: Final = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+|'[^']*'|\"[^\"]*\")\]")


def _body_location(message: str) -> tuple[str, list[str]]:
    """The message and JSON pointer parts of a msgspec error about a request body."""
    parts: list[str] = []
    matched = _AT.match(message)
    if matched:
        message = matched.group("message")
        for name, index in _STEP.findall(matched.group("path")):
            parts.append(name or index.strip("'\""))
    missing = _MISSING.match(message)
    if missing:
        parts.append(missing.group("field"))
    return message, parts


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    problems = _validation_problems(exc) if isinstance(exc, ValidationException) else []
    if problems:
        # Well-formed input of the wrong shape: the same status as InvalidInput raised by us.
        body = problem_body(
            code=InvalidInput.code,
            status=int(HTTPStatus.UNPROCESSABLE_ENTITY),
            detail="the request does not match the operation's schema",
            instance=request.url.path,
            errors=problems,
        )
        return problem_response(body, headers=headers)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        detail = _INTERNAL_DETAIL if status == HTTPStatus.INTERNAL_SERVER_ERROR else exc.detail
    elif status == HTTPStatus.NOT_FOUND and not request.scope.get("path_template"):
        detail = f"no route matches {request.url.path}"
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = headers.get("Allow") or headers.get("allow")
        detail = f"{request.method} is not allowed on {request.url.path}" + (
            f"; allowed: {allowed}" if allowed else ""
        )
    elif status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        detail = "the request body is larger than this service accepts"
    else:
        detail = exc.detail
    code = _HTTP_CODES.get(status, f"http-{status}")
    if status == HTTPStatus.NOT_FOUND and request.scope.get("path_template"):
        code = NotFound.code  # a route matched; the object it names does not exist
    body = problem_body(code=code, status=status, detail=detail, instance=request.url.path)
    return problem_response(body, headers=headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    status = int(HTTPStatus.INTERNAL_SERVER_ERROR)
    body = problem_body(
        code=INTERNAL_ERROR, status=status, detail=_INTERNAL_DETAIL, instance=request.url.path
    )
    return problem_response(body)


def exception_handlers() -> ExceptionHandlersMap:
    """The app-wide exception handlers (Litestar picks the most specific class)."""
    return {
        CatalystError: _catalyst_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
