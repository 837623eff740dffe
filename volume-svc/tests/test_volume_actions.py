"""Volume actions Tempest's VolumesActionsTest takes: ``os-set_bootable`` and
``os-update_readonly_flag`` (Cinder's admin metadata ``readonly``, shown in ``metadata``)."""

from __future__ import annotations

from volapi_helpers import volume_api


async def test_bootable_and_readonly_flags(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", metadata={"k": "v"})
        action = f"/volumes/{vol['id']}/action"
        for given, shown in ((True, "true"), ("false", "false"), ("yes", "true")):
            resp = await api.post("p1", action, {"os-set_bootable": {"bootable": given}})
            assert resp.status_code == 200, resp.text
            body = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
            assert body["bootable"] == shown

        resp = await api.post("p1", action, {"os-update_readonly_flag": {"readonly": True}})
        assert resp.status_code == 202, resp.text
        body = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert body["metadata"] == {"k": "v", "readonly": "True"}
        # The owner's metadata calls neither show nor change the admin's key.
        meta = f"/volumes/{vol['id']}/metadata"
        assert (await api.get("p1", meta)).json() == {"metadata": {"k": "v"}}
        await api.put("p1", meta, {"metadata": {"other": "1"}})
        body = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert body["metadata"] == {"other": "1", "readonly": "True"}
        resp = await api.post("p1", action, {"os-update_readonly_flag": {"readonly": "false"}})
        assert resp.status_code == 202
        body = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert body["metadata"]["readonly"] == "False"

        # Only an available volume changes its flag (Cinder's InvalidVolume otherwise).
        await api.call("p1", "reserve", volume_id=vol["id"])
        resp = await api.post("p1", action, {"os-update_readonly_flag": {"readonly": True}})
        assert resp.status_code == 400 and "must be available" in resp.text
        await api.call("p1", "unreserve", volume_id=vol["id"])

        # Another project's volume is not found, whatever the action.
        resp = await api.post("p2", action, {"os-set_bootable": {"bootable": True}})
        assert resp.status_code == 404
        types = [kind for kind, _ in await api.events()]
        assert types.count("volume.volume.update.end") >= 6
