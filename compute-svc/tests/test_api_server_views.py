"""The server view's shapes as Nova has them: access IPs checked and canonical, every IPv6
address in RFC 5952 form, and ``progress`` only while building or active.

compute-api with a real network-api and fake agents; a row written straight to the
database stands for one kept before these checks (an old bad access IP, a port address
in a long form).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, cloud, private_vhost
from sqlalchemy import update

from common_rpc.chassis.db import transaction
from compute_svc.db.models import Server

LONG_V6 = "0000:0000:0000:0000:0000:babe:220.12.22.2"
SHORT_V6 = "::babe:dc0c:1602"


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _boot(c: Cloud, **fields: Any) -> str:
    flavor = await c.api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
    image = await c.api.image("p1", b"QFI\xfb" + b"\0" * 100)
    body = {"name": "v", "flavorRef": flavor["id"], "imageRef": image["id"], "networks": "none"}
    resp = await c.api.post("p1", "/v2.1/servers", {"server": body | fields})
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]
    await c.wait_status("p1", sid, "ACTIVE")
    return str(sid)


async def _show(c: Cloud, sid: str) -> dict[str, Any]:
    resp = await c.api.get("p1", f"/v2.1/servers/{sid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["server"])


async def _row(c: Cloud, sid: str, **values: Any) -> None:
    """Write the server's row directly (what an older release may have stored)."""
    sessions = c.api.app.state.runtime.sessions
    async with transaction(sessions) as session:
        await session.execute(update(Server).where(Server.id == sid).values(**values))


async def _stored(c: Cloud, sid: str) -> tuple[str, str]:
    async with transaction(c.api.app.state.runtime.sessions, write=False) as session:
        row = await session.get(Server, sid)
        assert row is not None
        return row.access_ipv4, row.access_ipv6


