"""Stackling's shared library: RPC and events over RabbitMQ, and the service chassis.

Services import from here and from ``common_rpc.chassis``; nothing else is public.

    broker = Broker(MessagingConfig(url="amqp://guest:guest@127.0.0.1/"))
    reply = await RpcClient(broker).call("network", "ping", timeout=5)
"""

from .broker import Broker, MessagingConfig
from .context import RequestContext, current_context, new_request_id, use_context
from .errors import (
    Conflict,
    Forbidden,
    InternalError,
    Invalid,
    NotFound,
    QuotaExceeded,
    RpcError,
    RpcTimeout,
    ServiceUnavailable,
    Unauthorized,
)
from .events import Event, EventPublisher, EventSubscriber, MemoryDeduper, make_event
from .outbox import OutboxRelay, add_event
from .rpc import RpcClient, RpcRouter, RpcServer
from .sql_store import SqlEventLog, SqlOperationLog

__all__ = [
    "Broker",
    "Conflict",
    "Event",
    "EventPublisher",
    "EventSubscriber",
    "Forbidden",
    "InternalError",
    "Invalid",
    "MemoryDeduper",
    "MessagingConfig",
    "NotFound",
    "OutboxRelay",
    "QuotaExceeded",
    "RequestContext",
    "RpcClient",
    "RpcError",
    "RpcRouter",
    "RpcServer",
    "RpcTimeout",
    "ServiceUnavailable",
    "SqlEventLog",
    "SqlOperationLog",
    "Unauthorized",
    "add_event",
    "current_context",
    "make_event",
    "new_request_id",
    "use_context",
]
