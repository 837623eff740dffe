"""Snapshot metadata as Cinder serves it (Tempest's SnapshotMetadataTestJSON): the whole
metadata (GET, POST merges, PUT replaces) and one key (GET, PUT, DELETE)."""

from __future__ import annotations

from volapi_helpers import volume_api


async def test_snapshot_metadata_crud_and_items(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        snap = await api.snapshot("p1", vol["id"], metadata={"a": "1"})
        base = f"/snapshots/{snap['id']}/metadata"
        assert (await api.get("p1", base)).json() == {"metadata": {"a": "1"}}

        merged = await api.post("p1", base, {"metadata": {"b": "2", "a": "3"}})
        assert merged.status_code == 200 and merged.json() == {"metadata": {"a": "3", "b": "2"}}
        replaced = await api.put("p1", base, {"metadata": {"c": "3", "key with space": "x"}})
        assert replaced.json() == {"metadata": {"c": "3", "key with space": "x"}}
        assert (await api.get("p1", base)).json() == replaced.json()

        item = await api.put("p1", f"{base}/d", {"meta": {"d": "4"}})
        assert item.status_code == 200 and item.json() == {"meta": {"d": "4"}}
        assert (await api.get("p1", f"{base}/d")).json() == {"meta": {"d": "4"}}
        assert (await api.delete("p1", f"{base}/c")).status_code == 200
        shown = (await api.get("p1", f"/snapshots/{snap['id']}")).json()["snapshot"]
        assert shown["metadata"] == {"key with space": "x", "d": "4"}

        missing = await api.get("p1", f"{base}/c")
        assert missing.status_code == 404
        assert missing.json()["itemNotFound"]["message"] == (
            f"Snapshot {snap['id']} has no metadata with key c."
        )
        assert (await api.delete("p1", f"{base}/c")).status_code == 404


async def test_snapshot_metadata_faults(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        snap = await api.snapshot("p1", vol["id"])
        base = f"/snapshots/{snap['id']}/metadata"
        bad = [
            ("post", base, {"meta": {"a": "1"}}, "'metadata' is a required property"),
            ("put", base, [1], "[1] is not of type 'object'"),
            ("post", base, {"metadata": {"a": 1}},
             "Invalid input for field/attribute a. Value: 1. 1 is not of type 'string'"),
            ("post", base, {"metadata": {"a": "x" * 256}}, "is too long"),
            ("post", base, {"metadata": {"a/b": "1"}}, "Additional properties are not allowed"),
            ("put", f"{base}/a", {"meta": {"b": "1"}}, "Request body and URI mismatch"),
            ("put", f"{base}/a", {"meta": {"a": "1", "b": "2"}}, "has too many properties"),
            ("put", f"{base}/a", {"meta": {}}, "does not have enough properties"),
        ]  # fmt: skip
        for method, path, body, message in bad:
            resp = await getattr(api, method)("p1", path, body)
            assert resp.status_code == 400, (path, body, resp.text)
            assert message in resp.json()["badRequest"]["message"], resp.text
        # Another project's snapshot, or none, is not found.
        for project, path in (("p2", base), ("p1", "/snapshots/nope/metadata")):
            assert (await api.get(project, path)).status_code == 404
            resp = await api.put(project, path, {"metadata": {"x": "1"}})
            assert resp.status_code == 404
            assert (await api.delete(project, f"{path}/x")).status_code == 404
        assert (await api.get("p1", base)).json() == {"metadata": {}}
