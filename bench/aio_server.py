"""An asyncio echo server for the RPC benchmark: common-rpc's ``RpcServer`` or raw aio-pika.

Both run on uvloop (as the services do under uvicorn), consume a durable queue of the
given type with the same prefetch, answer through the request's ``reply_to`` with
``mandatory=False`` and ack after replying. The process prints ``ready`` once it consumes
and stops cleanly on SIGTERM.

    python -m bench.aio_server common --topic bench.1a2b
    python -m bench.aio_server raw --queue bench.raw.1a2b
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import orjson


async def serve_common(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from common_rpc import Broker, MessagingConfig, RpcRouter, RpcServer

    router = RpcRouter()

    @router.handler()
    async def echo(deps: object, value: str) -> dict[str, str]:
        return {"echo": value}

    config = MessagingConfig(
        url=args.url, rpc_queue_type=args.queue_type, rpc_prefetch=args.prefetch
    )
    broker = Broker(config, name="bench-server")
    server = RpcServer(broker, args.topic, deps=None)
    server.include(router)
    await server.start()
    print("ready", flush=True)
    await stop.wait()
    await server.stop(drain_s=2)
    await broker.close()


async def serve_raw(args: argparse.Namespace, stop: asyncio.Event) -> None:
    import aio_pika

    connection = await aio_pika.connect(args.url)
    channel = await connection.channel(publisher_confirms=False)
    await channel.set_qos(prefetch_count=args.prefetch)
    queue = await channel.declare_queue(
        args.queue, durable=True, arguments={"x-queue-type": args.queue_type}
    )
    exchange = channel.default_exchange

    async def on_request(message: Any) -> None:
        request = orjson.loads(message.body)
        reply = orjson.dumps({"r": {"echo": request["a"]["value"]}})
        await exchange.publish(
            aio_pika.Message(reply, correlation_id=message.correlation_id),
            routing_key=message.reply_to or "",
            mandatory=False,
        )
        await message.ack()

    tag = await queue.consume(on_request)
    print("ready", flush=True)
    await stop.wait()
    await queue.cancel(tag)
    await connection.close()


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.system == "common":
        await serve_common(args, stop)
    else:
        await serve_raw(args, stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=["common", "raw"])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--topic", default="", help="common-rpc topic (queue rpc.<topic>)")
    parser.add_argument("--queue", default="", help="raw queue name")
    parser.add_argument("--queue-type", choices=["classic", "quorum"], default="classic")
    parser.add_argument("--prefetch", type=int, default=64)
    args = parser.parse_args()

    import uvloop

    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
