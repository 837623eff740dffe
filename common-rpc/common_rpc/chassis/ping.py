"""The ``ping`` RPC every service answers, so operators and peers can see who is alive.

runtime.serve("network", deps, ping_router("network", settings.host))
await runtime.rpc.call("network", "ping", timeout=5)   # {"service": "network", ...}
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..context import current_context
from ..rpc import RpcRouter

_STARTED = time.time()


def ping_router(service: str, host: str) -> RpcRouter:
    """A router with one read-only method, ``ping``, describing this process."""
    router = RpcRouter()

    @router.handler("ping")
    async def ping(_deps: Any) -> dict[str, Any]:
        return {
            "service": service,
            "host": host,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - _STARTED, 3),
            "request_id": current_context().request_id,
        }

    return router
