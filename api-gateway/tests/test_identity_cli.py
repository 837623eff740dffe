"""The real ``openstack`` CLI against the gateway on a real port: the identity commands an
operator runs (regions, services, endpoints, ...), each checked by what it printed."""

from __future__ import annotations

from identity_fixtures import LiveGateway, openstack_cli


def test_region_service_endpoint_commands(live_gateway: LiveGateway) -> None:
    def cli(*args: str) -> object:
        return openstack_cli(live_gateway, *args)

    region = cli("region", "create", "RegionCli", "--description", "cli", "-f", "json")
    assert (region["region"], region["description"]) == ("RegionCli", "cli")
    service = cli(
        "service", "create", "--name", "designate", "--description", "dns", "dns", "-f", "json"
    )
    assert (service["name"], service["type"], service["enabled"]) == ("designate", "dns", True)
    endpoint = cli(
        "endpoint", "create", "--region", "RegionCli", "designate", "public",
        "http://dns.test/v2/$(project_id)s", "-f", "json",
    )  # fmt: skip
    assert endpoint["service_name"] == "designate" and endpoint["region"] == "RegionCli"
    listed = cli("endpoint", "list", "--service", "dns", "-f", "json")
    assert [(e["ID"], e["Interface"], e["Region"]) for e in listed] == [
        (endpoint["id"], "public", "RegionCli")
    ]
    # The admin's token catalog now names it, with the project filled in.
    project_id = live_gateway.accounts["admin"]["project_id"]
    shown = cli("catalog", "show", "dns", "-f", "json")
    assert shown["endpoints"] == [
        {
            "id": endpoint["id"],
            "interface": "public",
            "region_id": "RegionCli",
            "url": f"http://dns.test/v2/{project_id}",
            "region": "RegionCli",
        }
    ]
    assert "RegionCli" in [r["Region"] for r in cli("region", "list", "-f", "json")]
    cli("endpoint", "delete", endpoint["id"])
    cli("service", "delete", "designate")
    cli("region", "delete", "RegionCli")
    assert "dns" not in [s["Type"] for s in cli("service", "list", "-f", "json")]
    assert "RegionCli" not in [r["Region"] for r in cli("region", "list", "-f", "json")]
