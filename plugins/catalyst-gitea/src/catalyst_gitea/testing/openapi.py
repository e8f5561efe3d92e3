"""A WSGI middleware that checks every API exchange against Gitea's OpenAPI description.

Each request under ``/api/v1`` is validated (path, method, parameters, security, body) before the
wrapped app sees it, and each response (status, content type, body) before the client does. A
mismatch is recorded in :attr:`OpenApiValidator.errors` and answered as a ``500`` naming it, so a
test fails at the exchange that broke the contract — and again at teardown, where the fixtures
assert the list is empty.

Gitea's description omits some answers its code gives: ``401`` (a rejected token) and ``429``
(a rate limiter) on every route, and a few statuses particular routes return (each listed in
:data:`UNDOCUMENTED` with the Gitea source that produces it). Those are allowed, and their bodies
are checked against Gitea's ``APIError`` shape (``{"message": …, "url": …}``) instead.

Building the validator for the 1 MB description takes a couple of seconds: :func:`load_openapi`
caches one per file.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import TYPE_CHECKING, Any, Final

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "API_PREFIX",
    "ROUTE_KEY",
    "UNDOCUMENTED",
    "OpenApiValidator",
    "load_openapi",
]

API_PREFIX: Final = "/api/v1"
ROUTE_KEY: Final = "standin.route"
"""The WSGI environ key of a dict where the app names the route it served:
``environ[ROUTE_KEY]["route"] = (method, template)`` (werkzeug runs the app on a shallow copy of
the environ, so the dict is how the answer comes back)."""
REQUEST_KEY: Final = "standin.request"
"""The WSGI environ key of the (body-caching) werkzeug request the middleware made."""

_EVERYWHERE: Final = frozenset({401, 429})
UNDOCUMENTED: Final[Mapping[tuple[str, str], frozenset[int]]] = {
    # routers/api/v1/repo/repo.go CreateOrgRepo -> CreateUserRepo: IsErrRepoAlreadyExist -> 409.
    ("POST", "/orgs/{org}/repos"): frozenset({409}),
    # routers/api/v1/repo/pull.go CreatePullRequest: issues_model.IsErrPullRequestAlreadyExists
    # answers 409; described, but listed for clarity.
    ("POST", "/repos/{owner}/{repo}/pulls"): frozenset({409}),
    # routers/api/v1/repo/pull_review.go CreatePullReview: a review on a closed pull request
    # (ErrSubmitReviewOnClosedPR) is 422, an approval of one's own pull request is 422.
    ("POST", "/repos/{owner}/{repo}/pulls/{index}/reviews"): frozenset({422}),
}
"""Statuses Gitea's code returns on a route whose description does not list them."""


@functools.cache
def load_openapi(path: Path) -> OpenAPI:
    """The validator of the OpenAPI 3 document at ``path`` (built once per process)."""
    return OpenAPI.from_dict(json.loads(path.read_text()))


class OpenApiValidator:
    """Validates the exchanges of ``app`` under :data:`API_PREFIX` against ``openapi``.

    :param app: the API's WSGI application; it sets :data:`ROUTE_KEY` for the route it served.
    :param openapi: the description (:func:`load_openapi`).
    """

    def __init__(self, app: WSGIApplication, openapi: OpenAPI) -> None:
        self.app = app
        self.openapi = openapi
        self.errors: list[str] = []
        self.exchanges = 0
        self._lock = threading.Lock()

    def _fail(self, message: str) -> Response:
        with self._lock:
            self.errors.append(message)
        body = {"message": f"stand-in: {message}", "url": "https://gitea.invalid/api/swagger"}
        return Response(json.dumps(body), status=500, content_type="application/json")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(f"{API_PREFIX}/"):
            return self.app(environ, start_response)
        request = Request(environ)
        request.get_data()  # cached: the app reads it again
        environ[REQUEST_KEY] = request
        what = f"{request.method} {request.path}"
        openapi_request = WerkzeugOpenAPIRequest(request)
        try:
            with self._lock:
                self.openapi.validate_request(openapi_request)
        except Exception as exc:
            return self._fail(f"request {what} does not match Gitea's API: {_describe(exc)}")(
                environ, start_response
            )
        served: dict[str, tuple[str, str]] = {}
        environ[ROUTE_KEY] = served
        response = Response.from_app(self.app, environ)
        route = served.get("route")
        problem = self._check_response(openapi_request, response, route, what)
        with self._lock:
            self.exchanges += 1
        if problem is not None:
            return self._fail(problem)(environ, start_response)
        return response(environ, start_response)

    def _check_response(
        self,
        openapi_request: WerkzeugOpenAPIRequest,
        response: Response,
        route: tuple[str, str] | None,
        what: str,
    ) -> str | None:
        status = response.status_code
        allowed = _EVERYWHERE | UNDOCUMENTED.get(route or ("", ""), frozenset())
        if status in allowed or status >= 500:
            return _api_error_problem(response, what)
        try:
            with self._lock:
                self.openapi.validate_response(openapi_request, WerkzeugOpenAPIResponse(response))
        except Exception as exc:
            return (
                f"response {status} to {what} does not match Gitea's API: {_describe(exc)}; "
                f"body {response.get_data(as_text=True)[:300]!r}"
            )
        return None


def _api_error_problem(response: Response, what: str) -> str | None:
    """Whether an answer outside the description looks like Gitea's ``APIError``."""
    if response.mimetype != "application/json":
        return f"response {response.status_code} to {what} is not JSON"
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return f"response {response.status_code} to {what} is not JSON"
    if not isinstance(body, dict) or not isinstance(body.get("message", ""), str):
        return f"response {response.status_code} to {what} is not an APIError"
    return None


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause: BaseException | None = exc.__cause__
    while cause is not None and len(parts) < 4:
        parts.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__
    details: Any = getattr(exc, "schema_errors", None)
    if details:
        parts.append(str(details))
    return " <- ".join(parts)
