"""volume-api starts on its own database and answers health, RPC and signed requests only."""

from __future__ import annotations

from common_rpc import RequestContext, RpcClient
from common_rpc.chassis.identity import IDENTITY_HEADER
from common_rpc.testing import running_app, signing_keys
from volume_svc.app import create_app
from volume_svc.settings import VolumeSettings


async def test_app_serves_health_ping_and_checks_identity(tmp_path) -> None:
    signer, _public = signing_keys(tmp_path / "keys")
    app = create_app(VolumeSettings(data_dir=tmp_path))
    async with running_app(app) as http:
        assert (await http.get("/readyz")).status_code == 200
        pong = await RpcClient(app.state.runtime.broker).call("volume", "ping", timeout=10)
        assert pong["service"] == "volume"
        assert (await http.get("/nothing-here")).status_code == 401
        token = signer.sign(RequestContext(project_id="p1", roles=frozenset({"member"})))
        signed = await http.get("/nothing-here", headers={IDENTITY_HEADER: token})
        assert signed.status_code == 404
        listed = await http.get("/v3/extensions", headers={IDENTITY_HEADER: token})
        # What the service implements (Cinder's aliases), plugins none here.
        assert "os-volume-actions" in {e["alias"] for e in listed.json()["extensions"]}
    assert (tmp_path / "volume.db").exists()
