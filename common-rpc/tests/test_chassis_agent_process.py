"""An agent process stops cleanly on SIGTERM, and a child it forks cannot stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from common_rpc.chassis import agent_process

    class Agent:
        async def start(self):
            # A forked helper that is stopped with SIGTERM (as pyroute2 stops its own):
            # its signal must not reach this loop.
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            time.sleep(0.3)  # the helper works a while before it is stopped
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            print("started", flush=True)

        async def stop(self):
            print("stopped", flush=True)

    os.register_at_fork(after_in_child=agent_process._detach_child_from_signals)
    asyncio.run(agent_process.serve_until_signalled(Agent()))
    """
)


def test_sigterm_stops_the_agent_and_a_forked_child_does_not() -> None:
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"
        time.sleep(0.5)
        assert proc.poll() is None, "the child's SIGTERM stopped the agent"
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert out == "stopped\n" and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
