"""The ``dev`` built-in plugin: the development identity provider (locally signed JWTs).

It is the default for ``providers.identity``. Its provider registers here through
``catalyst_identity`` when it lands; until then ``catalyst plugins`` reports the slot as
selected but not provided.
"""
