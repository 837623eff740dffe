"""The floor for a Python proxy: a minimal aiohttp forwarder with a fixed identity header.

No token check, no policy, no signing per request: it only streams each request to the
target and the answer back, with one pooled client session. What the gateway adds on top
of this is what its token check, policy and signing cost.

    python -m bench.min_forwarder PORT TARGET_URL IDENTITY_HEADER_VALUE
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import uvloop
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def make_app(target: str, identity: str) -> web.Application:
    app = web.Application()

    async def start(app: web.Application) -> None:
        app["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

    async def stop(app: web.Application) -> None:
        await app["client"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Stackling-Identity"] = identity
        async with request.app["client"].request(
            request.method, target + request.path_qs, headers=headers, data=request.content
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers[key] = value
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # wrk drops its connections mid-request when a run ends
            return response

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


if __name__ == "__main__":
    port, target, identity = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
    # The same event loop the services get from uvicorn, so the floor is a fair one.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        make_app(target, identity), host="127.0.0.1", port=port, print=None, access_log=None
    )
