"""GraphQL errors in the vocabulary of the REST problems (:mod:`catalyst_kernel.api.problems`).

Every error in a GraphQL answer carries ``extensions: {code, status, type}`` (and ``field`` or
``errors`` when the kernel error names them), so a client branches on the same stable codes as
for a problem response:

- a :class:`~catalyst_kernel.errors.CatalystError` raised by a resolver keeps its message, code
  and status (``forbidden``/403, ``not-found``/404, ``invalid-name``/422 …);
- a query that does not parse is ``malformed-request``/400, one that does not validate (unknown
  field, wrong argument, too deep, too many aliases, bad variables) is ``invalid-input``/422;
- anything else failed on our side: ``internal-error``/500 with a message that says nothing
  about the internals (the exception is logged instead, see :func:`is_internal`).

The schema logs the internal errors (``CatalystSchema.process_errors``); the route rewrites every
error of an answer with :func:`problem_error` just before it is sent, so no path through
strawberry (an extension failing included) sends an error without its code.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

from graphql import GraphQLError, GraphQLSyntaxError

from catalyst_kernel.api.problems import INTERNAL_ERROR, MALFORMED_REQUEST, problem_type, status_of
from catalyst_kernel.errors import CatalystError, InvalidInput

__all__ = ["INTERNAL_MESSAGE", "is_internal", "problem_error"]

INTERNAL_MESSAGE: Final = "An unexpected error occurred; it has been logged."
_MALFORMED: Final = MALFORMED_REQUEST
_INTERNAL: Final = INTERNAL_ERROR


def _catalyst_error(error: GraphQLError) -> CatalystError | None:
    original = error.original_error
    return original if isinstance(original, CatalystError) else None


def is_internal(error: GraphQLError) -> bool:
    """Whether ``error`` is the service's fault (to be logged, and masked for the client).

    Errors without a response ``path`` and without a cause concern the request itself
    (parsing, validation, variables); an error at a path, or caused by an exception that is no
    :class:`CatalystError`, is a resolver (or strawberry) failing.
    """
    kernel = _catalyst_error(error)
    if kernel is not None:
        return status_of(kernel) >= HTTPStatus.INTERNAL_SERVER_ERROR
    original = error.original_error
    return error.path is not None or (
        original is not None and not isinstance(original, GraphQLError)
    )


def _extensions(code: str, status: int, **more: Any) -> dict[str, Any]:
    return {"code": code, "status": status, "type": problem_type(code), **more}


def problem_error(error: GraphQLError) -> GraphQLError:
    """``error`` with the problem ``extensions`` of its cause (and its message masked when the
    cause is unexpected)."""
    message = error.message
    kernel = _catalyst_error(error)
    if kernel is not None:
        more: dict[str, Any] = {}
        if kernel.field is not None:
            more["field"] = kernel.field
        if isinstance(kernel, InvalidInput) and kernel.problems:
            more["errors"] = [{"pointer": p.pointer, "message": p.message} for p in kernel.problems]
        extensions = _extensions(kernel.code, status_of(kernel), **more)
    elif is_internal(error):
        message = INTERNAL_MESSAGE
        extensions = _extensions(_INTERNAL, int(HTTPStatus.INTERNAL_SERVER_ERROR))
    elif isinstance(error, GraphQLSyntaxError):
        extensions = _extensions(_MALFORMED, int(HTTPStatus.BAD_REQUEST))
    else:
        extensions = _extensions(InvalidInput.code, int(HTTPStatus.UNPROCESSABLE_ENTITY))
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=extensions,
    )
