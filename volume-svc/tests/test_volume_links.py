"""Links in volume bodies and Cinder's paging: every ``self``/``bookmark``/``next`` link is
on the gateway's public URL and prefix (what the gateway's proxy sends in
X-Forwarded-Host/-Proto/-Prefix), and a ``next`` link is there exactly when a page is full.
"""

from __future__ import annotations

from typing import Any

from volapi_helpers import Api, volume_api

# What api_gateway.api.proxy adds to a request it forwards to a volume replica.
GATEWAY = {
    "X-Forwarded-Host": "cloud.example:8443",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Prefix": "/volume",
}
PUBLIC = "https://cloud.example:8443/volume"


async def _get(api: Api, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = await api.http.get(url, headers=api.as_("p1") | (headers or {}))
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _follow(api: Api, first: str, collection: str) -> list[list[str]]:
    """The pages a client gets by following ``next`` links from ``first``: their ids."""
    pages: list[list[str]] = []
    url: str | None = first
    while url is not None:
        body = await _get(api, url, GATEWAY)
        pages.append([item["id"] for item in body[collection]])
        links = body.get(f"{collection}_links")
        if links is None:
            url = None
        else:
            (link,) = links
            assert link["rel"] == "next"
            # The link goes through the gateway: the same public URL, prefix and path.
            assert link["href"].startswith(PUBLIC + "/v3/p1/"), link
            url = link["href"].removeprefix(PUBLIC)
        assert len(pages) < 10, pages
    return pages


async def test_next_links_are_public_and_present_when_a_page_is_full(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        ids = [(await api.volume("p1", name=f"v{i}"))["id"] for i in range(3)]
        # The list's own order (newest first; created in one second, by id).
        order = [v["id"] for v in (await _get(api, "/v3/p1/volumes"))["volumes"]]
        assert sorted(order) == sorted(ids)

        # limit=1: three full pages, then the empty page the third one's link leads to.
        pages = await _follow(api, "/v3/p1/volumes?limit=1", "volumes")
        assert pages == [[i] for i in order] + [[]]
        # limit=2: a full page with a link, then a short one without.
        pages = await _follow(api, "/v3/p1/volumes/detail?limit=2", "volumes")
        assert pages == [order[:2], order[2:]]
        # The other parameters are kept in the link, the marker replaced.
        query = "sort=name:asc&limit=1&marker=" + ids[0]
        body = await _get(api, "/v3/p1/volumes?" + query, GATEWAY)
        assert [v["id"] for v in body["volumes"]] == [ids[1]]
        assert body["volumes_links"] == [
            {
                "rel": "next",
                "href": f"{PUBLIC}/v3/p1/volumes?sort=name%3Aasc&limit=1&marker={ids[1]}",
            }
        ]
        # No limit: a page of up to 1000 (Cinder's osapi_max_limit) has no link; limit=0
        # is an empty page without one; a larger limit is cut to 1000.
        assert "volumes_links" not in await _get(api, "/v3/p1/volumes", GATEWAY)
        assert await _get(api, "/v3/p1/volumes?limit=0", GATEWAY) == {"volumes": []}
        assert "volumes_links" not in await _get(api, "/v3/p1/volumes?limit=5000", GATEWAY)

        # Snapshots page the same way.
        snaps = [(await api.snapshot("p1", ids[0]))["id"] for _ in range(2)]
        pages = await _follow(api, "/v3/p1/snapshots/detail?limit=1&sort=name", "snapshots")
        assert sorted(i for page in pages for i in page) == sorted(snaps) and pages[-1] == []


async def test_self_and_bookmark_links_are_on_the_public_url(tmp_path) -> None:
    async with volume_api(tmp_path) as api:
        vol = await api.volume("p1")
        expected = f"{PUBLIC}/v3/p1/volumes/{vol['id']}"
        wanted = [{"rel": "self", "href": expected}, {"rel": "bookmark", "href": expected}]

        created = await api.http.post(
            "/v3/p1/volumes", json={"volume": {"size": 1}}, headers=api.as_("p1") | GATEWAY
        )
        assert created.status_code == 202
        other = created.json()["volume"]
        assert other["links"][0]["href"] == f"{PUBLIC}/v3/p1/volumes/{other['id']}"
        shown = (await _get(api, f"/v3/p1/volumes/{vol['id']}", GATEWAY))["volume"]
        assert shown["links"] == wanted
        for path in ("/v3/p1/volumes", "/v3/p1/volumes/detail"):
            listed = {v["id"]: v for v in (await _get(api, path, GATEWAY))["volumes"]}
            assert listed[vol["id"]]["links"] == wanted
        updated = await api.http.put(
            f"/v3/p1/volumes/{vol['id']}",
            json={"volume": {"name": "n"}},
            headers=api.as_("p1") | GATEWAY,
        )
        assert updated.json()["volume"]["links"] == wanted
        await api.wait_status("p1", "volumes", other["id"], "available")

        # Called directly (an operator, a test), links name the address it was called at.
        direct = (await _get(api, f"/v3/p1/volumes/{vol['id']}"))["volume"]
        assert direct["links"][0]["href"] == f"http://service/v3/p1/volumes/{vol['id']}"
        # A forwarded host that is not one (a path in it) never makes a link elsewhere.
        odd = await _get(api, "/v3/p1/volumes?limit=1", {"X-Forwarded-Host": "evil.example/x"})
        assert odd["volumes_links"][0]["href"].startswith("http://service/v3/p1/volumes?")
