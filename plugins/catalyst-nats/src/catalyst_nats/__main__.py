"""``python -m catalyst_nats``: see :mod:`catalyst_nats.cli`."""

from catalyst_nats.cli import run

run()
