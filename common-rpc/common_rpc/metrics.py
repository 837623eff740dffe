"""Prometheus collectors shared by every process, with one label scheme.

>>> RPC_CALLS.labels("network", "ping", "ok").inc()
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

RPC_CALLS = Counter(
    "stackling_rpc_client_calls_total", "RPC calls and casts made", ["service", "method", "outcome"]
)
RPC_SERVER_SECONDS = Histogram(
    "stackling_rpc_server_seconds",
    "Time spent serving RPC requests",
    ["topic", "method", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "stackling_events_published_total", "Events confirmed by the broker", ["event_type"]
)
EVENTS_CONSUMED = Counter(
    "stackling_events_consumed_total", "Events handled by a subscriber", ["group", "outcome"]
)
OUTBOX_PENDING = Gauge("stackling_outbox_pending", "Events waiting in the outbox")
DEAD_LETTER_DEPTH = Gauge(
    "stackling_dead_letter_messages", "Messages waiting in a dead-letter queue", ["queue"]
)
HTTP_REQUESTS = Histogram(
    "stackling_http_request_seconds", "HTTP requests served", ["method", "route", "status"]
)


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def cached_labels(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, memoised: the lookup is measurable on the RPC hot path."""
    key = (id(metric), labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child
