"""oslo.messaging echo server for the RPC benchmark: rabbit driver, threading executor.

Stock driver settings (no config files are read); ``--queue-type quorum`` turns on
``rabbit_quorum_queue``. The process prints ``ready`` once it consumes and stops cleanly
on SIGTERM.

    python bench/oslo_server.py --topic bench_oslo_1a2b --exchange bench_oslo_1a2b
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

import oslo_messaging
import oslo_messaging.opts
from oslo_config import cfg


def oslo_conf(*, quorum: bool) -> cfg.ConfigOpts:
    """The global config, as OpenStack services use it, with defaults and no config file."""
    conf = cfg.CONF
    conf([], project="stackling-bench", default_config_files=[], default_config_dirs=[])
    for group, opts in oslo_messaging.opts.list_opts():
        conf.register_opts(opts, group=None if group == "DEFAULT" else group)
    if quorum:
        conf.set_override("rabbit_quorum_queue", True, group="oslo_messaging_rabbit")
    return conf


class EchoEndpoint:
    """The one RPC method the benchmark calls."""

    def echo(self, ctxt: dict[str, Any], value: str) -> dict[str, str]:
        return {"echo": value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="rabbit://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--server", default="bench")
    parser.add_argument("--queue-type", choices=["classic", "quorum"], default="classic")
    args = parser.parse_args()

    conf = oslo_conf(quorum=args.queue_type == "quorum")
    transport = oslo_messaging.get_rpc_transport(conf, url=args.url)
    target = oslo_messaging.Target(exchange=args.exchange, topic=args.topic, server=args.server)
    server = oslo_messaging.get_rpc_server(
        transport, target, [EchoEndpoint()], executor="threading"
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print("ready", flush=True)
    stop.wait()
    server.stop()
    server.wait()
    transport.cleanup()


if __name__ == "__main__":
    main()
