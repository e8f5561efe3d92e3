"""Test helpers for the gitea plugin (needs the ``testing`` extra: openapi-core).

:class:`GiteaStandIn` is a local stand-in for Gitea — its REST API for the routes Catalyst uses,
checked against Gitea's OpenAPI description, and real Git over HTTP through ``git
http-backend`` — for tests that cannot run a Gitea server.
"""

from catalyst_gitea.testing.openapi import OpenApiValidator, load_openapi
from catalyst_gitea.testing.standin import Delivery, GiteaStandIn, StandInUser

__all__ = ["Delivery", "GiteaStandIn", "OpenApiValidator", "StandInUser", "load_openapi"]
