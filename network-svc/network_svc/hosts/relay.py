"""A TCP relay in the root namespace: the controller's broker on its underlay address.

The broker listens on the root namespace's loopback only (and RabbitMQ lets ``guest`` in
from loopback only), while the simulated hosts reach the controller at its address on the
fabric. The relay listens there and connects each client to the broker from loopback:
to the broker, every host's agent is a local client, as with an SSH tunnel.

    python -m network_svc.hosts.relay 198.19.0.1:5672 127.0.0.1:5672
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _detect_death(writer: asyncio.StreamWriter) -> None:
    """A host killed with its namespace sends no FIN: without this, its connection (and
    the broker's, holding the messages it had not acked) would live on until the broker's
    heartbeat timeout. Keepalive probes and a 3 s limit on unacknowledged data end it in
    seconds, so the broker requeues what the dead agent held."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 3000)


async def serve(listen: str, target: str) -> None:
    """Relay every connection to ``listen`` to ``target`` until SIGTERM or SIGINT."""
    to_host, to_port = _split(target)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _detect_death(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(to_host, to_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    host, port = _split(listen)
    server = await asyncio.start_server(client, host, port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    listen, target = sys.argv[1:3]
    asyncio.run(serve(listen, target))


if __name__ == "__main__":
    main()
