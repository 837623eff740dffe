"""Who may set each writable attribute: Neutron's default policies, enforced here.

The gateway only checks that the caller may call the API at all; which attributes a
member may set depends on the resource (whose network it is, whether that network is
shared), which only this service knows. ``RULES`` is the table; docs/attribute-policy.md
publishes the same rows and a test compares the two.

    policy.enforce(ctx, "create", "port", body, network=net)
    # 403 "(rule:create_port and rule:create_port:mac_address) is disallowed by policy"

As in Neutron (``neutron.policy._is_attribute_explicitly_set``), a create checks an
attribute only when its value differs from the attribute's default; an update checks
every attribute the body names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from common_rpc.context import RequestContext

from ..db.models import Network
from .common import as_bool
from .errors import policy_denied, read_only


class Who(StrEnum):
    """Who may set an attribute (an admin always may)."""

    ANYONE = "anyone"  # whoever may create or change the resource itself
    NETWORK_OWNER = "admin or network owner"
    NETWORK_OWNER_OR_SHARED = "admin, network owner, or anyone on a shared network"
    ADMIN = "admin"
    READ_ONLY = "nobody (read-only, 400)"


_UNSET = object()


@dataclass(frozen=True)
class Rule:
    resource: str
    # Neutron's attribute path in its policy names: "mac_address", "fixed_ips:ip_address",
    # "external_gateway_info:external_fixed_ips".
    attribute: str
    create: Who
    update: Who
    reference: str
    # Only these values are governed (a prefix ending in "*"); empty: every value.
    values: str = ""
    # A create that gives the default is not checked (Neutron's rule); _UNSET: always.
    default: Any = _UNSET


_ANY, _OWNER, _SHARED, _ADMIN, _RO = (
    Who.ANYONE,
    Who.NETWORK_OWNER,
    Who.NETWORK_OWNER_OR_SHARED,
    Who.ADMIN,
    Who.READ_ONLY,
)

RULES: tuple[Rule, ...] = (
    # networks
    Rule("network", "name", _ANY, _ANY, "create_network (rule:any)"),
    Rule("network", "description", _ANY, _ANY, "create_network (rule:any)"),
    Rule("network", "admin_state_up", _ANY, _ANY, "create_network (rule:any)"),
    Rule("network", "mtu", _ANY, _ANY, "create_network (net-mtu-writable, no attribute rule)"),
    Rule("network", "port_security_enabled", _ANY, _ANY, "create_network (no attribute rule)"),
    Rule(
        "network",
        "shared",
        _ADMIN,
        _ADMIN,
        "create_network:shared, update_network:shared",
        default=False,
    ),
    Rule(
        "network",
        "router:external",
        _ADMIN,
        _ADMIN,
        "create_network:router:external, update_network:router:external",
    ),
    Rule(
        "network",
        "provider:network_type",
        _ADMIN,
        _ADMIN,
        "create_network:provider:network_type, update_network:provider:network_type",
    ),
    Rule(
        "network",
        "provider:physical_network",
        _ADMIN,
        _ADMIN,
        "create_network:provider:physical_network, update_network:provider:physical_network",
    ),
    Rule(
        "network",
        "provider:segmentation_id",
        _ADMIN,
        _ADMIN,
        "create_network:provider:segmentation_id, update_network:provider:segmentation_id",
    ),
    # subnets: creating one at all is the network owner's (create_subnet)
    Rule(
        "subnet",
        "network_id",
        _OWNER,
        _RO,
        "create_subnet (rule:admin_or_network_owner); 404 if the network is hidden",
    ),
    Rule("subnet", "name", _ANY, _ANY, "create_subnet, update_subnet"),
    Rule("subnet", "description", _ANY, _ANY, "create_subnet, update_subnet"),
    Rule("subnet", "cidr", _ANY, _RO, "create_subnet"),
    Rule("subnet", "ip_version", _ANY, _RO, "create_subnet"),
    Rule("subnet", "gateway_ip", _ANY, _ANY, "create_subnet, update_subnet"),
    Rule("subnet", "enable_dhcp", _ANY, _ANY, "create_subnet, update_subnet"),
    Rule("subnet", "allocation_pools", _ANY, _ANY, "create_subnet, update_subnet"),
    Rule("subnet", "dns_nameservers", _ANY, _ANY, "create_subnet, update_subnet"),
    Rule("subnet", "host_routes", _ANY, _ANY, "create_subnet, update_subnet"),
    # ports: creating one is the network owner's, or anyone's on a shared network
    Rule(
        "port",
        "network_id",
        _SHARED,
        _RO,
        "create_port (network owner or shared network); 404 if the network is hidden",
    ),
    Rule("port", "name", _ANY, _ANY, "create_port, update_port"),
    Rule("port", "description", _ANY, _ANY, "create_port, update_port"),
    Rule("port", "admin_state_up", _ANY, _ANY, "create_port, update_port"),
    Rule("port", "device_id", _ANY, _ANY, "create_port, update_port"),
    Rule(
        "port",
        "device_owner",
        _OWNER,
        _OWNER,
        "create_port:device_owner, update_port:device_owner (rule:network_device)",
        values="network:*",
    ),
    Rule(
        "port",
        "device_owner",
        _ANY,
        _ANY,
        "create_port:device_owner, update_port:device_owner (not rule:network_device)",
        values="other",
    ),
    Rule("port", "mac_address", _OWNER, _ADMIN, "create_port:mac_address, update_port:mac_address"),
    Rule(
        "port",
        "fixed_ips:ip_address",
        _OWNER,
        _OWNER,
        "create_port:fixed_ips:ip_address, update_port:fixed_ips:ip_address",
    ),
    Rule(
        "port",
        "fixed_ips:subnet_id",
        _SHARED,
        _SHARED,
        "create_port:fixed_ips:subnet_id, update_port:fixed_ips:subnet_id",
    ),
    Rule(
        "port",
        "port_security_enabled",
        _OWNER,
        _OWNER,
        "create_port:port_security_enabled, update_port:port_security_enabled",
    ),
    Rule(
        "port",
        "security_groups",
        _ANY,
        _ANY,
        "create_port, update_port (the port's project's groups only)",
    ),
    Rule(
        "port",
        "binding:host_id",
        _ADMIN,
        _ADMIN,
        "create_port:binding:host_id, update_port:binding:host_id",
    ),
    Rule(
        "port",
        "binding:profile",
        _ADMIN,
        _ADMIN,
        "create_port:binding:profile, update_port:binding:profile",
    ),
    Rule(
        "port",
        "binding:vnic_type",
        _ANY,
        _ANY,
        "create_port:binding:vnic_type, update_port:binding:vnic_type",
        default="normal",
    ),
    Rule(
        "port",
        "allowed_address_pairs",
        _OWNER,
        _OWNER,
        "create_port:allowed_address_pairs, update_port:allowed_address_pairs",
    ),
    # routers
    Rule("router", "name", _ANY, _ANY, "create_router, update_router"),
    Rule("router", "description", _ANY, _ANY, "create_router, update_router"),
    Rule("router", "admin_state_up", _ANY, _ANY, "create_router, update_router"),
    Rule(
        "router",
        "external_gateway_info:network_id",
        _ANY,
        _ANY,
        "create_router:external_gateway_info:network_id (an external network)",
    ),
    Rule(
        "router",
        "external_gateway_info:enable_snat",
        _ADMIN,
        _ADMIN,
        "create_router:external_gateway_info:enable_snat",
    ),
    Rule(
        "router",
        "external_gateway_info:external_fixed_ips",
        _ADMIN,
        _ADMIN,
        "create_router:external_gateway_info:external_fixed_ips",
    ),
    Rule("router", "distributed", _ADMIN, _ADMIN, "create_router:distributed"),
    Rule("router", "ha", _ADMIN, _ADMIN, "create_router:ha"),
    # floating IPs
    Rule("floatingip", "floating_network_id", _ANY, _RO, "create_floatingip (an external network)"),
    Rule("floatingip", "floating_ip_address", _ADMIN, _RO, "create_floatingip:floating_ip_address"),
    Rule(
        "floatingip",
        "port_id",
        _ANY,
        _ANY,
        "create_floatingip, update_floatingip (the project's own port)",
    ),
    Rule("floatingip", "fixed_ip_address", _ANY, _ANY, "create_floatingip, update_floatingip"),
    Rule("floatingip", "description", _ANY, _ANY, "create_floatingip, update_floatingip"),
    # security groups
    Rule(
        "security_group",
        "name",
        _ANY,
        _ANY,
        "create_security_group, update_security_group ('default' is reserved)",
    ),
    Rule(
        "security_group", "description", _ANY, _ANY, "create_security_group, update_security_group"
    ),
)


def _path(body: dict[str, Any], attribute: str) -> list[Any]:
    """The values ``body`` gives ``attribute`` ("a:b": key b of dict a, or of each dict in
    list a); empty when it gives none. Keys with a colon of their own come first."""
    if attribute in body:
        return [body[attribute]]
    head, sep, tail = attribute.partition(":")
    if not sep or head not in body:
        return []
    inner = body[head]
    entries = inner if isinstance(inner, list) else [inner]
    return [e[tail] for e in entries if isinstance(e, dict) and tail in e]


def _governed(rule: Rule, value: Any) -> bool:
    if not rule.values:
        return True
    if rule.values == "other":
        return False  # the complement of another row: nothing to check
    prefix = rule.values.rstrip("*")
    return isinstance(value, str) and value.startswith(prefix)


def _is_default(rule: Rule, value: Any) -> bool:
    if rule.default is _UNSET:
        return False
    if isinstance(rule.default, bool):
        return as_bool(value) is rule.default
    return bool(value == rule.default)


def allowed(who: Who, ctx: RequestContext, network: Network | None) -> bool:
    if who in (Who.ANYONE, Who.READ_ONLY) or ctx.is_admin:
        return True  # read-only attributes are refused by the resource (400), not here
    owner = network is not None and network.project_id == ctx.project_id
    if who is Who.NETWORK_OWNER:
        return owner
    if who is Who.NETWORK_OWNER_OR_SHARED:
        return owner or (network is not None and network.shared)
    return False


def denied(
    ctx: RequestContext,
    action: Literal["create", "update"],
    resource: str,
    body: dict[str, Any],
    *,
    network: Network | None = None,
) -> list[str]:
    """The policy names of the attributes in ``body`` the caller may not set."""
    out: list[str] = []
    for rule in RULES:
        if rule.resource != resource:
            continue
        who = rule.create if action == "create" else rule.update
        if allowed(who, ctx, network):
            continue
        values = [v for v in _path(body, rule.attribute) if _governed(rule, v)]
        if action == "create":
            values = [v for v in values if not _is_default(rule, v)]
        if not values or rule.attribute in out:
            continue
        head = rule.attribute.partition(":")[0]
        if rule.attribute not in body and head not in out:
            out.append(head)  # a key inside a dict or list: Neutron names its parent too
        out.append(rule.attribute)
    return out


def enforce(
    ctx: RequestContext,
    action: Literal["create", "update"],
    resource: str,
    body: dict[str, Any],
    *,
    network: Network | None = None,
) -> None:
    """400 for a read-only attribute an update names; else 403 naming every attribute of
    ``body`` the caller may not set, as Neutron words it."""
    if action == "update":
        for rule in RULES:
            fixed = rule.update is Who.READ_ONLY
            if fixed and rule.resource == resource and rule.attribute in body:
                raise read_only(rule.attribute)
    refused = denied(ctx, action, resource, body, network=network)
    if refused:
        raise policy_denied(f"{action}_{resource}", *refused)
