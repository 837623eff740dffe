"""Event types the network service emits (payloads in ``common_rpc.contracts.payloads``)."""

from __future__ import annotations

NETWORK = "network.network.{action}.end"
SUBNET = "network.subnet.{action}.end"
PORT = "network.port.{action}.end"
SECURITY_GROUP = "network.security_group.{action}.end"
SECURITY_GROUP_RULE = "network.security_group_rule.{action}.end"

CREATE, UPDATE, DELETE = "create", "update", "delete"
