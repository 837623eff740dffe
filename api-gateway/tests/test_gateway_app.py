"""The gateway skeleton starts on its own database and answers health and RPC."""

from __future__ import annotations

from api_gateway.app import create_app
from api_gateway.settings import GatewaySettings
from common_rpc import RpcClient
from common_rpc.testing import running_app, signing_keys


async def test_app_serves_health_and_ping(tmp_path) -> None:
    signing_keys(tmp_path / "keys")
    app = create_app(GatewaySettings(data_dir=tmp_path))
    async with running_app(app) as http:
        assert (await http.get("/readyz")).status_code == 200
        pong = await RpcClient(app.state.runtime.broker).call("gateway", "ping", timeout=10)
        assert pong["service"] == "gateway"
    assert (tmp_path / "gateway.db").exists()
