"""One JSON object per log line, each carrying the service, the host and the request context.

    configure_logging("network", "INFO")
    with use_context(RequestContext(project_id="p1")):
        logging.getLogger("network").info("port bound", extra={"port_id": "x"})
    # {"timestamp": "...", "level": "INFO", "logger": "network", "message": "port bound",
    #  "service": "network", "host": "h1", "request_id": "req-...", "project_id": "p1",
    #  "user_id": null, "port_id": "x"}

The context comes from ``common_rpc.context.current_context()`` at the moment of the call,
so lines logged while serving an HTTP request, an RPC request or an event all carry
its ``request_id``. ``json=False`` gives a one-line text format for a terminal.
"""

from __future__ import annotations

import logging
import socket
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from ..context import current_context

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_CONTEXT_ATTRS = ("service", "host", "request_id", "project_id", "user_id")
_STANDARD = _RECORD_ATTRS | frozenset(_CONTEXT_ATTRS)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(project_id)s] %(message)s"


class ContextFilter(logging.Filter):
    """Stamps each record with the service, the host and the current request context."""

    def __init__(self, service: str, host: str) -> None:
        super().__init__()
        self.service = service
        self.host = host

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = current_context()
        record.service = self.service
        record.host = self.host
        record.request_id = ctx.request_id
        record.project_id = ctx.project_id
        record.user_id = ctx.user_id
        return True


class JsonFormatter(logging.Formatter):
    """Renders a record as one compact JSON object (orjson)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT_ATTRS:
            line[name] = getattr(record, name, None)
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class _StacklingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure_logging`` installed, so a second call replaces it."""


def configure_logging(
    service: str,
    level: str | int = "INFO",
    json: bool = True,
    *,
    host: str | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send the root logger to ``stream`` (stderr) as JSON lines; safe to call again."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StacklingHandler)]:
        root.removeHandler(old)
    handler = _StacklingHandler(stream or sys.stderr)
    # On the handler, not the logger: records propagated from child loggers pass here.
    handler.addFilter(ContextFilter(service, host or socket.gethostname()))
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