async def test_access_ips_are_kept_and_shown_canonical(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        sid = await _boot(c, accessIPv4="10.1.2.3", accessIPv6=LONG_V6)
        server = await _show(c, sid)
        assert (server["accessIPv4"], server["accessIPv6"]) == ("10.1.2.3", SHORT_V6)
        assert await _stored(c, sid) == ("10.1.2.3", SHORT_V6)
        listed = (await c.api.get("p1", "/v2.1/servers/detail")).json()["servers"]
        assert [s["accessIPv6"] for s in listed] == [SHORT_V6]

        # Tempest's update, then a long form again: the answer and the row are canonical.
        body = {"server": {"accessIPv4": "1.1.1.1", "accessIPv6": "::babe:202:202"}}
        updated = await c.api.put("p1", f"/v2.1/servers/{sid}", body)
        assert updated.status_code == 200, updated.text
        assert updated.json()["server"]["accessIPv6"] == "::babe:202:202"
        body = {"server": {"accessIPv6": "2001:0DB8:0000:0000:0000:0000:0000:0001"}}
        updated = await c.api.put("p1", f"/v2.1/servers/{sid}", body)
        assert updated.json()["server"]["accessIPv6"] == "2001:db8::1"
        assert await _stored(c, sid) == ("1.1.1.1", "2001:db8::1")

        # A refused update changes nothing.
        bad = await c.api.put("p1", f"/v2.1/servers/{sid}", {"server": {"accessIPv4": "x"}})
        assert bad.status_code == 400 and "badRequest" in bad.json()
        assert await _stored(c, sid) == ("1.1.1.1", "2001:db8::1")


async def test_a_stored_bad_access_ip_no_longer_breaks_the_server(
    tmp_path: Path, amqp_url: str
) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        sid = await _boot(c)
        await _row(c, sid, access_ipv4="1.1.1.1.1.1", access_ipv6="notvalid")
        server = await _show(c, sid)
        assert (server["accessIPv4"], server["accessIPv6"]) == ("", "")
        detail = await c.api.get("p1", "/v2.1/servers/detail")
        assert detail.status_code == 200
        assert [(s["accessIPv4"], s["accessIPv6"]) for s in detail.json()["servers"]] == [("", "")]
        renamed = await c.api.put("p1", f"/v2.1/servers/{sid}", {"server": {"name": "w"}})
        assert renamed.status_code == 200 and renamed.json()["server"]["accessIPv4"] == ""
        # Setting a good one again replaces it.
        fixed = await c.api.put("p1", f"/v2.1/servers/{sid}", {"server": {"accessIPv4": "1.2.3.4"}})
        assert fixed.json()["server"]["accessIPv4"] == "1.2.3.4"


async def test_port_addresses_are_shown_canonical(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        sid = await _boot(c)
        nic = {
            "port_id": "p-1",
            "network_id": "n-1",
            "network_name": "v6net",
            "bound": True,
            "mac": "fa:16:3e:00:00:01",
            "ips": ["2001:0DB8:0:0:0:0:0:0005", "10.0.0.5"],
        }
        await _row(c, sid, nics=[nic])
        server = await _show(c, sid)
        assert server["addresses"] == {
            "v6net": [
                {"addr": "2001:db8::5", "version": 6, "OS-EXT-IPS:type": "fixed",
                 "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"},
                {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed",
                 "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"},
            ]
        }  # fmt: skip
        ips = (await c.api.get("p1", f"/v2.1/servers/{sid}/ips")).json()
        assert ips == {
            "addresses": {
                "v6net": [{"addr": "2001:db8::5", "version": 6}, {"addr": "10.0.0.5", "version": 4}]
            }
        }


async def test_an_ipv6_fixed_ip_asked_in_long_form_is_shown_canonical(
    tmp_path: Path, amqp_url: str
) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        resp = await c.network.post("p1", "/v2.0/networks", {"network": {"name": "v6"}})
        net = resp.json()["network"]
        subnet = {"subnet": {"network_id": net["id"], "cidr": "2001:db8::/64", "ip_version": 6}}
        assert (await c.network.post("p1", "/v2.0/subnets", subnet)).status_code == 201
        networks = [{"uuid": net["id"], "fixed_ip": "2001:0DB8:0000::0007"}]
        sid = await _boot(c, networks=networks)
        server = await _show(c, sid)
        assert [(a["addr"], a["version"]) for a in server["addresses"]["v6"]] == [
            ("2001:db8::7", 6)
        ]


async def test_progress_only_while_building_or_active(tmp_path: Path, amqp_url: str) -> None:
    """Nova shows ``progress`` for BUILD and ACTIVE (and resize and migration states), and
    leaves it out otherwise: SHUTOFF, ERROR."""
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        c.agent.spawn_delay = 1.0
        flavor = await c.api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
        image = await c.api.image("p1", b"QFI\xfb" + b"\0" * 100)
        body = {"name": "p", "flavorRef": flavor["id"], "imageRef": image["id"]}
        sid = (await c.api.post("p1", "/v2.1/servers", {"server": body})).json()["server"]["id"]
        building = await _show(c, sid)
        assert building["status"] == "BUILD" and building["progress"] == 0
        active = await c.wait_status("p1", sid, "ACTIVE")
        assert active["progress"] == 0
        put = await c.api.put("p1", f"/v2.1/servers/{sid}", {"server": {"name": "q"}})
        assert put.json()["server"]["progress"] == 0

        await c.api.post("p1", f"/v2.1/servers/{sid}/action", {"os-stop": None})
        stopped = await c.wait_status("p1", sid, "SHUTOFF")
        assert "progress" not in stopped
        put = await c.api.put("p1", f"/v2.1/servers/{sid}", {"server": {"name": "r"}})
        assert put.status_code == 200 and "progress" not in put.json()["server"]
        listed = (await c.api.get("p1", "/v2.1/servers/detail")).json()["servers"]
        assert ["progress" in s for s in listed] == [False]

        c.agent.fail_names.add("broken")
        body = {"name": "broken", "flavorRef": flavor["id"], "imageRef": image["id"]}
        bid = (await c.api.post("p1", "/v2.1/servers", {"server": body})).json()["server"]["id"]
        failed = await c.wait_status("p1", bid, "ERROR")
        assert "progress" not in failed and "fault" in failed
        shown = await c.api.get("admin", f"/v2.1/servers/{bid}", *ADMIN)
        assert "progress" not in shown.json()["server"]
