"""``os-quota-sets`` answers with exactly the keys of Nova's 2.1 response schemas (the
ones Tempest checks): show, defaults, update and detail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import ADMIN, compute_api, private_vhost

QUOTA = "/v2.1/os-quota-sets"
# tempest/lib/api_schema/response/compute/v2_1/quotas.py: required, plus the two server
# group keys it allows (and nothing else: additionalProperties is false).
REQUIRED = {
    "instances", "cores", "ram", "floating_ips", "fixed_ips", "metadata_items", "key_pairs",
    "security_groups", "security_group_rules", "injected_files",
    "injected_file_content_bytes", "injected_file_path_bytes",
}  # fmt: skip
KEYS = REQUIRED | {"server_groups", "server_group_members"}


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


def _integers(quota_set: dict[str, object]) -> None:
    for key in KEYS:
        value = quota_set[key]
        assert isinstance(value, int) and not isinstance(value, bool), (key, value)


async def test_quota_set_keys(tmp_path, amqp_url) -> None:
    async with compute_api(tmp_path, amqp_url) as api:
        shown = (await api.get("p1", f"{QUOTA}/p1")).json()["quota_set"]
        assert set(shown) == KEYS | {"id"} and shown["id"] == "p1"
        _integers(shown)
        defaults = (await api.get("p1", f"{QUOTA}/p1/defaults")).json()["quota_set"]
        assert defaults == shown  # a project with no limits set has the defaults
        for key in ("floating_ips", "fixed_ips", "security_groups", "security_group_rules"):
            assert shown[key] == -1  # the network service's quotas limit those

        detail = (await api.get("p1", f"{QUOTA}/p1/detail")).json()["quota_set"]
        assert set(detail) == KEYS | {"id"}
        for key in KEYS:
            assert set(detail[key]) == {"limit", "in_use", "reserved"}, key
            assert detail[key]["limit"] == shown[key]

        body = {"quota_set": {"instances": 7, "floating_ips": 3, "security_groups": "4"}}
        updated = await api.put("admin", f"{QUOTA}/p1", body, *ADMIN)
        assert updated.status_code == 200, updated.text
        answer = updated.json()["quota_set"]
        assert set(answer) == KEYS  # Nova's update answer has no id
        _integers(answer)
        assert answer["instances"] == 7
        again = (await api.get("p1", f"{QUOTA}/p1")).json()["quota_set"]
        assert again["instances"] == 7 and set(again) == KEYS | {"id"}

        for bad in ({"fixed_ips": "many"}, {"security_group_rules": -2}, {"cores": True}):
            resp = await api.put("admin", f"{QUOTA}/p1", {"quota_set": bad}, *ADMIN)
            assert resp.status_code == 400, (bad, resp.text)
            assert resp.json()["badRequest"]["code"] == 400
        assert (await api.get("p2", f"{QUOTA}/p1")).status_code == 404
        assert (await api.put("p1", f"{QUOTA}/p1", body)).status_code == 403
