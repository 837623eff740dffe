"""Neutron list semantics on rendered resources: filters, ``fields``, sorting and paging.

GET /v2.0/ports?device_id=X&fixed_ips=ip_address=10.0.0.5&limit=2&sort_key=name
-> {"ports": [...], "ports_links": [{"rel": "next", "href": ".../ports?...&marker=ID"}]}
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import Request

from ..domain.errors import bad_request, invalid

# Paging and presentation parameters; everything else is an attribute filter.
CONTROL = {"limit", "marker", "sort_key", "sort_dir", "fields", "page_reverse"}
# Filters on addresses: matched in their canonical spelling, as they are stored.
ADDRESS_FILTERS = {
    "cidr",
    "gateway_ip",
    "dns_nameservers",
    "floating_ip_address",
    "fixed_ip_address",
    "remote_ip_prefix",
    "normalized_cidr",
    "ip_address",
}


def canonical(value: str) -> str:
    """An address or prefix as the API stores it (RFC 5952 for IPv6); else as given."""
    for parse in (ipaddress.ip_address, ipaddress.ip_interface):
        try:
            return str(parse(value))
        except ValueError:
            continue
    return value


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
        val = canonical(val) if key in ADDRESS_FILTERS else val
        if any(str(ip.get(key)) == val for ip in item.get("fixed_ips", [])):
            return True
    return False


def select_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


def render_list(request: Request, collection: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    params = request.query_params
    for key in {k for k in params if k not in CONTROL}:
        wanted = params.getlist(key)
        if key in ADDRESS_FILTERS:
            wanted = [canonical(w) for w in wanted]
        if key == "fixed_ips":
            items = [i for i in items if _fixed_ip_match(i, wanted)]
        elif items and key in items[0]:
            items = [i for i in items if _matches(i.get(key), wanted)]
    sort_key = params.get("sort_key")
    if sort_key:
        if items and sort_key not in items[0]:
            raise invalid(f"{[sort_key]} is invalid attribute for sort_keys")
        direction = params.get("sort_dir", "asc")
        if direction not in ("asc", "desc"):
            raise invalid(
                f"{[direction]} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
            )
        reverse = direction == "desc"
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
            size = -1
        if size < 0:
            raise bad_request("limit", f"Limit must be an integer 0 or greater and not '{limit}'")
        if size > 0 and len(items) > size:
            items = items[:size]
            next_url = request.url.remove_query_params("marker")
            href = str(next_url.include_query_params(marker=items[-1]["id"]))
            out[f"{collection}_links"] = [{"rel": "next", "href": href}]
    fields = params.getlist("fields")
    out[collection] = [select_fields(i, fields) for i in items]
    return dict(sorted(out.items(), key=lambda kv: kv[0] != collection))
