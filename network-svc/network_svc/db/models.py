"""The network service's tables (its own database; no other service reads it).

The chassis tables (outbox, processed events, operation log, idempotency keys) are
added by the chassis migration branch, not declared here. Invariants live in the
schema: one IP per (subnet, address), one MAC per network, one segment per
(type, id), one default security group per project.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common_rpc.quotas import QuotaLimitColumns, QuotaUsageColumns


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


class Base(DeclarativeBase):
    pass


class Standard:
    """Neutron's standard attributes: owner, description, timestamps, revision."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)
    # Neutron's standard-attr-tag: a small set of strings, changed under the row's lock.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)


class Network(Standard, Base):
    __tablename__ = "networks"
    # Two networks never share a VXLAN VNI or VLAN id (NULLs, local/flat, are distinct).
    __table_args__ = (UniqueConstraint("network_type", "segmentation_id", name="uq_segment"),)

    admin_state_up: Mapped[bool] = mapped_column(default=True)
    shared: Mapped[bool] = mapped_column(default=False)
    external: Mapped[bool] = mapped_column(default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    port_security_enabled: Mapped[bool] = mapped_column(default=True)
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str | None] = mapped_column(String(64), default=None)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)

    subnets: Mapped[list[Subnet]] = relationship(
        lazy="selectin", order_by="Subnet.created_at", viewonly=True
    )
    # Its DHCP server's port (the host its availability_zones come from); loaded only
    # where a query asks (``selectinload``), never lazily.
    dhcp_ports: Mapped[list[Port]] = relationship(
        primaryjoin="and_(Port.network_id == Network.id, Port.device_owner == 'network:dhcp',"
        " Port.service_owned.is_(True))",
        lazy="raise",
        viewonly=True,
    )


class Subnet(Standard, Base):
    __tablename__ = "subnets"

    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    enable_dhcp: Mapped[bool] = mapped_column(default=True)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class Port(Standard, Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address", name="uq_port_mac"),)

    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    mac_address: Mapped[str] = mapped_column(String(17))
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    host_id: Mapped[str] = mapped_column(String(255), default="")
    port_security_enabled: Mapped[bool] = mapped_column(default=True)
    # Made by the cloud itself (DHCP, router gateway and interface, floating IP holder):
    # a tenant's port may carry the same device_owner, never this flag.
    service_owned: Mapped[bool] = mapped_column(default=False, server_default=false())

    fixed_ips: Mapped[list[IpAllocation]] = relationship(
        lazy="selectin", order_by="IpAllocation.ip_address", viewonly=True
    )
    security_groups: Mapped[list[PortSecurityGroup]] = relationship(lazy="selectin", viewonly=True)


class IpAllocation(Base):
    """One address held by one port; the primary key is the no-duplicate-IP rule."""

    __tablename__ = "ip_allocations"

    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(String(36), index=True)


class SecurityGroup(Standard, Base):
    __tablename__ = "security_groups"

    # Set to the project id on its `default` group only: one default per project.
    default_for: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    stateful: Mapped[bool] = mapped_column(default=True)

    rules: Mapped[list[SecurityGroupRule]] = relationship(
        lazy="selectin", order_by="SecurityGroupRule.created_at", viewonly=True
    )


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8))
    ethertype: Mapped[str] = mapped_column(String(4), default="IPv4")
    protocol: Mapped[str | None] = mapped_column(String(16), default=None)
    port_range_min: Mapped[int | None] = mapped_column(Integer, default=None)
    port_range_max: Mapped[int | None] = mapped_column(Integer, default=None)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), default=None)
    remote_group_id: Mapped[str | None] = mapped_column(String(36), default=None)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)


class PortSecurityGroup(Base):
    __tablename__ = "port_security_groups"

    port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("security_groups.id"), primary_key=True
    )


class Router(Standard, Base):
    """A router; its interfaces are ``router_ports`` rows, its gateway one port on an
    external network. ``host`` is the network-agent that runs its namespace."""

    __tablename__ = "routers"

    admin_state_up: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_network_id: Mapped[str | None] = mapped_column(
        ForeignKey("networks.id"), default=None, index=True
    )
    gw_port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), default=None
    )
    enable_snat: Mapped[bool] = mapped_column(default=True)
    host: Mapped[str] = mapped_column(String(255), default="", index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    # extraroute: [{"destination": cidr, "nexthop": ip}], each nexthop on a connected subnet.
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)

    gw_port: Mapped[Port | None] = relationship(
        lazy="selectin", viewonly=True, foreign_keys="Router.gw_port_id"
    )


class RouterPort(Base):
    """A port that is an interface of a router; one interface per (router, subnet)."""

    __tablename__ = "router_ports"
    __table_args__ = (UniqueConstraint("router_id", "subnet_id", name="uq_router_subnet"),)

    port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id"), index=True)
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"), index=True)


class FloatingIp(Base):
    """An address of an external subnet (held by a ``network:floatingip`` port), mapped
    1:1 to one fixed IP; the unique key keeps one floating IP per fixed IP."""

    __tablename__ = "floatingips"
    __table_args__ = (
        UniqueConstraint("fixed_port_id", "fixed_ip_address", name="uq_floatingip_fixed"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    floating_network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    floating_subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"))
    floating_port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"))
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    fixed_port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), default=None, index=True
    )
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), default=None)
    router_id: Mapped[str | None] = mapped_column(
        ForeignKey("routers.id"), default=None, index=True
    )
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=1)


class QuotaUsage(QuotaUsageColumns, Base):
    """What a project holds of one resource; moved in the transaction that inserts or
    deletes the resource's row (``domain.quotas``)."""

    __tablename__ = "quota_usages"


class QuotaLimit(QuotaLimitColumns, Base):
    """A project's limit when an admin set one; otherwise the settings' default applies."""

    __tablename__ = "quota_limits"
