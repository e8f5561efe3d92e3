"""The `keycloak-per-organization` identity plugin.

Selected by `providers.identity = "keycloak"` with `keycloak_topology = "per-organization"`.

It declares no hook implementations yet; the plugin manager lists it as installed.
"""
