"""Block Storage v3 over HTTP with a real file backend (the iSCSI target is the fake one)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from volapi_helpers import volume_api

GIB = 1 << 30


def _write_at(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


async def _event_types(api) -> list[str]:
    return [kind for kind, _payload in await api.events()]


async def test_create_show_list_update_delete_with_real_files(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", size=2, name="data", metadata={"k": "v"})
        assert vol["size"] == 2 and vol["name"] == "data" and vol["bootable"] == "false"
        assert vol["volume_type"] == "__DEFAULT__" and vol["attachments"] == []
        # Show: the owner sees the project (Cinder's tenant attribute), not the host.
        assert vol["os-vol-tenant-attr:tenant_id"] == "p1" and "os-vol-host-attr:host" not in vol
        path = api.agent.host.backend.volume_path(vol["id"])
        assert path.stat().st_size == 2 * GIB
        assert os.stat(path).st_blocks == 0  # sparse: nothing allocated yet

        listed = (await api.get("p1", "/volumes")).json()
        assert [v["id"] for v in listed["volumes"]] == [vol["id"]]
        assert set(listed["volumes"][0]) == {"id", "name", "links"}
        detail = (await api.get("p1", "/volumes/detail?name=data")).json()["volumes"]
        assert detail[0]["metadata"] == {"k": "v"}
        assert (await api.get("p1", "/volumes/detail?name=other")).json()["volumes"] == []

        put = await api.put("p1", f"/volumes/{vol['id']}", {"volume": {"name": "renamed"}})
        assert put.status_code == 200 and put.json()["volume"]["name"] == "renamed"

        admin_view = (await api.get("p1", f"/volumes/{vol['id']}", "admin")).json()["volume"]
        assert admin_view["os-vol-host-attr:host"] == f"{api.names.host}@file#file"

        assert (await api.delete("p1", f"/volumes/{vol['id']}")).status_code == 202
        await api.wait_status("p1", "volumes", vol["id"], "deleted")
        assert not path.exists()
        types = await _event_types(api)
        for action in ("create", "update", "delete"):
            assert f"volume.volume.{action}.end" in types
        assert (await api.audit())["findings"] == []


async def test_invalid_input_and_other_projects_get_cinder_faults(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        for size in (0, -1, "x", None, 1.5):
            resp = await api.post("p1", "/volumes", {"volume": {"size": size}})
            assert resp.status_code == 400, (size, resp.text)
            assert resp.json()["badRequest"]["code"] == 400
        # Over the largest volume the backend makes: Cinder's per-volume limit, 413.
        resp = await api.post("p1", "/volumes", {"volume": {"size": 10**9}})
        assert resp.status_code == 413 and "overLimit" in resp.json()
        resp = await api.post("p1", "/volumes", {"volume": {"size": 1, "volume_type": "gold"}})
        assert resp.status_code == 404 and "itemNotFound" in resp.json()
        missing = "0e4bd7d3-4e8f-4a43-8a84-1a2d4d09c0a5"
        resp = await api.post("p1", "/volumes", {"volume": {"size": 1, "snapshot_id": missing}})
        assert resp.status_code == 404
        resp = await api.post("p1", "/volumes", {"volume": {"size": 1, "snapshot_id": "nope"}})
        assert resp.status_code == 400
        assert (await api.post("p1", "/volumes", {"size": 1})).status_code == 400
        assert (await api.post("p1", "/volumes", [1])).status_code == 400

        vol = await api.volume("p1")
        assert (await api.get("p2", f"/volumes/{vol['id']}")).status_code == 404
        assert (await api.delete("p2", f"/volumes/{vol['id']}")).status_code == 404
        assert (await api.get("p2", "/volumes")).json()["volumes"] == []
        # The project in the URL must be the token's.
        headers = api.as_("p2")
        assert (await api.http.get(f"/v3/p1/volumes/{vol['id']}", headers=headers)).status_code
        assert (await api.get("p1", "/volumes/not-a-uuid")).status_code == 404
        everyone = (await api.get("p9", "/volumes?all_tenants=1", "admin")).json()["volumes"]
        assert [v["id"] for v in everyone] == [vol["id"]]

        # Nothing half-created: only the one good volume has a file and a row.
        assert api.agent.host.backend.list_volumes() == {vol["id"]}
        quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
        assert quota["volumes"]["in_use"] == 1 and quota["gigabytes"]["in_use"] == 1


async def test_snapshot_clone_extend_and_reset_status(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", size=1)
        backend = api.agent.host.backend
        _write_at(backend.volume_path(vol["id"]), 12345, b"old content")
        snap = await api.snapshot("p1", vol["id"], name="s")
        assert snap["size"] == 1 and snap["volume_id"] == vol["id"]
        _write_at(backend.volume_path(vol["id"]), 12345, b"new content")
        assert backend.snapshot_path(snap["id"]).read_bytes()[12345:12356] == b"old content"

        from_snap = await api.volume("p1", size=2, snapshot_id=snap["id"])
        data = backend.volume_path(from_snap["id"]).read_bytes()
        assert data[12345:12356] == b"old content" and len(data) == 2 * GIB
        clone = await api.volume("p1", source_volid=vol["id"])
        assert clone["size"] == 1
        assert backend.volume_path(clone["id"]).read_bytes()[12345:12356] == b"new content"
        small = await api.post("p1", "/volumes", {"volume": {"size": 1, "snapshot_id": snap["id"]}})
        assert small.status_code == 202  # equal size is fine
        await api.wait_status("p1", "volumes", small.json()["volume"]["id"], "available")

        # A volume with snapshots is not deleted; the snapshot goes first.
        resp = await api.delete("p1", f"/volumes/{vol['id']}")
        assert resp.status_code == 400 and "snapshots" in resp.json()["badRequest"]["message"]
        assert (await api.delete("p1", f"/snapshots/{snap['id']}")).status_code == 202
        await api.wait_status("p1", "snapshots", snap["id"], "deleted")
        assert not backend.snapshot_path(snap["id"]).exists()

        ext = await api.post("p1", f"/volumes/{vol['id']}/action", {"os-extend": {"new_size": 3}})
        assert ext.status_code == 202, ext.text
        grown = await api.wait_status("p1", "volumes", vol["id"], "available")
        assert grown["size"] == 3 and backend.volume_path(vol["id"]).stat().st_size == 3 * GIB
        shrink = {"os-extend": {"new_size": 2}}
        assert (await api.post("p1", f"/volumes/{vol['id']}/action", shrink)).status_code == 400

        reset = {"os-reset_status": {"status": "error"}}
        assert (await api.post("p1", f"/volumes/{vol['id']}/action", reset)).status_code == 403
        ok = await api.post("p1", f"/volumes/{vol['id']}/action", reset, "admin")
        assert ok.status_code == 202
        assert (await api.get("p1", f"/volumes/{vol['id']}")).json()["volume"]["status"] == "error"
        bad = {"os-reset_status": {"status": "flying"}}
        assert (
            await api.post("p1", f"/volumes/{vol['id']}/action", bad, "admin")
        ).status_code == 400

        types = await _event_types(api)
        assert "volume.snapshot.create.end" in types and "volume.snapshot.delete.end" in types
        assert "volume.volume.extend.end" in types
        quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
        assert quota["snapshots"]["in_use"] == 0
        assert quota["gigabytes"]["in_use"] == 3 + 2 + 1 + 1


async def test_types_services_and_quota_admin(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        listed = (await api.get("p1", "/types")).json()["volume_types"]
        assert [t["name"] for t in listed] == ["__DEFAULT__"]
        body = {"volume_type": {"name": "gold"}}
        assert (await api.post("p1", "/types", body)).status_code == 403
        gold = (await api.post("p1", "/types", body, "admin")).json()["volume_type"]
        vol = await api.volume("p1", volume_type="gold")
        assert vol["volume_type"] == "gold"
        assert (await api.delete("p1", f"/types/{gold['id']}", "admin")).status_code == 400

        assert (await api.get("p1", "/os-services")).status_code == 403
        await api.agent.heartbeat.report()
        for _ in range(100):
            services = (await api.get("p1", "/os-services", "admin")).json()["services"]
            if services:
                break
            await asyncio.sleep(0.05)
        assert services[0]["host"] == f"{api.names.host}@file" and services[0]["state"] == "up"

        put = await api.put("p1", "/os-quota-sets/p1", {"quota_set": {"volumes": 1}})
        assert put.status_code == 403
        put = await api.put("p1", "/os-quota-sets/p1", {"quota_set": {"volumes": 1}}, "admin")
        assert put.status_code == 200 and put.json()["quota_set"]["volumes"] == 1
        over = await api.post("p1", "/volumes", {"volume": {"size": 1}})
        assert over.status_code == 413 and "overLimit" in over.json()
        assert "volumes" in over.json()["overLimit"]["message"]


async def test_openstack_client_body_and_a_failed_create_releases_everything(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        body = {
            "volume": {
                "size": 1, "name": "osc", "description": None, "volume_type": None,
                "availability_zone": None, "metadata": None, "snapshot_id": None,
                "source_volid": None, "imageRef": None, "backup_id": None,
                "consistencygroup_id": None,
            }
        }  # fmt: skip
        resp = await api.post("p1", "/volumes", body)
        assert resp.status_code == 202, resp.text
        created = resp.json()["volume"]
        assert created["status"] == "creating" and created["description"] == ""
        assert not any(k.startswith("os-vol-") for k in created)
        source = await api.wait_status("p1", "volumes", created["id"], "available")
        snap = await api.snapshot("p1", source["id"])
        # The snapshot's file vanishes behind the service's back: the clone fails.
        api.agent.host.backend.snapshot_path(snap["id"]).unlink()
        resp = await api.post("p1", "/volumes", {"volume": {"snapshot_id": snap["id"]}})
        assert resp.status_code == 202
        failed_id = resp.json()["volume"]["id"]
        for _ in range(200):
            shown = (await api.get("p1", f"/volumes/{failed_id}")).json()["volume"]
            if shown["status"] != "creating":
                break
            await asyncio.sleep(0.05)
        assert shown["status"] == "error"
        assert failed_id not in api.agent.host.backend.list_volumes()
        assert (await api.delete("p1", f"/volumes/{failed_id}")).status_code == 202
        await api.wait_status("p1", "volumes", failed_id, "deleted")
        quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
        assert quota["volumes"]["in_use"] == 1 and quota["gigabytes"]["in_use"] == 2


async def test_malformed_requests_answer_4xx_faults_never_500(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        vid = vol["id"]
        cases = [
            ("put", f"/volumes/{vid}", {"volume": {"name": 5}}),
            ("put", f"/volumes/{vid}", {"volume": {"metadata": {"k": 1}}}),
            ("put", f"/volumes/{vid}", {"volume": "x"}),
            ("post", f"/volumes/{vid}/action", {}),
            ("post", f"/volumes/{vid}/action", {"os-extend": {"new_size": "abc"}}),
            ("post", f"/volumes/{vid}/action", {"os-extend": None}),
            ("post", f"/volumes/{vid}/action", {"os-frobnicate": {}}),
            ("post", "/volumes", {"volume": {"size": 1, "snapshot_id": "a", "source_volid": "b"}}),
            ("post", "/volumes", {"volume": {"size": 1, "availability_zone": "mars"}}),
            ("post", "/volumes", {"volume": {"size": 1, "imageRef": ["img"]}}),
            ("post", "/volumes", {"volume": {"size": 1, "name": "x" * 300}}),
            ("post", "/snapshots", {"snapshot": {}}),
            ("post", "/snapshots", {"snapshot": {"volume_id": "missing"}}),
            ("post", "/snapshots", {"snapshot": {"volume_id": vid, "force": "maybe"}}),
            ("post", "/types", {"volume_type": {"name": ""}}),
            ("get", "/volumes?limit=abc", None),
            ("get", "/volumes/detail?sort=bogus:asc", None),
            ("get", "/volumes?marker=nope", None),
            ("get", "/snapshots/nope", None),
            ("get", "/types/nope", None),
            ("delete", "/snapshots/nope", None),
        ]
        for method, path, body in cases:
            if body is None:
                resp = await getattr(api, method)("p1", path, "admin")
            else:
                resp = await getattr(api, method)("p1", path, body, "admin")
            assert 400 <= resp.status_code < 500, (method, path, resp.status_code, resp.text)
            (fault,) = resp.json().values()
            assert fault["code"] == resp.status_code and fault["message"], resp.text
        # Unknown filters and Cinder's cascade flag are ignored, not refused.
        assert (await api.get("p1", "/volumes?deleted=False&foo=1")).status_code == 200
        assert api.agent.host.backend.list_volumes() == {vid}


async def test_metadata_summary_limits_and_zones(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", size=2, metadata={"a": "1"})
        base = f"/volumes/{vol['id']}/metadata"
        merged = await api.post("p1", base, {"metadata": {"b": "2"}})
        assert merged.json()["metadata"] == {"a": "1", "b": "2"}
        replaced = await api.put("p1", base, {"metadata": {"c": "3"}})
        assert replaced.json()["metadata"] == {"c": "3"}
        assert (await api.put("p1", f"{base}/d", {"meta": {"d": "4"}})).status_code == 200
        assert (await api.get("p1", f"{base}/d")).json() == {"meta": {"d": "4"}}
        assert (await api.put("p1", f"{base}/d", {"meta": {"e": "5"}})).status_code == 400
        assert (await api.delete("p1", f"{base}/c")).status_code == 200
        assert (await api.get("p1", base)).json() == {"metadata": {"d": "4"}}
        assert (await api.get("p1", f"{base}/c")).status_code == 404
        assert (await api.get("p2", base)).status_code == 404

        summary = (await api.get("p1", "/volumes/summary")).json()["volume-summary"]
        assert summary == {"total_size": 2, "total_count": 1}
        absolute = (await api.get("p1", "/limits")).json()["limits"]["absolute"]
        assert absolute["totalVolumesUsed"] == 1 and absolute["totalGigabytesUsed"] == 2
        assert absolute["maxTotalVolumes"] == 10
        zones = (await api.get("p1", "/os-availability-zone")).json()["availabilityZoneInfo"]
        assert zones == [{"zoneName": "nova", "zoneState": {"available": True}}]
        listed = (await api.get("p1", "/extensions")).json()["extensions"]
        aliases = {e["alias"] for e in listed}
        assert {"os-volume-transfer", "backups", "os-vol-image-meta"} <= aliases

        await api.put("p1", "/os-quota-sets/p1", {"quota_set": {"volumes": 3}}, "admin")
        assert (await api.delete("p1", "/os-quota-sets/p1")).status_code == 403
        assert (await api.delete("p1", "/os-quota-sets/p1", "admin")).status_code == 200
        assert (await api.get("p1", "/os-quota-sets/p1")).json()["quota_set"]["volumes"] == 10


# What tempest/lib/api_schema/response/volume/{volumes,snapshots}.py allow (additional
# properties are refused there): the keys each response may carry, and must.
SNAPSHOT_KEYS = {
    "id", "name", "description", "volume_id", "size", "status", "metadata", "created_at",
    "updated_at",
}  # fmt: skip
SNAPSHOT_DETAIL_KEYS = SNAPSHOT_KEYS | {
    "os-extended-snapshot-attributes:progress",
    "os-extended-snapshot-attributes:project_id",
}
VOLUME_REQUIRED = {
    "attachments", "links", "encrypted", "updated_at", "replication_status", "id", "size",
    "user_id", "availability_zone", "metadata", "status", "description", "multiattach",
    "consistencygroup_id", "name", "bootable", "created_at", "volume_type", "snapshot_id",
    "source_volid",
}  # fmt: skip
VOLUME_CREATE_ALLOWED = VOLUME_REQUIRED | {
    "migration_status", "group_id", "provider_id", "service_uuid", "shared_targets",
}  # fmt: skip
VOLUME_SHOW_ALLOWED = VOLUME_CREATE_ALLOWED | {
    "os-vol-host-attr:host", "os-vol-tenant-attr:tenant_id", "os-vol-mig-status-attr:migstat",
    "os-vol-mig-status-attr:name_id", "volume_image_metadata",
}  # fmt: skip


async def test_snapshot_and_volume_bodies_have_the_fields_tempest_checks(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1", size=1)
        created = await api.post("p1", "/snapshots", {"snapshot": {"volume_id": vol["id"]}})
        assert created.status_code == 202
        body = created.json()["snapshot"]
        assert set(body) == SNAPSHOT_KEYS and body["status"] == "creating"
        shown = await api.wait_status("p1", "snapshots", body["id"], "available")
        # Show and the detailed list: progress (100% once made) and the project, for the
        # owner too (Cinder's policy is the project's readers), not only admins.
        assert set(shown) == SNAPSHOT_DETAIL_KEYS
        assert shown["os-extended-snapshot-attributes:progress"] == "100%"
        assert shown["os-extended-snapshot-attributes:project_id"] == "p1"
        listed = (await api.get("p1", "/snapshots")).json()["snapshots"]
        assert [set(s) for s in listed] == [SNAPSHOT_KEYS]
        detail = (await api.get("p1", "/snapshots/detail")).json()["snapshots"]
        assert detail == [shown]
        put = await api.put("p1", f"/snapshots/{body['id']}", {"snapshot": {"name": "n"}})
        assert set(put.json()["snapshot"]) == SNAPSHOT_KEYS

        # A snapshot being made shows 0%; a volume_id of null is Cinder's 404 for "None".
        second = await api.post("p1", "/snapshots", {"snapshot": {"volume_id": vol["id"]}})
        second_id = second.json()["snapshot"]["id"]
        await api.wait_status("p1", "snapshots", second_id, "available")  # its flow is done
        reset = {"os-reset_status": {"status": "creating"}}
        await api.post("p1", f"/snapshots/{second_id}/action", reset, "admin")
        again = (await api.get("p1", f"/snapshots/{second_id}")).json()["snapshot"]
        assert again["os-extended-snapshot-attributes:progress"] == "0%"
        none = await api.post("p1", "/snapshots", {"snapshot": {"volume_id": None}})
        assert none.status_code == 404
        assert none.json()["itemNotFound"]["message"] == "Volume None could not be found."

        created_vol = await api.post("p1", "/volumes", {"volume": {"size": 1}})
        assert VOLUME_REQUIRED <= set(created_vol.json()["volume"]) <= VOLUME_CREATE_ALLOWED
        for roles in ((), ("admin",)):
            show = (await api.get("p1", f"/volumes/{vol['id']}", *roles)).json()["volume"]
            assert VOLUME_REQUIRED <= set(show) <= VOLUME_SHOW_ALLOWED
            listed = (await api.get("p1", "/volumes/detail", *roles)).json()["volumes"]
            assert all(VOLUME_REQUIRED <= set(v) <= VOLUME_SHOW_ALLOWED for v in listed)
        # tempest: os-vol-host-attr:host matches '.+@.+#.+'
        assert re.fullmatch(".+@.+#.+", show["os-vol-host-attr:host"])
        await api.wait_status("p1", "volumes", created_vol.json()["volume"]["id"], "available")
        # The host holds a file for each volume and snapshot made, nothing else, and the
        # snapshot reset to creating is not stuck: what `stackling audit volume` reports.
        report = await api.audit()
        assert report["findings"] == [], report
        assert (report["checked"]["volumes"], report["checked"]["snapshots"]) == (2, 2), report


async def test_an_ipv6_portal_is_echoed_canonical(tmp_path) -> None:
    # The operator's spelling of the portal; compute (and the openstack CLI) see RFC 5952.
    async with volume_api(tmp_path, agent={"agent_portal": "[0000:0::0001]:3260"}) as api:
        vol = await api.volume("p1")
        await api.call("p1", "reserve", volume_id=vol["id"])
        connector = {"initiator": api.names.initiator(), "host": "cn1", "ip": "::1"}
        info = await api.call(
            "p1", "initialize_connection", volume_id=vol["id"], connector=connector
        )
        assert info["data"]["target_portal"] == "[::1]:3260"
        await api.call("p1", "unreserve", volume_id=vol["id"])
        report = await api.audit()
        assert report["findings"] == [], report
