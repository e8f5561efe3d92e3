"""The ``embedded`` built-in plugin: server-less providers for single-node use and tests.

It is the default for ``providers.spine``, ``providers.committer`` and ``providers.secrets``.
Its providers (SQLite spine, pygit2 committer, encrypted local secret store) register here
through ``catalyst_spine``, ``catalyst_committer`` and ``catalyst_secrets`` as they land; until
then ``catalyst plugins`` reports the slot as selected but not provided.
"""
