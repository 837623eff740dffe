"""Volume type update and extra specs (Cinder's types-manage and types-extra-specs): admins
change them; users read the type with only the extra specs Cinder shows users."""

from __future__ import annotations

from volapi_helpers import volume_api


async def test_type_update_by_admins(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        gold = (await api.post("p1", "/types", {"volume_type": {"name": "gold"}}, "admin")).json()
        tid = gold["volume_type"]["id"]
        body = {"volume_type": {"name": "platinum", "description": "fast", "is_public": False}}
        assert (await api.put("p1", f"/types/{tid}", body)).status_code == 403
        resp = await api.put("p1", f"/types/{tid}", body, "admin")
        assert resp.status_code == 200, resp.text
        shown = resp.json()["volume_type"]
        assert (shown["name"], shown["description"], shown["is_public"]) == (
            "platinum", "fast", False,
        )  # fmt: skip
        assert shown["os-volume-type-access:is_public"] is False
        # A private type is the admin's to see now.
        assert (await api.get("p1", f"/types/{tid}")).status_code == 404
        assert (await api.get("p1", f"/types/{tid}", "admin")).json()["volume_type"] == shown
        # Only the description changes; the rest stays.
        again = await api.put("p1", f"/types/{tid}", {"volume_type": {"description": "d"}}, "admin")
        assert again.json()["volume_type"]["name"] == "platinum"

        default = (await api.get("p1", "/types/default")).json()["volume_type"]
        faults = [
            (tid, {"volume_type": {}}, 400,
             "Specify volume type name, description, is_public or a combination thereof."),
            (tid, {"volume_type": {"name": "  "}}, 400, "Volume type name can not be empty."),
            (tid, {"volume_type": {"colour": "red"}}, 400, "Additional properties"),
            (tid, {"volume_type": {"is_public": "maybe"}}, 400, "is not one of"),
            (tid, {"volume_type": {"name": "__DEFAULT__"}}, 409,
             "Volume Type __DEFAULT__ already exists."),
            (default["id"], {"volume_type": {"name": "renamed"}}, 400,
             "The default volume type __DEFAULT__ can not be renamed."),
            ("nope", {"volume_type": {"name": "x"}}, 404, "Volume type nope could not be found."),
        ]  # fmt: skip
        for ref, body, status, message in faults:
            resp = await api.put("p1", f"/types/{ref}", body, "admin")
            assert resp.status_code == status, (body, resp.text)
            ((_key, fault),) = resp.json().items()
            assert message in fault["message"], resp.text


async def test_extra_specs_crud_visibility_and_in_use(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        created = await api.post("p1", "/types", {"volume_type": {"name": "gold"}}, "admin")
        tid = created.json()["volume_type"]["id"]
        base = f"/types/{tid}/extra_specs"
        specs = {"extra_specs": {"volume_backend_name": "file", "multiattach": "<is> False"}}
        assert (await api.post("p1", base, specs)).status_code == 403
        resp = await api.post("p1", base, specs, "admin")
        assert resp.status_code == 200 and resp.json() == specs
        assert (await api.get("p1", base, "admin")).json() == specs
        put = await api.put(
            "p1", f"{base}/volume_backend_name", {"volume_backend_name": "x"}, "admin"
        )
        assert put.status_code == 200 and put.json() == {"volume_backend_name": "x"}
        assert (await api.get("p1", f"{base}/volume_backend_name", "admin")).json() == {
            "volume_backend_name": "x"
        }
        # Users see only the keys Cinder shows users, in the type and its extra specs.
        assert (await api.get("p1", base)).json() == {"extra_specs": {"multiattach": "<is> False"}}
        user_view = (await api.get("p1", f"/types/{tid}")).json()["volume_type"]
        assert user_view["extra_specs"] == {"multiattach": "<is> False"}
        assert (await api.get("p1", f"{base}/volume_backend_name")).status_code == 404
        admin_view = (await api.get("p1", f"/types/{tid}", "admin")).json()["volume_type"]
        assert admin_view["extra_specs"] == {
            "volume_backend_name": "x",
            "multiattach": "<is> False",
        }

        resp = await api.delete("p1", f"{base}/volume_backend_name", "admin")
        assert resp.status_code == 202
        missing = await api.get("p1", f"{base}/volume_backend_name", "admin")
        assert missing.status_code == 404
        assert missing.json()["itemNotFound"]["message"] == (
            f"Volume Type {tid} has no extra specs with key volume_backend_name."
        )
        assert (await api.delete("p1", f"{base}/volume_backend_name", "admin")).status_code == 404

        bad = [
            ("post", base, {"specs": {}}, "'extra_specs' is a required property"),
            ("post", base, {"extra_specs": {"a b": "1"}}, "Additional properties"),
            ("post", base, {"extra_specs": {"a": 1}}, "is not of type"),
            ("put", f"{base}/a", {"b": "1"}, "Request body and URI mismatch"),
            ("put", f"{base}/a", {"a": "1", "b": "2"}, "has too many properties"),
        ]
        for method, path, body, message in bad:
            resp = await getattr(api, method)("p1", path, body, "admin")
            assert resp.status_code == 400, (body, resp.text)
            assert message in resp.json()["badRequest"]["message"], resp.text

        # A type volumes use keeps its specs (Cinder: "Volume Type is currently in use.").
        await api.volume("p1", volume_type="gold")
        resp = await api.post("p1", base, {"extra_specs": {"k": "v"}}, "admin")
        assert resp.status_code == 400
        assert resp.json()["badRequest"]["message"] == "Volume Type is currently in use."
        assert (await api.delete("p1", f"{base}/multiattach", "admin")).status_code == 400
        assert (await api.get("p1", base, "admin")).json() == {
            "extra_specs": {"multiattach": "<is> False"}
        }
        assert (await api.get("p1", "/types/nope/extra_specs", "admin")).status_code == 404
