"""The `gitea` plugin module registered under the `catalyst` entry-point group.

It declares no hook implementations yet; the plugin manager lists it as installed.
"""
