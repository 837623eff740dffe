"""The Neutron extensions this service implements, as ``GET /v2.0/extensions`` lists them."""

from __future__ import annotations

from common_rpc.chassis.plugins import Extension

_UPDATED = "2024-01-01T00:00:00-00:00"

_ALIASES = {
    "external-net": ("Neutron external network", "Adds external network attribute."),
    "security-group": ("security-group", "The security groups extension."),
    "port-security": ("Port Security", "Provides port security."),
    "binding": ("Port Binding", "Expose port bindings of a virtual port."),
    "project-id": ("project_id field enabled", "Extension that indicates project_id is enabled."),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks."),
    "standard-attr-description": ("standard-attr-description", "Description on resources."),
    "standard-attr-timestamp": ("Resource timestamps", "created_at and updated_at fields."),
    "standard-attr-revisions": ("Resource revision numbers", "revision_number on resources."),
    "pagination": ("Pagination support", "Extension that indicates pagination is enabled."),
    "sorting": ("Sorting support", "Extension that indicates sorting is enabled."),
    "router": ("Neutron L3 Router", "Router abstraction for layer 3 forwarding and NAT."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode", "enable_snat on gateways."),
    "l3": ("Neutron L3 Router", "Router abstraction for layer 3 forwarding and NAT."),
    "floatingip": ("Floating IPs", "Floating IP addresses mapped 1:1 to fixed IPs."),
    "fip-port-details": ("Floating IP Port Details", "The associated port's details."),
    "quotas": ("Quota management support", "Expose functions for quotas management per project."),
    "standard-attr-tag": ("Tag support for resources with standard attribute", "Tags."),
    "network-ip-availability": ("Network IP Availability", "IP availability of networks."),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": (
        "Atomically add/remove extra routes",
        "Edit a router's routes atomically.",
    ),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "network_availability_zone": ("Network Availability Zone", "Availability zones of networks."),
    "router_availability_zone": ("Router Availability Zone", "Availability zones of routers."),
    "quota_details": ("Quota details management support", "Expose quota usage per project."),
}

BUILTIN: tuple[Extension, ...] = tuple(
    Extension(alias=alias, name=name, description=text, updated=_UPDATED)
    for alias, (name, text) in _ALIASES.items()
)
