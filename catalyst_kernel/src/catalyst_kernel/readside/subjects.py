"""Spine subjects and KV keys (SPEC §4), with reversible escaping of unsafe characters.

A name may hold characters that NATS gives meaning to (``.``, ``*``, ``>``, whitespace) or that KV
keys forbid. :func:`escape` keeps ``[A-Za-z0-9_-]`` and writes every other UTF-8 byte as ``=XX``
(upper-case hex), so ``my.app`` becomes ``my=2Eapp``; :func:`unescape` reverses it exactly. The
result is a valid NATS subject token and a valid JetStream KV key segment.
"""

from __future__ import annotations

import re
from typing import Final

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import check_environment_name

__all__ = [
    "SUBJECT_PREFIX",
    "catalyst_subject",
    "check_kv_key",
    "crossplane_subject",
    "environment_of",
    "escape",
    "flux_subject",
    "git_subject",
    "k8s_subject",
    "kv_bucket",
    "kv_key",
    "split_kv_key",
    "stream_filter",
    "unescape",
]

SUBJECT_PREFIX: Final = "ws"
_SAFE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPED: Final = re.compile(r"(?:[A-Za-z0-9_-]|=[0-9A-F]{2})+")


def escape(token: str) -> str:
    """Make ``token`` safe as one subject token / KV key segment, reversibly."""
    if not token:
        raise InvalidInput("an empty name cannot be a subject token")
    return "".join(chr(b) if b in _SAFE else f"={b:02X}" for b in token.encode("utf-8"))


def unescape(token: str) -> str:
    """Reverse :func:`escape`."""
    if not _ESCAPED.fullmatch(token):
        raise InvalidInput(f"{token!r} is not an escaped token")
    out = bytearray()
    index = 0
    while index < len(token):
        if token[index] == "=":
            out.append(int(token[index + 1 : index + 3], 16))
            index += 3
        else:
            out.append(ord(token[index]))
            index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{token!r} does not decode to UTF-8") from None


def _subject(environment: str, *tokens: str) -> str:
    check_environment_name(environment)
    return ".".join((SUBJECT_PREFIX, environment, *tokens))


def k8s_subject(environment: str, kind: str, namespace: str, name: str) -> str:
    """``ws.<env>.k8s.<kind>.<ns>.<name>`` (cluster-scoped objects use namespace ``_``)."""
    return _subject(environment, "k8s", escape(kind), escape(namespace or "_"), escape(name))


def flux_subject(environment: str, name: str) -> str:
    """``ws.<env>.flux.<name>``: a Flux object (Kustomization or HelmRelease) of that name."""
    return _subject(environment, "flux", escape(name))


def git_subject(environment: str, commit: str) -> str:
    """``ws.<env>.git.<commit>``."""
    return _subject(environment, "git", escape(commit))


def crossplane_subject(environment: str, resource: str) -> str:
    """``ws.<env>.crossplane.<resource>``."""
    return _subject(environment, "crossplane", escape(resource))


def catalyst_subject(environment: str, *tokens: str) -> str:
    """``ws.<env>.catalyst.<token>...`` for Catalyst's own events (change requests …)."""
    if not tokens:
        raise InvalidInput("a catalyst subject needs at least one token")
    return _subject(environment, "catalyst", *(escape(token) for token in tokens))


def stream_filter(environment: str) -> str:
    """``ws.<env>.>``: every subject of one Environment."""
    return _subject(environment, ">")


def environment_of(subject: str) -> str:
    """The Environment of a ``ws.<env>.…`` subject."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != SUBJECT_PREFIX:
        raise InvalidInput(f"{subject!r} is not a ws.<env>.… subject")
    return check_environment_name(parts[1])


def kv_bucket(environment: str) -> str:
    """``ws-<env>-state``."""
    check_environment_name(environment)
    return f"{SUBJECT_PREFIX}-{environment}-state"


def kv_key(kind: str, *names: str) -> str:
    """``<kind>/<name>`` or ``<kind>/<ns>/<name>``; every segment escaped."""
    if not names:
        raise InvalidInput("a KV key needs a kind and at least one name")
    return "/".join(escape(part) for part in (kind, *names))


_KV_KEY: Final = re.compile(r"[-/_=.a-zA-Z0-9]+")


def check_kv_key(key: object) -> str:
    """Return ``key`` if it is a valid KV key (JetStream's rule: ``[-/_=.a-zA-Z0-9]+``, not
    starting or ending with ``.``); build keys with :func:`kv_key` to escape names."""
    if not isinstance(key, str) or not _KV_KEY.fullmatch(key) or key[0] == "." or key[-1] == ".":
        raise InvalidInput(f"{key!r} is not a valid KV key ([-/_=.a-zA-Z0-9]+)")
    return key


def split_kv_key(key: str) -> tuple[str, ...]:
    """Reverse :func:`kv_key`: the unescaped segments."""
    return tuple(unescape(part) for part in key.split("/"))
