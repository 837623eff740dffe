"""Every IPv6 address the API echoes is canonical (RFC 5952, as ``str(ipaddress.ip_address)``
prints it), whatever spelling it was given in; it is stored so, so filters match too."""

from __future__ import annotations

import ipaddress

from netapi_helpers import network_api


async def test_ipv6_addresses_are_canonical_in_and_out(tmp_path) -> None:
    async with network_api(tmp_path, default_network_type="local") as api:
        net = await api.network("pA")
        body = {
            "subnet": {
                "network_id": net["id"],
                "ip_version": 6,
                "cidr": "2001:0DB8:0000:0000::/64",
                "gateway_ip": "2001:db8:0:0:0:0:0:1",
                "allocation_pools": [{"start": "2001:DB8::0010", "end": "2001:db8::0:00ff"}],
                # Nova's own example of a spelling to make canonical
                "dns_nameservers": ["0000:0000:0000:0000:0000:babe:220.12.22.2"],
                "host_routes": [{"destination": "2001:DB8:0001::/64", "nexthop": "2001:db8::00FE"}],
            }
        }
        made = await api.post("pA", "/v2.0/subnets", body)
        assert made.status_code == 201, made.text
        sub = made.json()["subnet"]
        assert sub["cidr"] == "2001:db8::/64" and sub["gateway_ip"] == "2001:db8::1"
        assert sub["allocation_pools"] == [{"start": "2001:db8::10", "end": "2001:db8::ff"}]
        assert sub["dns_nameservers"] == ["::babe:dc0c:1602"]
        assert sub["host_routes"] == [{"destination": "2001:db8:1::/64", "nexthop": "2001:db8::fe"}]
        for query in (
            "gateway_ip=2001:DB8:0::1",
            "cidr=2001:0db8::/64",
            "dns_nameservers=::BABE:DC0C:1602",
        ):
            found = (await api.get("pA", f"/v2.0/subnets?{query}")).json()["subnets"]
            assert [s["id"] for s in found] == [sub["id"]], query

        # A port's fixed IP, given long-hand: stored, echoed and found canonical.
        fixed = [{"subnet_id": sub["id"], "ip_address": "2001:0DB8:0000::0050"}]
        port = await api.port("pA", net["id"], fixed_ips=fixed)
        assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "2001:db8::50"}]
        query = "fixed_ips=ip_address=2001:DB8:0:0::50"
        assert [p["id"] for p in (await api.get("pA", f"/v2.0/ports?{query}")).json()["ports"]] == [
            port["id"]
        ]
        # The same address in another spelling is the address the port has: kept as is.
        again = await api.put("pA", f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": fixed}})
        assert again.status_code == 200, again.text
        assert again.json()["port"]["fixed_ips"] == port["fixed_ips"]
        taken = {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "2001:DB8::50"}]}}
        clash = await api.post("pA", "/v2.0/ports", taken)
        assert clash.status_code == 409  # one address, whatever its spelling

        # A gateway update, long-hand.
        path = f"/v2.0/subnets/{sub['id']}"
        change = {"subnet": {"gateway_ip": "2001:0db8:0000:0000:0000:0000:0000:0002"}}
        updated = (await api.put("pA", path, change)).json()["subnet"]
        assert updated["gateway_ip"] == "2001:db8::2"

        # Security group rules: the prefix canonical (host bits kept, as in Neutron), its
        # normalized_cidr the network; a filter in another spelling finds it.
        groups = (await api.get("pA", "/v2.0/security-groups")).json()["security_groups"]
        rule = {
            "security_group_id": groups[0]["id"],
            "direction": "ingress",
            "ethertype": "IPv6",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
            "remote_ip_prefix": "2001:0DB8:0000::0005/64",
        }
        made = await api.post("pA", "/v2.0/security-group-rules", {"security_group_rule": rule})
        assert made.status_code == 201, made.text
        shown = made.json()["security_group_rule"]
        assert shown["remote_ip_prefix"] == "2001:db8::5/64"
        assert shown["normalized_cidr"] == "2001:db8::/64"
        query = "remote_ip_prefix=2001:DB8::0005/64"
        rules = (await api.get("pA", f"/v2.0/security-group-rules?{query}")).json()
        assert [r["id"] for r in rules["security_group_rules"]] == [shown["id"]]

        # Nothing echoed anywhere is in a non-canonical spelling.
        for path, key in (
            ("subnets", "subnets"),
            ("ports", "ports"),
            ("security-group-rules", "security_group_rules"),
        ):
            for item in (await api.get("pA", f"/v2.0/{path}")).json()[key]:
                _assert_canonical(item)


def _assert_canonical(value: object) -> None:
    if isinstance(value, dict):
        for inner in value.values():
            _assert_canonical(inner)
    elif isinstance(value, list):
        for inner in value:
            _assert_canonical(inner)
    elif isinstance(value, str):
        for parse in (ipaddress.ip_address, ipaddress.ip_interface):
            try:
                assert str(parse(value)) == value, value
                break
            except ValueError:
                continue
