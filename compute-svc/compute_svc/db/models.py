"""The compute service's tables (its own database; no other service reads it).

The chassis tables (outbox, processed events, operation log, idempotency keys, agents)
are added by the chassis migration branch, not declared here. Invariants live in the
schema: one keypair name per user, one claim per server, one server per given port, and
a host's usage row that only a compare-and-swap update moves (see ``compute_svc.domain.scheduler``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common_rpc.chassis.sweeper import TransitionalMixin, UtcDateTime
from common_rpc.quotas import QuotaLimitColumns, QuotaUsageColumns


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Base(DeclarativeBase):
    pass


class Flavor(Base):
    __tablename__ = "flavors"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap_mb: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Keypair(Base):
    __tablename__ = "keypairs"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    key_type: Mapped[str] = mapped_column(String(16), default="ssh")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Image(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(32), default="queued")
    disk_format: Mapped[str | None] = mapped_column(String(16), default=None)
    container_format: Mapped[str | None] = mapped_column(String(16), default=None)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    checksum: Mapped[str | None] = mapped_column(String(32), default=None)
    os_hash_value: Mapped[str | None] = mapped_column(String(128), default=None)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Server(TransitionalMixin, Base):
    """A server; ``status`` is the state machine the sweeper watches (plus ``DELETING``)."""

    __tablename__ = "servers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255))
    flavor_id: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(String(36), default="")
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    vm_state: Mapped[str] = mapped_column(String(32), default="building")
    task_state: Mapped[str | None] = mapped_column(String(32), default=None)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    key_name: Mapped[str | None] = mapped_column(String(255), default=None)
    public_key: Mapped[str | None] = mapped_column(Text, default=None)
    user_data: Mapped[str | None] = mapped_column(Text, default=None)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    # What the create asked for: [{"network_id"} | {"port_id"}, optional "fixed_ip"].
    requested_networks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The NICs it got: [{"port_id", "network_id", "network_name", "mac", "ips", "created",
    # "bridge", "mtu"}]; recorded as each port is made so a failure can release it.
    nics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Its security groups, [{"id", "name"}]: those the ports the boot makes get, and those
    # addSecurityGroup/removeSecurityGroup changed on its ports. None: none was asked, the
    # network service gives those ports their project's ``default`` (the boot then records
    # what they got).
    security_groups: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, default=None)
    access_ipv4: Mapped[str] = mapped_column(String(64), default="")
    access_ipv6: Mapped[str] = mapped_column(String(64), default="")
    fault: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    launched_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # The zone the create asked for (None: any); once placed, its host's zone.
    availability_zone: Mapped[str | None] = mapped_column(String(255), default=None)
    # Nova's lock: None, or who locked it ("owner": its project, "admin": another's
    # admin), and the 2.73 reason given (``domain.locking``).
    locked_by: Mapped[str | None] = mapped_column(String(16), default=None)
    locked_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    # A shelved server's image (Nova's system_metadata shelved_image_id): unshelve
    # boots from it, then deletes it (``domain.shelving``).
    shelved_image_id: Mapped[str | None] = mapped_column(String(36), default=None)


class VolumeAttachment(Base):
    __tablename__ = "volume_attachments"

    server_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), primary_key=True, unique=True)
    device: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="attaching")
    connection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ServerPort(Base):
    """A port the user gave a server: the key lets one server at a time hold it."""

    __tablename__ = "server_ports"

    port_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    server_id: Mapped[str] = mapped_column(String(36), index=True)


class FloatingIp(Base):
    """A floating IP as the network service's events last said (Nova's info cache, for
    ``addresses``): the port and fixed IP it maps to. ``revision`` and ``changed_at``
    (the event's) order the events, so a late one never undoes a newer; a deleted one
    stays a while as ``deleted`` for the same reason (``domain.floating_ips``)."""

    __tablename__ = "floating_ips"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    port_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), default=None)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class HostUsage(Base):
    """What the claims on one host add up to; moved only by a conditional UPDATE."""

    __tablename__ = "host_usage"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    ram_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)


class Claim(Base):
    """Resources one server holds on its host; deleting the row is what releases them."""

    __tablename__ = "claims"

    server_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)


class InstanceAction(Base):
    """Nova's instance action: what one request asked of a server (``create``, ``reboot``,
    ``detach_volume``...), by whom, and the error it met (``message``)."""

    __tablename__ = "instance_actions"
    __table_args__ = (Index("ix_instance_actions_server_request", "server_id", "request_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255), default=None)
    project_id: Mapped[str | None] = mapped_column(String(255), default=None)
    start_time: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    message: Mapped[str | None] = mapped_column(Text, default=None)


class InstanceActionEvent(TransitionalMixin, Base):
    """One step of an action (``compute_detach_volume``...) and how it ended.

    ``status`` is ``running`` until ``finished``; a detach's event is the detach's own
    transitional record: ``unplugging`` (the guest is asked to let the device go), then
    ``releasing`` (the volume or port is being let go), with an owner and a deadline the
    sweeper watches, so no detach is left half-way (``domain.detaching``).
    """

    __tablename__ = "instance_action_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(Integer, index=True)
    server_id: Mapped[str] = mapped_column(String(36), index=True)
    event: Mapped[str] = mapped_column(String(255))
    # The volume or port a detach acts on.
    target: Mapped[str | None] = mapped_column(String(36), default=None)
    start_time: Mapped[datetime] = mapped_column(UtcDateTime())
    finish_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    result: Mapped[str | None] = mapped_column(String(16), default=None)  # Success | Error
    details: Mapped[str | None] = mapped_column(Text, default=None)


class QuotaUsage(QuotaUsageColumns, Base):
    """What a project holds of one resource; moved in the transaction that inserts or
    removes the resource's row (``domain.quotas``)."""

    __tablename__ = "quota_usages"


class QuotaLimit(QuotaLimitColumns, Base):
    """A project's limit when an admin set one; otherwise the settings' default applies."""

    __tablename__ = "quota_limits"


class ServerGroup(Base):
    """Nova's server group: its members' hosts must be one (``affinity``) or all
    different (``anti-affinity``); ``generation`` is bumped by every placement of a
    member, so two members' placements take turns (``domain.server_groups``)."""

    __tablename__ = "server_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(32))
    # 2.64's rules: {"max_server_per_host": n} for anti-affinity.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ServerGroupMember(Base):
    """One server in one group (the key: a server is in at most one)."""

    __tablename__ = "server_group_members"

    server_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(36), index=True)


class Migration(Base):
    """A server moving between hosts: a cold migration (``migration``: VERIFY_RESIZE until
    confirmed or reverted) or an evacuation (``evacuation``: its host is down). While it
    runs, the destination's resources are held by a claim keyed by the migration's id, so
    each host's usage is always the sum of its claims (``domain.moves``)."""

    __tablename__ = "migrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    server_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    source_host: Mapped[str] = mapped_column(String(255))
    dest_host: Mapped[str | None] = mapped_column(String(255), default=None)
    # migrating -> finished (VERIFY_RESIZE) -> confirmed | reverted; error; done (evacuated)
    status: Mapped[str] = mapped_column(String(32), default="migrating")
    # What the server was before the move (its status, vm_state), restored by a revert.
    old_status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    # A resize's flavors ({"id", "vcpus", "ram_mb", "disk_gb"}): the old one comes back
    # with a revert; None for a migration or an evacuation (the flavor stays).
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ComputeService(Base):
    """An operator's note on a host's compute service: why it was disabled."""

    __tablename__ = "compute_services"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), default=None)
