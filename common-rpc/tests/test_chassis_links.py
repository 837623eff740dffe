"""Links in bodies are built on the gateway's public URL and prefix (X-Forwarded-*)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request

from common_rpc.chassis.links import next_link, previous_link, public_base, public_url
from common_rpc.chassis.versions import link

app = FastAPI()


@app.get("/v3/{project_id}/items")
async def items(request: Request, project_id: str) -> dict:
    return {
        "base": public_base(request),
        "self": public_url(request, f"/v3/{project_id}/items/i1"),
        "here": public_url(request),
        "next": next_link(request, "i2"),
        "next_forward": next_link(request, "i2", drop=("page_reverse",)),
        "previous": previous_link(request, "i1", add={"page_reverse": "True"}),
        "empty_next": next_link(request, None),
        "version": link(request, "/v3/"),
    }


async def _get(path: str, headers: dict[str, str] | None = None) -> dict:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica:8776") as http:
        resp = await http.get(path, headers=headers or {})
        assert resp.status_code == 200, resp.text
        return resp.json()


GATEWAY = {
    "X-Forwarded-Host": "gw.example:8080",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Prefix": "/volume",
}


async def test_links_through_the_gateway_carry_its_url_and_prefix() -> None:
    body = await _get("/v3/p1/items?limit=1&sort=name:asc&marker=i1", GATEWAY)
    assert body["base"] == "https://gw.example:8080/volume"
    assert body["self"] == "https://gw.example:8080/volume/v3/p1/items/i1"
    assert body["here"] == "https://gw.example:8080/volume/v3/p1/items"
    assert body["version"] == {"rel": "self", "href": "https://gw.example:8080/volume/v3/"}
    # The old marker is replaced, every other parameter kept in the client's order.
    assert body["next"] == {
        "rel": "next",
        "href": "https://gw.example:8080/volume/v3/p1/items?limit=1&sort=name%3Aasc&marker=i2",
    }


async def test_a_direct_call_links_to_the_address_it_was_called_at() -> None:
    body = await _get("/v3/p1/items")
    assert body["base"] == "http://replica:8776"
    assert body["next"]["href"] == "http://replica:8776/v3/p1/items?marker=i2"


async def test_odd_forwarded_values_never_make_a_link_elsewhere() -> None:
    # A host with a path or userinfo is not a host: the request's own base is used.
    for host in ("evil.example/x", "user@evil.example", "a b"):
        body = await _get("/v3/p1/items", {"X-Forwarded-Host": host})
        assert body["base"] == "http://replica:8776", host
    # An unknown scheme is http; a prefix without its slash gets one, a trailing one goes.
    odd = {"X-Forwarded-Host": "gw", "X-Forwarded-Proto": "javascript", "X-Forwarded-Prefix": "v/"}
    assert (await _get("/v3/p1/items", odd))["base"] == "http://gw/v"


async def test_previous_links_page_backwards_on_the_public_url() -> None:
    body = await _get("/v3/p1/items?limit=2&marker=i0&page_reverse=False", GATEWAY)
    # The marker and page_reverse are replaced, not repeated; limit stays where it was.
    assert body["previous"] == {
        "rel": "previous",
        "href": "https://gw.example:8080/volume/v3/p1/items?limit=2&marker=i1&page_reverse=True",
    }
    # A next link can drop a parameter (Neutron's next link pages forward again).
    assert body["next_forward"]["href"] == (
        "https://gw.example:8080/volume/v3/p1/items?limit=2&marker=i2"
    )
    # No items, no marker: the link keeps the other parameters only.
    assert body["empty_next"]["href"] == (
        "https://gw.example:8080/volume/v3/p1/items?limit=2&page_reverse=False"
    )
