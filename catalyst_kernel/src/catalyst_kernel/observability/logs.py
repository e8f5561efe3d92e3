"""The process's log lines: JSON objects (or text) on the root logger, for ``catalyst serve``."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Final, TextIO

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from catalyst_kernel.settings import LogFormat

if TYPE_CHECKING:
    from catalyst_kernel.settings import Settings

__all__ = ["JSON_FIELDS", "TEXT_FORMAT", "configure_logging"]

JSON_FIELDS: Final = "%(levelname)s %(name)s %(message)s"
"""The record attributes every JSON line holds (renamed ``level``, ``logger``, ``message``)."""

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_RENAMED: Final = {"levelname": "level", "name": "logger"}


class _TraceContext(logging.Filter):
    """Adds the current span's ``trace_id`` and ``span_id``, so a log line leads to its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class _CatalystHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs, so a second call can find and replace it."""


def _formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format is LogFormat.TEXT:
        return logging.Formatter(TEXT_FORMAT)
    return JsonFormatter(JSON_FIELDS, rename_fields=dict(_RENAMED), timestamp=True)


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> logging.Handler:
    """Send the process's log records to ``stream`` (default: standard error).

    The format is settings key ``observability.log_format``: ``json`` writes one object per line
    with ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, every ``extra`` field
    of the record, ``exc_info`` for an exception and, while a trace span is current, ``trace_id``
    and ``span_id``; ``text`` writes ``<time> <LEVEL> <logger>: <message>``. The root logger's
    level becomes ``observability.log_level``.

    Calling it again replaces the handler it installed before (it never adds a second one);
    other handlers on the root logger are left alone. ``catalyst serve`` calls it once before
    serving; libraries and tests never need to.

    :param settings: the Sovereign's settings (``observability.log_format``, ``log_level``).
    :param stream: where lines are written.
    :return: the handler installed on the root logger.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _CatalystHandler):
            root.removeHandler(existing)
            existing.close()
    handler = _CatalystHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(_formatter(settings.observability.log_format))
    handler.addFilter(_TraceContext())
    root.addHandler(handler)
    root.setLevel(settings.observability.log_level.value.upper())
    return handler
