"""compute-api starts on its own database, answers health and RPC, and hears port events."""

from __future__ import annotations

import asyncio
import uuid

from common_rpc import Event, RpcClient, RpcTimeout, make_event
from common_rpc.contracts.payloads import PortPayload
from common_rpc.testing import running_app, signing_keys
from compute_svc.app import create_app
from compute_svc.domain.port_events import PortEvents
from compute_svc.settings import ComputeSettings


def _port_event(port_id: str, status: str) -> Event:
    payload = PortPayload(id=port_id, project_id="p", network_id="n", status=status)
    return make_event("network.port.update.end", payload)


async def test_app_serves_health_and_ping(tmp_path) -> None:
    signing_keys(tmp_path / "keys")
    app = create_app(ComputeSettings(data_dir=tmp_path))
    async with running_app(app) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        runtime = app.state.runtime
        pong = await RpcClient(runtime.broker).call("compute", "ping", timeout=10)
        assert pong["service"] == "compute"
        assert (await http.get("/servers")).status_code == 401  # no gateway signature
    assert (tmp_path / "compute.db").exists()


async def test_port_waiter_gets_the_matching_status() -> None:
    ports = PortEvents()
    port_id = str(uuid.uuid4())
    waiter = ports.expect(port_id, "ACTIVE")
    await ports.on_event(_port_event(port_id, "DOWN"))
    await ports.on_event(_port_event(str(uuid.uuid4()), "ACTIVE"))
    assert not waiter.future.done()
    await ports.on_event(_port_event(port_id, "ACTIVE"))
    assert (await ports.wait(waiter, timeout=1)).status == "ACTIVE"
    assert ports._waiters == {}


async def test_port_waiter_times_out_cleanly() -> None:
    ports = PortEvents()
    waiter = ports.expect("p1", "ACTIVE")
    try:
        await ports.wait(waiter, timeout=0.05)
    except RpcTimeout as exc:
        assert "p1" in str(exc)
    else:
        raise AssertionError("expected a timeout")
    await asyncio.sleep(0)
    assert ports._waiters == {}
