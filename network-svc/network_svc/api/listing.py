"""Neutron list semantics on rendered resources: filters, ``fields``, sorting and paging.

GET /v2.0/ports?device_id=X&fixed_ips=ip_address=10.0.0.5&limit=2&sort_key=name
-> {"ports": [...], "ports_links": [{"rel": "next", "href": ".../ports?...&marker=ID"},
                                   {"rel": "previous", ...&marker=FIRST&page_reverse=True}]}
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import Request

from common_rpc.chassis.links import next_link, previous_link

from ..domain import tags
from ..domain.errors import bad_request, invalid, not_found

# Paging and presentation parameters; everything else is an attribute filter.
CONTROL = {"limit", "marker", "sort_key", "sort_dir", "fields", "page_reverse"}
# Neutron's tag filters (on collections with tags), each a comma-separated list.
TAG_FILTERS = {"tags", "tags-any", "not-tags", "not-tags-any"}
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


_STANDARD = "id name description project_id tenant_id tags created_at updated_at revision_number"
# Each collection's attributes (a filter or sort_key on anything else is refused, as
# Neutron's filter validation does); the lists and dictionaries among them are no sort key.
ATTRIBUTES: dict[str, frozenset[str]] = {
    name: frozenset(f"{_STANDARD} {attrs}".split())
    for name, attrs in {
        "networks": "status admin_state_up subnets shared router:external mtu "
        "port_security_enabled availability_zones availability_zone_hints is_default "
        "ipv4_address_scope ipv6_address_scope provider:network_type "
        "provider:physical_network provider:segmentation_id",
        "subnets": "network_id cidr ip_version gateway_ip allocation_pools enable_dhcp "
        "dns_nameservers host_routes ipv6_ra_mode ipv6_address_mode subnetpool_id "
        "service_types",
        "ports": "network_id mac_address admin_state_up status device_id device_owner "
        "fixed_ips security_groups allowed_address_pairs extra_dhcp_opts "
        "port_security_enabled binding:vnic_type binding:host_id binding:vif_type "
        "binding:vif_details binding:profile",
        "routers": "status admin_state_up external_gateway_info routes distributed ha "
        "availability_zones availability_zone_hints flavor_id",
        "floatingips": "floating_ip_address floating_network_id router_id port_id "
        "fixed_ip_address status port_details dns_name dns_domain qos_policy_id "
        "port_forwardings",
        "security_groups": "stateful shared security_group_rules",
        "security_group_rules": "security_group_id direction ethertype protocol "
        "port_range_min port_range_max remote_ip_prefix remote_group_id "
        "remote_address_group_id normal_cidr normalized_cidr belongs_to_default_sg",
        "network_ip_availabilities": "network_id network_name total_ips "
        "used_ips subnet_ip_availability",
        "agents": "agent_type binary host topic alive admin_state_up availability_zone "
        "configurations started_at heartbeat_timestamp resources_synced",
    }.items()
}
# Not a standard resource: no id, project or timestamps.
ATTRIBUTES["availability_zones"] = frozenset({"name", "resource", "state"})
NOT_SORTABLE = frozenset(
    "tags subnets availability_zones availability_zone_hints allocation_pools "
    "dns_nameservers host_routes service_types fixed_ips security_groups "
    "allowed_address_pairs extra_dhcp_opts binding:vif_details binding:profile "
    "external_gateway_info routes port_details port_forwardings security_group_rules "
    "configurations subnet_ip_availability".split()
)
# The fault a collection's unknown marker answers (Neutron looks the marker up).
KINDS = {
    "networks": "Network",
    "subnets": "Subnet",
    "ports": "Port",
    "routers": "Router",
    "floatingips": "FloatingIP",
    "security_groups": "SecurityGroup",
    "security_group_rules": "SecurityGroupRule",
    "agents": "Agent",
    "network_ip_availabilities": "Network",
    "availability_zones": "AvailabilityZone",
}


def _sorting(params: Any, collection: str) -> list[tuple[str, bool]]:
    """[(sort key, descending)], Neutron's checks: known scalar keys, one asc/desc each."""
    keys = [k for k in params.getlist("sort_key") if k]
    dirs = [d for d in params.getlist("sort_dir") if d]
    if len(keys) != len(dirs):
        raise invalid("The number of sort_keys and sort_dirs must be same")
    allowed = ATTRIBUTES.get(collection, frozenset()) - NOT_SORTABLE
    absent = [k for k in keys if k not in allowed]
    if absent:
        raise invalid(f"{absent} is invalid attribute for sort_keys")
    wrong = [d for d in dirs if d not in ("asc", "desc")]
    if wrong:
        raise invalid(f"{wrong} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
    return [(key, direction == "desc") for key, direction in zip(keys, dirs, strict=True)]


def _sort_value(item: dict[str, Any], key: str) -> tuple[int, Any]:
    """None first, then booleans and numbers as numbers, everything else as text."""
    value = item.get(key)
    if value is None:
        return (0, "")
    if isinstance(value, (bool, int, float)):
        return (1, value)
    return (2, str(value))


def _order(
    items: list[dict[str, Any]], sorting: list[tuple[str, bool]], key_of: str = "id"
) -> list[dict[str, Any]]:
    out = sorted(items, key=lambda i: i[key_of])  # the tie-breaker Neutron adds: id ascending
    for key, descending in reversed(sorting):
        out = sorted(out, key=lambda i: _sort_value(i, key), reverse=descending)
    return out


def _limit(params: Any) -> int | None:
    limit = params.get("limit")
    if limit is None or limit == "":
        return None
    try:
        size = int(limit)
    except ValueError:
        size = -1
    if size < 0:
        raise bad_request("limit", f"Limit must be an integer 0 or greater and not '{limit}'")
    return size or None  # 0: no limit, as Neutron reads it


def _page_links(
    request: Request, items: list[dict[str, Any]], size: int, reverse: bool, key_of: str
) -> list[dict[str, str]]:
    """Neutron's pagination links (api_common.get_pagination_links): ``next`` unless a
    forward page came back short, ``previous`` unless a backward one did; on the public
    URL and prefix, so a client following them goes through the gateway again."""
    links = []
    short = len(items) < size
    if not (short and not reverse):
        last = items[-1][key_of] if items else None
        links.append(next_link(request, last, drop=("page_reverse",)))
    if not (short and reverse):
        first = items[0][key_of] if items else None
        links.append(previous_link(request, first, add={"page_reverse": "True"}))
    return links


def render_list(
    request: Request, collection: str, items: list[dict[str, Any]], key_of: str = "id"
) -> dict[str, Any]:
    """The page of ``items`` the query asks for; ``key_of`` names each item's id (the
    marker's key: ``network_id`` for IP availabilities)."""
    params = request.query_params
    known = ATTRIBUTES.get(collection)
    tag_filters = TAG_FILTERS if known and "tags" in known else set()
    unknown = sorted(
        k for k in params if k not in CONTROL | tag_filters and known and k not in known
    )
    if unknown:
        raise invalid(f"{unknown} is invalid attribute for filtering")
    sorting = _sorting(params, collection)
    size = _limit(params)
    everything = items
    by_tags = {k: params.getlist(k) for k in params if k in tag_filters}
    if by_tags:
        items = [i for i in items if tags.matches(i.get("tags") or [], by_tags)]
    for key in {k for k in params if k not in CONTROL | tag_filters}:
        wanted = params.getlist(key)
        if key in ADDRESS_FILTERS:
            wanted = [canonical(w) for w in wanted]
        if key == "fixed_ips":
            items = [i for i in items if _fixed_ip_match(i, wanted)]
        else:
            items = [i for i in items if _matches(i.get(key), wanted)]
    items = _order(items, sorting, key_of) if sorting else items
    reverse = str(params.get("page_reverse", "")).lower() == "true"
    marker = params.get("marker")
    if marker and size is not None:
        # As Neutron: the marker is looked up among what the caller may see (404 if it is
        # unknown), and the page starts after its place in the order (ends before it when
        # paging backwards), filtered or not.
        found = next((i for i in everything if i[key_of] == marker), None)
        if found is None:
            raise not_found(KINDS.get(collection, "Resource"), marker)
        ids = {i[key_of] for i in items} | {marker}
        if sorting:
            ordered = _order([i for i in everything if i[key_of] in ids], sorting, key_of)
        else:
            ordered = [i for i in everything if i[key_of] in ids]
        place = next(n for n, i in enumerate(ordered) if i[key_of] == marker)
        items = ordered[:place] if reverse else ordered[place + 1 :]
    out: dict[str, Any] = {}
    if size is not None:
        items = items[-size:] if reverse else items[:size]
        links = _page_links(request, items, size, reverse, key_of)
        if links:
            out[f"{collection}_links"] = links
    fields = params.getlist("fields")
    out[collection] = [select_fields(i, fields) for i in items]
    return dict(sorted(out.items(), key=lambda kv: kv[0] != collection))
