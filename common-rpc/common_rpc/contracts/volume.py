"""The ``volume`` topic as other services call it: Cinder's attach protocol, typed.

    volume = VolumeApi(runtime.rpc, timeout=10)
    await volume.reserve(vid)                                        # -> reserved
    info = await volume.initialize_connection(vid, Connector(initiator=iqn, host="cn1"))
    info.data.target_iqn, info.data.target_portal, info.data.auth_password
    await volume.attach(vid, sid, "/dev/vdb", "cn1")  # server, mountpoint, host -> in-use
    await volume.begin_detaching(vid)                                # -> detaching
    await volume.terminate_connection(vid, connector)
    await volume.detach(vid, sid)                                    # -> available
    await volume.unreserve(vid)       # undo a failed attach
    await volume.roll_detaching(vid)  # undo a failed detach: detaching -> in-use

Each call runs as the caller's context (``current_context()``): a project reaches only
its own volumes. On the wire a request is its fields as the call's keyword arguments and
a reply is the model's JSON, as before these models existed: an untyped sender
(``rpc.call("volume", "reserve", volume_id=v)``) gets the same answer.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ..methods import Contract, Message, Method
from ..rpc import RpcClient

# ---------------------------------------------------------------- requests


class VolumeRef(Message):
    volume_id: str


class Connector(Message):
    """Cinder's connector: who will log in to the export (the target admits only it)."""

    # The name the hypervisor's iSCSI initiator logs in with (``iqn.YYYY-MM.…``);
    # the volume service refuses one that is not an iSCSI name.
    initiator: str
    host: str | None = None
    ip: str | None = None
    multipath: bool = False


class ConnectionRequest(Message):
    volume_id: str
    connector: Connector


class AttachRequest(Message):
    volume_id: str
    server_id: str
    # The compute host the guest runs on.
    host: str
    # The guest's device (``/dev/vdb``), Cinder's ``mountpoint``; ``device`` is taken for it.
    mountpoint: str | None = None
    device: str | None = None


class DetachRequest(Message):
    volume_id: str
    server_id: str


# ---------------------------------------------------------------- replies


class Link(Message):
    rel: str
    href: str


class VolumeAttachment(Message):
    """One attachment as Cinder lists it under a volume's ``attachments``."""

    id: str
    attachment_id: str
    volume_id: str
    server_id: str
    host_name: str | None = None
    device: str | None = None
    attached_at: str | None = None


