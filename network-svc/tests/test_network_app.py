"""network-api starts on its own database and answers health, RPC and signed requests only."""

from __future__ import annotations

import uuid

from common_rpc import RequestContext, RpcClient
from common_rpc.chassis.identity import IDENTITY_HEADER
from common_rpc.testing import running_app, signing_keys
from network_svc.app import create_app
from network_svc.settings import NetworkSettings


async def test_app_serves_health_ping_and_checks_identity(tmp_path) -> None:
    signer, _public = signing_keys(tmp_path / "keys")
    topic = f"nettest-{uuid.uuid4().hex[:10]}"
    app = create_app(NetworkSettings(data_dir=tmp_path, rpc_topic=topic))
    async with running_app(app) as http:
        assert (await http.get("/readyz")).status_code == 200
        pong = await RpcClient(app.state.runtime.broker).call(topic, "ping", timeout=10)
        assert pong["service"] == "network"
        assert (await http.get("/nothing-here")).status_code == 401
        token = signer.sign(RequestContext(project_id="p1", roles=frozenset({"member"})))
        signed = await http.get("/nothing-here", headers={IDENTITY_HEADER: token})
        assert signed.status_code == 404
        listed = await http.get("/v2.0/extensions", headers={IDENTITY_HEADER: token})
        aliases = {ext["alias"] for ext in listed.json()["extensions"]}
        assert {"security-group", "external-net", "binding"} <= aliases
    assert (tmp_path / "network.db").exists()
