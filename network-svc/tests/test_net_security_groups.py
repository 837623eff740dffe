"""Security groups: the per-project default, rules and their validation, in-use deletes."""

from __future__ import annotations

from netapi_helpers import fault_type, network_api


async def test_default_group_and_rules(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        [default] = (await api.get("pA", "/v2.0/security-groups")).json()["security_groups"]
        assert default["name"] == "default" and default["project_id"] == "pA"
        rules = {
            (r["direction"], r["ethertype"], r["remote_group_id"])
            for r in default["security_group_rules"]
        }
        assert rules == {
            ("egress", "IPv4", None),
            ("egress", "IPv6", None),
            ("ingress", "IPv4", default["id"]),
            ("ingress", "IPv6", default["id"]),
        }
        again = (await api.get("pA", "/v2.0/security-groups")).json()["security_groups"]
        assert [g["id"] for g in again] == [default["id"]]
        second = await api.post(
            "pA", "/v2.0/security-groups", {"security_group": {"name": "default"}}
        )
        assert second.status_code == 409
        assert (await api.get("pB", f"/v2.0/security-groups/{default['id']}")).status_code == 404


async def test_rule_crud_and_validation(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        made = await api.post("pA", "/v2.0/security-groups", {"security_group": {"name": "web"}})
        assert made.status_code == 201
        group = made.json()["security_group"]
        assert len(group["security_group_rules"]) == 2  # egress IPv4 and IPv6

        async def rule(**attrs: object) -> object:
            body = {"security_group_rule": {"security_group_id": group["id"], **attrs}}
            return await api.post("pA", "/v2.0/security-group-rules", body)

        ssh = dict(
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            remote_ip_prefix="0.0.0.0/0",
        )
        created = await rule(**ssh)
        assert created.status_code == 201
        assert created.json()["security_group_rule"]["normalized_cidr"] == "0.0.0.0/0"
        dup = await rule(**ssh)
        assert dup.status_code == 409 and fault_type(dup) == "SecurityGroupRuleExists"
        assert (await rule(direction="sideways")).status_code == 400
        assert (await rule(direction="ingress", ethertype="IPv5")).status_code == 400
        assert (await rule(direction="ingress", protocol="bogus")).status_code == 400
        bad_range = dict(direction="ingress", protocol="tcp", port_range_min=90, port_range_max=80)
        assert (await rule(**bad_range)).status_code == 400
        assert (await rule(direction="ingress", remote_ip_prefix="300.0.0.0/8")).status_code == 400
        v6 = dict(direction="ingress", ethertype="IPv4", remote_ip_prefix="fd00::/8")
        assert (await rule(**v6)).status_code == 400
        icmp = await rule(direction="ingress", protocol="icmp", remote_group_id=group["id"])
        assert icmp.status_code == 201
        rule_id = created.json()["security_group_rule"]["id"]
        assert (await api.get("pB", f"/v2.0/security-group-rules/{rule_id}")).status_code == 404
        assert (await api.delete("pA", f"/v2.0/security-group-rules/{rule_id}")).status_code == 204
        shown = (await api.get("pA", f"/v2.0/security-groups/{group['id']}")).json()
        assert len(shown["security_group"]["security_group_rules"]) == 3
        renamed = await api.put(
            "pA", f"/v2.0/security-groups/{group['id']}", {"security_group": {"name": "default"}}
        )
        assert renamed.status_code == 409


async def test_groups_in_use_and_default_delete(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        made = await api.post("pA", "/v2.0/security-groups", {"security_group": {"name": "web"}})
        group = made.json()["security_group"]
        net = await api.network("pA")
        port = await api.port("pA", net["id"], security_groups=[group["id"]])
        assert port["security_groups"] == [group["id"]]
        busy = await api.delete("pA", f"/v2.0/security-groups/{group['id']}")
        assert busy.status_code == 409 and fault_type(busy) == "SecurityGroupInUse"
        await api.delete("pA", f"/v2.0/ports/{port['id']}")
        assert (await api.delete("pA", f"/v2.0/security-groups/{group['id']}")).status_code == 204
        [default] = (await api.get("pA", "/v2.0/security-groups")).json()["security_groups"]
        kept = await api.delete("pA", f"/v2.0/security-groups/{default['id']}")
        assert kept.status_code == 409 and fault_type(kept) == "SecurityGroupCannotRemoveDefault"
        gone = await api.delete("pA", f"/v2.0/security-groups/{default['id']}", "admin")
        assert gone.status_code == 204
        others = await api.post("pB", "/v2.0/security-groups", {"security_group": {"name": "x"}})
        foreign = await api.post(
            "pA",
            "/v2.0/ports",
            {
                "port": {
                    "network_id": net["id"],
                    "security_groups": [others.json()["security_group"]["id"]],
                }
            },
        )
        assert foreign.status_code == 404 and fault_type(foreign) == "SecurityGroupNotFound"
