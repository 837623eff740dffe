"""Neutron list semantics on rendered resources: filters, ``fields``, sorting and paging.

GET /v2.0/ports?device_id=X&fixed_ips=ip_address=10.0.0.5&limit=2&sort_key=name
-> {"ports": [...], "ports_links": [{"rel": "next", "href": ".../ports?...&marker=ID"}]}
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from ..domain.errors import invalid

# Paging and presentation parameters; everything else is an attribute filter.
CONTROL = {"limit", "marker", "sort_key", "sort_dir", "fields", "page_reverse"}


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return str(value).lower() in {w.lower() for w in wanted}
    if isinstance(value, list):
        return any(str(v) in wanted for v in value)
    return ("" if value is None else str(value)) in wanted


def _fixed_ip_match(item: dict[str, Any], wanted: list[str]) -> bool:
    # "fixed_ips=ip_address=X" / "fixed_ips=subnet_id=Y": any address of the port matches.
    for spec in wanted:
        key, _, val = spec.partition("=")
        if any(str(ip.get(key)) == val for ip in item.get("fixed_ips", [])):
            return True
    return False


def select_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


def render_list(request: Request, collection: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    params = request.query_params
    for key in {k for k in params if k not in CONTROL}:
        wanted = params.getlist(key)
        if key == "fixed_ips":
            items = [i for i in items if _fixed_ip_match(i, wanted)]
        elif items and key in items[0]:
            items = [i for i in items if _matches(i.get(key), wanted)]
    sort_key = params.get("sort_key")
    if sort_key:
        if items and sort_key not in items[0]:
            raise invalid(f"{sort_key} is an invalid attribute for sort_key.")
        reverse = params.get("sort_dir", "asc").lower() == "desc"
        items = sorted(items, key=lambda i: (str(i.get(sort_key) or ""), i["id"]), reverse=reverse)
    marker = params.get("marker")
    if marker:
        ids = [i["id"] for i in items]
        items = items[ids.index(marker) + 1 :] if marker in ids else []
    out: dict[str, Any] = {}
    limit = params.get("limit")
    if limit:
        try:
            size = int(limit)
        except ValueError:
            raise invalid(f"Invalid limit {limit!r}.") from None
        if size > 0 and len(items) > size:
            items = items[:size]
            next_url = request.url.remove_query_params("marker")
            href = str(next_url.include_query_params(marker=items[-1]["id"]))
            out[f"{collection}_links"] = [{"rel": "next", "href": href}]
    fields = params.getlist("fields")
    out[collection] = [select_fields(i, fields) for i in items]
    return dict(sorted(out.items(), key=lambda kv: kv[0] != collection))
