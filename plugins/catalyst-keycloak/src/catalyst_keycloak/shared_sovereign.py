"""The `keycloak-shared-sovereign` identity plugin.

Selected by `providers.identity = "keycloak"` with `keycloak_topology = "shared-sovereign"`.

It declares no hook implementations yet; the plugin manager lists it as installed.
"""
