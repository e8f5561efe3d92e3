"""The kernel's built-in plugins, written as plugins of the same kind third parties write.

``embedded`` fills the spine, committer and secrets slots with no server; ``dev`` is the
development identity provider. Each registers its providers through the ordinary hooks.
"""
