"""Volume transfers (``openstack volume transfer request create/accept/list/show/delete``):
Cinder's os-volume-transfer and volume-transfers shapes, the auth key shown once, and
accept moving the volume, its snapshots and their quota to the accepting project."""

from __future__ import annotations

from typing import Any

from volapi_helpers import Api, volume_api

TRANSFER_KEYS = {"id", "name", "volume_id", "links"}
DETAIL_KEYS = TRANSFER_KEYS | {"created_at"}
HISTORY_KEYS = DETAIL_KEYS | {
    "source_project_id", "destination_project_id", "accepted", "no_snapshots",
}  # fmt: skip


async def _usage(api: Api, project: str) -> dict[str, int]:
    resp = await api.get(project, f"/os-quota-sets/{project}?usage=True", "admin")
    quota = resp.json()["quota_set"]
    return {k: quota[k]["in_use"] for k in ("volumes", "gigabytes", "snapshots")}


async def _create(api: Api, path: str, volume_id: str, **extra: Any) -> dict[str, Any]:
    resp = await api.post("p1", path, {"transfer": {"volume_id": volume_id, **extra}})
    assert resp.status_code == 202, resp.text
    return resp.json()["transfer"]


async def test_transfer_create_show_list_accept_moves_volume_snapshots_and_quota(
    tmp_path,
) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", size=2)
        snap = await api.snapshot("p1", vol["id"])
        before = await _usage(api, "p1")
        assert before == {"volumes": 1, "gigabytes": 4, "snapshots": 1}

        created = await _create(api, "/os-volume-transfer", vol["id"], name="to-p2")
        assert set(created) == DETAIL_KEYS | {"auth_key"}
        assert created["name"] == "to-p2" and len(created["auth_key"]) == 16
        tid = created["id"]
        assert created["links"][0]["href"].endswith(f"/v3/p1/os-volume-transfer/{tid}")
        shown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert shown["status"] == "awaiting-transfer"

        # The giver sees it (never its key again); nobody else does.
        body = (await api.get("p1", f"/os-volume-transfer/{tid}")).json()["transfer"]
        assert set(body) == DETAIL_KEYS and body["id"] == tid
        listed = (await api.get("p1", "/os-volume-transfer")).json()["transfers"]
        assert [set(t) for t in listed] == [TRANSFER_KEYS]
        detail = (await api.get("p1", "/os-volume-transfer/detail")).json()["transfers"]
        assert detail == [body]
        history = (await api.get("p1", f"/volume-transfers/{tid}")).json()["transfer"]
        assert set(history) == HISTORY_KEYS and history["source_project_id"] == "p1"
        assert history["accepted"] is False and history["no_snapshots"] is False
        assert (await api.get("p2", f"/os-volume-transfer/{tid}")).status_code == 404
        assert (await api.get("p2", "/os-volume-transfer")).json()["transfers"] == []
        assert (await api.delete("p2", f"/os-volume-transfer/{tid}")).status_code == 404

        # A volume awaiting its transfer is neither deleted, extended nor offered twice.
        assert (await api.delete("p1", f"/volumes/{vol['id']}")).status_code == 400
        extend = {"os-extend": {"new_size": 3}}
        assert (await api.post("p1", f"/volumes/{vol['id']}/action", extend)).status_code == 400
        again = await api.post("p1", "/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}})
        assert again.status_code == 400

        wrong = await api.post(
            "p2", f"/os-volume-transfer/{tid}/accept", {"accept": {"auth_key": "x"}}
        )
        assert wrong.status_code == 400
        assert wrong.json()["badRequest"]["message"] == (
            f"Invalid auth key: Attempt to transfer {tid} with invalid auth key."
        )
        accept = {"accept": {"auth_key": created["auth_key"]}}
        resp = await api.post("p2", f"/os-volume-transfer/{tid}/accept", accept)
        assert resp.status_code == 202, resp.text
        assert set(resp.json()["transfer"]) == TRANSFER_KEYS
        assert resp.json()["transfer"]["volume_id"] == vol["id"]

        # The volume and its snapshot are p2's now, with their quota.
        assert (await api.get("p1", f"/volumes/{vol['id']}")).status_code == 404
        moved = (await api.get("p2", f"/volumes/{vol['id']}")).json()["volume"]
        assert moved["status"] == "available" and moved["os-vol-tenant-attr:tenant_id"] == "p2"
        assert (await api.get("p2", f"/snapshots/{snap['id']}")).status_code == 200
        assert await _usage(api, "p1") == {"volumes": 0, "gigabytes": 0, "snapshots": 0}
        assert await _usage(api, "p2") == before
        # The transfer is gone: a second accept finds nothing.
        resp = await api.post("p2", f"/os-volume-transfer/{tid}/accept", accept)
        assert resp.status_code == 404
        assert (await api.get("p1", "/os-volume-transfer")).json()["transfers"] == []

        # The new owner deletes what it took, and its quota goes back to nothing.
        assert (await api.delete("p2", f"/snapshots/{snap['id']}")).status_code == 202
        await api.wait_status("p2", "snapshots", snap["id"], "deleted")
        assert (await api.delete("p2", f"/volumes/{vol['id']}")).status_code == 202
        await api.wait_status("p2", "volumes", vol["id"], "deleted")
        assert await _usage(api, "p2") == {"volumes": 0, "gigabytes": 0, "snapshots": 0}
        assert (await api.audit())["findings"] == []


async def test_volume_transfers_withdraw_quota_and_faults(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", size=3)
        created = await _create(api, "/volume-transfers", vol["id"], no_snapshots=True)
        tid = created["id"]
        assert created["links"][0]["href"].endswith(f"/v3/p1/volume-transfers/{tid}")
        # Withdrawn: the volume is available again, and can be offered anew.
        assert (await api.delete("p1", f"/volume-transfers/{tid}")).status_code == 202
        assert (await api.get("p1", f"/volume-transfers/{tid}")).status_code == 404
        shown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert shown["status"] == "available"

        # A taker over its quota gets Cinder's 413 and nothing moves.
        created = await _create(api, "/volume-transfers", vol["id"])
        await api.put("p1", "/os-quota-sets/p2", {"quota_set": {"gigabytes": 2}}, "admin")
        accept = {"accept": {"auth_key": created["auth_key"]}}
        resp = await api.post("p2", f"/volume-transfers/{created['id']}/accept", accept)
        assert resp.status_code == 413 and "overLimit" in resp.json(), resp.text
        shown = (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]
        assert shown["status"] == "awaiting-transfer"
        assert await _usage(api, "p1") == {"volumes": 1, "gigabytes": 3, "snapshots": 0}
        assert await _usage(api, "p2") == {"volumes": 0, "gigabytes": 0, "snapshots": 0}

        missing = "0e4bd7d3-4e8f-4a43-8a84-1a2d4d09c0a5"
        faults = [
            ("/volume-transfers", {"transfer": {}}, 400, "'volume_id' is a required property"),
            ("/volume-transfers", {"transfer": {"volume_id": missing}}, 404,
             f"Volume {missing} could not be found."),
            ("/volume-transfers", {"transfer": {"volume_id": vol["id"], "x": 1}}, 400,
             "Additional properties are not allowed"),
            ("/volume-transfers", {"volume_id": vol["id"]}, 400,
             "'transfer' is a required property"),
            (f"/volume-transfers/{missing}/accept", {"accept": {"auth_key": "k"}}, 404,
             f"Transfer {missing} could not be found."),
            (f"/volume-transfers/{created['id']}/accept", {"accept": {}}, 400,
             "'auth_key' is a required property"),
            (f"/volume-transfers/{created['id']}/accept", {}, 400,
             "'accept' is a required property"),
        ]  # fmt: skip
        for path, body, status, message in faults:
            resp = await api.post("p1", path, body)
            assert resp.status_code == status, (path, body, resp.text)
            ((_key, fault),) = resp.json().items()
            assert message in fault["message"], resp.text
        # Another project cannot offer p1's volume.
        resp = await api.post("p2", "/volume-transfers", {"transfer": {"volume_id": vol["id"]}})
        assert resp.status_code == 404
        # Admins list every project's with all_tenants.
        listed = (await api.get("p9", "/volume-transfers?all_tenants=1", "admin")).json()
        assert [t["id"] for t in listed["transfers"]] == [created["id"]]