class VolumeInfo(Message):
    """A volume as Cinder shows it (``GET /v3/{project}/volumes/{id}``), the reply of every
    status move; the ``os-vol-*`` extension fields keep their names on the wire."""

    model_config = ConfigDict(
        extra="ignore", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    id: str
    name: str = ""
    size: int
    status: str
    description: str | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    bootable: str = "false"  # Cinder's string "true"/"false"
    encrypted: bool = False
    multiattach: bool = False
    attachments: list[VolumeAttachment] = []
    metadata: dict[str, str] = {}
    snapshot_id: str | None = None
    source_volid: str | None = None
    user_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    consistencygroup_id: str | None = None
    replication_status: str | None = None
    links: list[Link] = []
    group_id: str | None = None
    provider_id: str | None = None
    service_uuid: str | None = None
    shared_targets: bool = False
    migration_status: str | None = None
    project_id: str | None = Field(None, alias="os-vol-tenant-attr:tenant_id")
    # Admins only (``host@backend#pool``); None for everyone else.
    backend_host: str | None = Field(None, alias="os-vol-host-attr:host")
    migstat: str | None = Field(None, alias="os-vol-mig-status-attr:migstat")
    name_id: str | None = Field(None, alias="os-vol-mig-status-attr:name_id")


class IscsiConnectionData(Message):
    """Where the export is and how to log in: what libvirt's iSCSI ``<disk>`` needs."""

    target_iqn: str
    target_portal: str
    target_lun: int
    target_discovered: bool = False
    volume_id: str
    auth_method: str = "CHAP"
    auth_username: str
    auth_password: str


class ConnectionInfo(Message):
    driver_volume_type: str = "iscsi"
    data: IscsiConnectionData


class ConnectionTerminated(Message):
    volume_id: str
    terminated: bool = True


# ---------------------------------------------------------------- methods

GET_VOLUME = Method("get_volume", VolumeRef, VolumeInfo, doc="the caller's volume")
RESERVE = Method("reserve", VolumeRef, VolumeInfo, doc="available -> reserved")
INITIALIZE_CONNECTION = Method(
    "initialize_connection",
    ConnectionRequest,
    ConnectionInfo,
    doc="export to the connector's initiator only (reserved -> attaching)",
)
ATTACH = Method("attach", AttachRequest, VolumeInfo, doc="-> in-use, with the attachment")
BEGIN_DETACHING = Method("begin_detaching", VolumeRef, VolumeInfo, doc="in-use -> detaching")
TERMINATE_CONNECTION = Method(
    "terminate_connection",
    ConnectionRequest,
    ConnectionTerminated,
    doc="remove the export; the host checks the target is gone",
)
DETACH = Method("detach", DetachRequest, VolumeInfo, doc="-> available, attachment gone")
UNRESERVE = Method("unreserve", VolumeRef, VolumeInfo, doc="undo a failed attach")
ROLL_DETACHING = Method(
    "roll_detaching", VolumeRef, VolumeInfo, doc="undo a failed detach: detaching -> in-use"
)

VOLUME = Contract(
    "volume",
    [
        GET_VOLUME,
        RESERVE,
        INITIALIZE_CONNECTION,
        ATTACH,
        BEGIN_DETACHING,
        TERMINATE_CONNECTION,
        DETACH,
        UNRESERVE,
        ROLL_DETACHING,
    ],
)


class VolumeApi:
    """The typed client of the ``volume`` topic (any replica of volume-api).

    ``op_id`` makes a retried call run once (the server keeps its first reply).
    """

    def __init__(self, rpc: RpcClient, *, topic: str = "volume", timeout: float = 10.0) -> None:
        self.rpc = rpc
        self.topic = topic
        self.timeout = timeout

    async def get_volume(self, volume_id: str) -> VolumeInfo:
        return await self.rpc.invoke(
            self.topic, GET_VOLUME, VolumeRef(volume_id=volume_id), timeout=self.timeout
        )

    async def reserve(self, volume_id: str, *, op_id: str | None = None) -> VolumeInfo:
        return await self._move(RESERVE, volume_id, op_id)

    async def unreserve(self, volume_id: str, *, op_id: str | None = None) -> VolumeInfo:
        return await self._move(UNRESERVE, volume_id, op_id)

    async def begin_detaching(self, volume_id: str, *, op_id: str | None = None) -> VolumeInfo:
        return await self._move(BEGIN_DETACHING, volume_id, op_id)

    async def roll_detaching(self, volume_id: str, *, op_id: str | None = None) -> VolumeInfo:
        """A detach that failed: ``detaching`` back to ``in-use`` (else nothing changes)."""
        return await self._move(ROLL_DETACHING, volume_id, op_id)

    async def initialize_connection(
        self, volume_id: str, connector: Connector, *, op_id: str | None = None
    ) -> ConnectionInfo:
        request = ConnectionRequest(volume_id=volume_id, connector=connector)
        return await self.rpc.invoke(
            self.topic, INITIALIZE_CONNECTION, request, timeout=self.timeout, op_id=op_id
        )

    async def terminate_connection(
        self, volume_id: str, connector: Connector, *, op_id: str | None = None
    ) -> ConnectionTerminated:
        request = ConnectionRequest(volume_id=volume_id, connector=connector)
        return await self.rpc.invoke(
            self.topic, TERMINATE_CONNECTION, request, timeout=self.timeout, op_id=op_id
        )

    async def attach(
        self,
        volume_id: str,
        server_id: str,
        mountpoint: str,
        host: str,
        *,
        op_id: str | None = None,
    ) -> VolumeInfo:
        """``mountpoint`` is the guest's device (``/dev/vdb``), Cinder's name for it."""
        request = AttachRequest(
            volume_id=volume_id, server_id=server_id, mountpoint=mountpoint, host=host
        )
        return await self.rpc.invoke(self.topic, ATTACH, request, timeout=self.timeout, op_id=op_id)

    async def detach(
        self, volume_id: str, server_id: str, *, op_id: str | None = None
    ) -> VolumeInfo:
        request = DetachRequest(volume_id=volume_id, server_id=server_id)
        return await self.rpc.invoke(self.topic, DETACH, request, timeout=self.timeout, op_id=op_id)

    async def _move(
        self, method: Method[VolumeRef, VolumeInfo], volume_id: str, op_id: str | None
    ) -> VolumeInfo:
        return await self.rpc.invoke(
            self.topic, method, VolumeRef(volume_id=volume_id), timeout=self.timeout, op_id=op_id
        )
