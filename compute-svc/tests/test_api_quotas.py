"""Nova's per-project quotas end to end: compute-api and a real network-api on RabbitMQ,
fake agents on the host. A create over quota is a 403 with nothing made; a server holds
its quota until it is deleted, also in ERROR; ``os-quota-sets`` and ``/limits`` show it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, cloud, private_vhost

QUOTA = "/v2.1/os-quota-sets"


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _flavor_and_image(c: Cloud, vcpus: int = 1, ram: int = 128) -> dict[str, Any]:
    flavor = await c.api.flavor(f"f{vcpus}", ram=ram, vcpus=vcpus, disk=1)
    image = await c.api.image("p1", b"raw-disk", disk_format="raw")
    return {"flavorRef": flavor["id"], "imageRef": image["id"], "networks": "none"}


async def _network(c: Cloud) -> str:
    resp = await c.network.post("p1", "/v2.0/networks", {"network": {"name": "net1"}})
    assert resp.status_code == 201, resp.text
    net = resp.json()["network"]
    body = {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}
    assert (await c.network.post("p1", "/v2.0/subnets", body)).status_code == 201
    return str(net["id"])


async def _create(c: Cloud, base: dict[str, Any], name: str, **extra: Any) -> Any:
    return await c.api.post("p1", "/v2.1/servers", {"server": base | {"name": name} | extra})


async def _set_quota(c: Cloud, project: str, **limits: Any) -> dict[str, Any]:
    resp = await c.api.put("admin", f"{QUOTA}/{project}", {"quota_set": limits}, *ADMIN)
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["quota_set"])


async def _absolute(c: Cloud, project: str = "p1") -> dict[str, Any]:
    resp = await c.api.get(project, "/v2.1/limits")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["limits"]["absolute"])


async def test_over_the_instances_quota_nothing_is_made(tmp_path: Path, amqp_url: str) -> None:
    capacity = {"vcpus": 16, "ram_mb": 8192, "disk_gb": 100}
    async with cloud(tmp_path, amqp_url, capacity=capacity) as c:
        base = await _flavor_and_image(c)
        net_id = await _network(c)
        ids = []
        for index in range(10):  # Nova's default: 10 instances
            resp = await _create(c, base, f"s{index}")
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["server"]["id"])
        for sid in ids:
            assert (await c.wait_status("p1", sid, "ACTIVE", "ERROR"))["status"] == "ACTIVE"

        refused = await _create(c, base, "one-too-many", networks=[{"uuid": net_id}])
        assert refused.status_code == 403
        assert refused.json() == {
            "forbidden": {
                "code": 403,
                "message": "Quota exceeded for instances: Requested 1, "
                "but already used 10 of 10 instances",
            }
        }
        await c.api.app.state.deps.tasks.idle()
        listed = (await c.api.get("p1", "/v2.1/servers")).json()["servers"]
        assert sorted(s["id"] for s in listed) == sorted(ids)
        ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
        assert [p for p in ports if p["device_owner"] == "compute:nova"] == []
        [hyper] = (await c.api.get("admin", "/v2.1/os-hypervisors/detail", *ADMIN)).json()[
            "hypervisors"
        ]
        assert hyper["vcpus_used"] == 10 and hyper["running_vms"] == 10

        absolute = await _absolute(c)
        assert absolute["maxTotalInstances"] == 10 and absolute["totalInstancesUsed"] == 10
        assert absolute["maxTotalCores"] == 20 and absolute["totalCoresUsed"] == 10
        assert absolute["maxTotalRAMSize"] == 51200 and absolute["totalRAMUsed"] == 1280
        assert absolute["maxTotalKeypairs"] == 100
        # Another project is not held back by p1's servers.
        assert (await _absolute(c, "p2"))["totalInstancesUsed"] == 0


async def test_cores_quota_and_delete_gives_it_back(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        base = await _flavor_and_image(c, vcpus=2, ram=256)
        assert (await _set_quota(c, "p1", cores=5))["cores"] == 5
        first = await _create(c, base, "a")
        second = await _create(c, base, "b")
        assert first.status_code == second.status_code == 202
        refused = await _create(c, base, "c")
        assert refused.status_code == 403
        message = refused.json()["forbidden"]["message"]
        assert message == "Quota exceeded for cores: Requested 2, but already used 4 of 5 cores"

        absolute = await _absolute(c)
        assert absolute["maxTotalCores"] == 5 and absolute["totalCoresUsed"] == 4
        assert absolute["totalInstancesUsed"] == 2 and absolute["totalRAMUsed"] == 512

        sid = first.json()["server"]["id"]
        await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.wait_gone("p1", sid)
        detail = (await c.api.get("p1", f"{QUOTA}/p1/detail")).json()["quota_set"]
        assert detail["cores"] == {"limit": 5, "in_use": 2, "reserved": 0}
        assert detail["instances"]["in_use"] == 1 and detail["ram"]["in_use"] == 256
        again = await _create(c, base, "c")
        assert again.status_code == 202, again.text
        # A delete run again after the row went gives nothing back a second time.
        from compute_svc.domain import deletion

        assert await deletion.delete(c.api.app.state.deps, sid) is False
        assert (await _absolute(c))["totalCoresUsed"] == 4


async def test_a_server_in_error_holds_its_quota_until_deleted(
    tmp_path: Path, amqp_url: str
) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False, quota_instances=1) as c:
        base = await _flavor_and_image(c)
        c.agent.fail_names.add("doomed")
        sid = (await _create(c, base, "doomed")).json()["server"]["id"]
        await c.wait_status("p1", sid, "ERROR")
        refused = await _create(c, base, "next")
        assert refused.status_code == 403
        assert "already used 1 of 1 instances" in refused.json()["forbidden"]["message"]
        assert (await _absolute(c))["totalInstancesUsed"] == 1

        assert (await c.api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204
        await c.wait_gone("p1", sid)
        assert (await _absolute(c))["totalInstancesUsed"] == 0
        allowed = await _create(c, base, "next")
        assert allowed.status_code == 202, allowed.text


async def test_quota_set_api(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        base = await _flavor_and_image(c)
        own = await c.api.get("p1", f"{QUOTA}/p1")
        assert own.status_code == 200, own.text
        assert own.json()["quota_set"] == {
            "id": "p1",
            "instances": 10,
            "cores": 20,
            "ram": 51200,
            "key_pairs": 100,
            "metadata_items": 128,
            "injected_files": 5,
            "injected_file_content_bytes": 10240,
            "injected_file_path_bytes": 255,
            "server_groups": 10,
            "server_group_members": 10,
            "floating_ips": -1,
            "fixed_ips": -1,
            "security_groups": -1,
            "security_group_rules": -1,
        }
        defaults = (await c.api.get("p1", f"{QUOTA}/p1/defaults")).json()["quota_set"]
        assert defaults == own.json()["quota_set"]
        detail = (await c.api.get("p1", f"{QUOTA}/p1/detail")).json()["quota_set"]
        assert detail["id"] == "p1"
        assert detail["instances"] == {"limit": 10, "in_use": 0, "reserved": 0}
        assert detail["metadata_items"] == {"limit": 128, "in_use": 0, "reserved": 0}

        # Another project's is not found; a member changes nothing.
        for path in (f"{QUOTA}/p2", f"{QUOTA}/p2/detail", f"{QUOTA}/p2/defaults"):
            hidden = await c.api.get("p1", path)
            assert hidden.status_code == 404 and "itemNotFound" in hidden.json()
        member_put = await c.api.put("p1", f"{QUOTA}/p1", {"quota_set": {"instances": 50}})
        assert member_put.status_code == 403 and "forbidden" in member_put.json()
        assert (await c.api.delete("p1", f"{QUOTA}/p1")).status_code == 403
        assert (await c.api.get("admin", f"{QUOTA}/p2", *ADMIN)).status_code == 200

        # Bad values are 400 and change nothing; unknown and fixed keys are ignored.
        for bad in ("ten", -2, True, 2**31, None):
            resp = await c.api.put(
                "admin", f"{QUOTA}/p1", {"quota_set": {"instances": bad}}, *ADMIN
            )
            assert resp.status_code == 400, (bad, resp.text)
            assert "badRequest" in resp.json()
        resp = await c.api.put("admin", f"{QUOTA}/p1", {"instances": 1}, *ADMIN)
        assert resp.status_code == 400
        updated = await _set_quota(c, "p1", instances="1", metadata_items=5, bogus=3)
        assert "id" not in updated
        assert updated["instances"] == 1 and updated["metadata_items"] == 128
        assert (await c.api.get("p1", f"{QUOTA}/p1")).json()["quota_set"]["instances"] == 1

        # The admin's limit is the one enforced.
        assert (await _create(c, base, "a")).status_code == 202
        assert (await _create(c, base, "b")).status_code == 403
        # Below what is used: refused unless forced, as in Nova.
        resp = await c.api.put("admin", f"{QUOTA}/p1", {"quota_set": {"instances": 0}}, *ADMIN)
        assert resp.status_code == 400 and "already used and reserved 1" in resp.text
        assert (await _set_quota(c, "p1", instances=0, force=True))["instances"] == 0
        assert (await _absolute(c))["maxTotalInstances"] == 0
        assert (await _set_quota(c, "p1", instances=-1))["instances"] == -1
        assert (await _create(c, base, "b")).status_code == 202
        assert (await _absolute(c))["maxTotalInstances"] == -1

        # DELETE: back to the defaults.
        reset = await c.api.delete("admin", f"{QUOTA}/p1", *ADMIN)
        assert reset.status_code == 202
        assert (await c.api.get("p1", f"{QUOTA}/p1")).json()["quota_set"]["instances"] == 10
        assert (await c.api.get("admin", "/v2.1/limits?tenant_id=p1", *ADMIN)).json()["limits"][
            "absolute"
        ]["totalInstancesUsed"] == 2


async def test_key_pairs_quota(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        await _set_quota(c, "p1", key_pairs=1)
        assert (
            await c.api.post("p1", "/v2.1/os-keypairs", {"keypair": {"name": "k1"}})
        ).status_code == 200
        refused = await c.api.post("p1", "/v2.1/os-keypairs", {"keypair": {"name": "k2"}})
        assert refused.status_code == 403
        assert refused.json() == {
            "forbidden": {"code": 403, "message": "Quota exceeded, too many key pairs."}
        }
        names = [
            k["keypair"]["name"]
            for k in (await c.api.get("p1", "/v2.1/os-keypairs")).json()["keypairs"]
        ]
        assert names == ["k1"]
        absolute = await _absolute(c)
        assert absolute["maxTotalKeypairs"] == 1
        detail = (await c.api.get("p1", f"{QUOTA}/p1/detail")).json()["quota_set"]
        assert detail["key_pairs"] == {"limit": 1, "in_use": 1, "reserved": 0}

        assert (await c.api.delete("p1", "/v2.1/os-keypairs/k1")).status_code == 202
        assert (await c.api.delete("p1", "/v2.1/os-keypairs/k1")).status_code == 404
        detail = (await c.api.get("p1", f"{QUOTA}/p1/detail")).json()["quota_set"]
        assert detail["key_pairs"]["in_use"] == 0
        assert (
            await c.api.post("p1", "/v2.1/os-keypairs", {"keypair": {"name": "k2"}})
        ).status_code == 200
