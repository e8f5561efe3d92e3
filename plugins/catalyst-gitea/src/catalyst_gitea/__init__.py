"""Catalyst plugin: Environment repositories, pull requests and webhooks on Gitea."""
