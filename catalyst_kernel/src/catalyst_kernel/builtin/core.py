"""The ``core`` built-in plugin: the kernel's additive behaviour, registered through the same
hooks third parties use (projections first; composers, rule kinds and event sources follow).
"""
