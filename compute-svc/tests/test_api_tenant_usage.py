"""``os-simple-tenant-usage`` and ``/extensions`` through compute-api with a fake agent:
usage follows the servers' lives (a deleted server is billed until its delete, from the
ledger its events fill), in Nova's shapes; the extension list names what is served."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, cloud, compute_api, private_vhost

from common_rpc.testing import wait_for
from compute_svc.api.extensions import KNOWN
from compute_svc.db.usage import ServerUsage

USAGE = "/v2.1/os-simple-tenant-usage"
SUMMARY = {
    "tenant_id", "total_local_gb_usage", "total_vcpus_usage", "total_memory_mb_usage",
    "total_hours", "start", "stop",
}  # fmt: skip
SERVER = {
    "ended_at", "flavor", "hours", "instance_id", "local_gb", "memory_mb", "name",
    "started_at", "state", "tenant_id", "uptime", "vcpus",
}  # fmt: skip


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


def _window(hours: float = 24) -> str:
    now = datetime.now(UTC).replace(tzinfo=None)
    start = (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    end = (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"start={start}&end={end}"


async def _boot(c: Cloud, project: str, name: str, flavor: dict[str, Any]) -> str:
    image = await c.api.image(project, b"disk", disk_format="raw")
    body = {"server": {"name": name, "flavorRef": flavor["id"], "imageRef": image["id"],
                       "networks": "none"}}  # fmt: skip
    resp = await c.api.post(project, "/v2.1/servers", body)
    assert resp.status_code == 202, resp.text
    server_id = str(resp.json()["server"]["id"])
    await c.wait_status(project, server_id, "ACTIVE")
    return server_id


async def test_usage_of_live_and_deleted_servers(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url, with_network=False) as c:
        small = await c.api.flavor("small", vcpus=1, ram=64, disk=1)
        big = await c.api.flavor("big", vcpus=2, ram=128, disk=3)
        kept = await _boot(c, "p1", "kept", small)
        gone = await _boot(c, "p1", "gone", big)
        other = await _boot(c, "p2", "theirs", small)

        async def ended() -> dict[str, Any] | None:
            resp = await c.api.get("p1", f"{USAGE}/p1?{_window()}")
            assert resp.status_code == 200, resp.text
            usage = resp.json()["tenant_usage"]
            states = {s["instance_id"]: s["state"] for s in usage.get("server_usages", [])}
            return usage if states.get(gone) == "terminated" else None

        # The ledger has the server once compute handled its create event (within moments;
        # a server deleted before that is not billed once deleted, see domain.usage).
        async def recorded() -> bool:
            async with c.api.app.state.deps.runtime.sessions() as session:
                return await session.get(ServerUsage, gone) is not None

        await wait_for(recorded, timeout=30)
        assert (await c.api.delete("p1", f"/v2.1/servers/{gone}")).status_code == 204
        await c.wait_gone("p1", gone)
        usage = await wait_for(ended, timeout=30)
        assert set(usage) == SUMMARY | {"server_usages"} and usage["tenant_id"] == "p1"
        by_id = {s["instance_id"]: s for s in usage["server_usages"]}
        assert set(by_id) == {kept, gone}  # another project's server is not p1's
        for entry in by_id.values():
            assert set(entry) == SERVER
        live, dead = by_id[kept], by_id[gone]
        assert (live["flavor"], live["vcpus"], live["memory_mb"], live["local_gb"]) == (
            "small", 1, 64, 1,
        )  # fmt: skip
        assert live["state"] == "active" and live["ended_at"] is None
        assert (dead["flavor"], dead["vcpus"], dead["memory_mb"], dead["local_gb"]) == (
            "big", 2, 128, 3,
        )  # fmt: skip
        assert dead["ended_at"] is not None and dead["name"] == "gone"
        started = datetime.fromisoformat(dead["started_at"])
        assert datetime.fromisoformat(dead["ended_at"]) >= started
        # The deleted server's hours stop at its delete; the live one's run to now.
        assert 0 <= dead["hours"] < 0.05 and 0 < live["hours"] < 0.05
        total = live["hours"] + dead["hours"]
        assert usage["total_hours"] == pytest.approx(total)
        assert usage["total_vcpus_usage"] == pytest.approx(live["hours"] + 2 * dead["hours"])
        assert usage["total_memory_mb_usage"] == pytest.approx(
            64 * live["hours"] + 128 * dead["hours"]
        )
        assert usage["total_local_gb_usage"] == pytest.approx(live["hours"] + 3 * dead["hours"])

        # The admin's list: every project, details only when asked for.
        listed = await c.api.get("admin", f"{USAGE}?{_window()}&detailed=1", *ADMIN)
        assert listed.status_code == 200, listed.text
        projects = {u["tenant_id"]: u for u in listed.json()["tenant_usages"]}
        assert set(projects) == {"p1", "p2"}
        assert [s["instance_id"] for s in projects["p2"]["server_usages"]] == [other]
        brief = (await c.api.get("admin", f"{USAGE}?{_window()}", *ADMIN)).json()
        assert all(set(u) == SUMMARY for u in brief["tenant_usages"])

        # A period before any server: nothing (show answers {}, as Nova's).
        early = "start=2001-01-01T00:00:00&end=2001-01-02T00:00:00"
        assert (await c.api.get("p1", f"{USAGE}/p1?{early}")).json() == {"tenant_usage": {}}
        assert (await c.api.get("admin", f"{USAGE}?{early}", *ADMIN)).json() == {
            "tenant_usages": []
        }


async def test_usage_refusals(tmp_path: Path, amqp_url: str) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        assert (await api.get("p1", f"{USAGE}?{_window()}")).status_code == 403
        hidden = await api.get("p1", f"{USAGE}/p2?{_window()}")
        assert hidden.status_code == 404 and "itemNotFound" in hidden.json()
        for query, words in (
            ("start=yesterday", "Invalid datetime"),
            ("start=2020-01-02T00:00:00&end=2020-01-01T00:00:00", "start time"),
        ):
            resp = await api.get("p1", f"{USAGE}/p1?{query}")
            assert resp.status_code == 400 and words in resp.json()["badRequest"]["message"]
        # No period: from now to now, which Nova refuses too (start must precede end).
        empty = await api.get("admin", f"{USAGE}/p1?start=2020-01-01T00:00:00", *ADMIN)
        assert empty.status_code == 200 and empty.json() == {"tenant_usage": {}}


async def test_extensions_list_what_is_served(tmp_path: Path, amqp_url: str) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        resp = await api.get("p1", "/v2.1/extensions")
        assert resp.status_code == 200, resp.text
        extensions = resp.json()["extensions"]
        aliases = [e["alias"] for e in extensions]
        assert aliases == sorted(aliases)
        expected = ("os-quota-sets", "os-simple-tenant-usage", "os-keypairs", "servers", "flavors",
                    "limits", "images", "extensions", "os-instance-actions", "ips")  # fmt: skip
        for alias in expected:
            assert alias in aliases, alias
        for entry in extensions:
            assert set(entry) == {"alias", "name", "description", "namespace", "updated",
                                  "links"}  # fmt: skip
            assert entry["links"] == [] and entry["updated"].endswith("Z")
            assert entry["namespace"].startswith("http://")
        # Nothing it does not serve: each listed collection has a route in the app.
        paths = set(api.app.openapi()["paths"])
        served = {path for alias, _, _, path in KNOWN if alias in aliases}
        for path in served - {""}:
            assert any(p.startswith("/v2.1" + path.split("{")[0]) for p in paths), path
        assert "os-fping" not in aliases and "os-cells" not in aliases

        one = await api.get("p1", "/v2.1/extensions/os-quota-sets")
        assert one.status_code == 200 and one.json()["extension"]["name"] == "Quotas"
        missing = await api.get("p1", "/v2.1/extensions/os-fping")
        assert missing.status_code == 404 and "itemNotFound" in missing.json()
