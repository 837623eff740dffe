"""What compute-api and its compute-agents say to each other, typed once for both sides.

Two topics:

- ``compute`` (``API``): what the agents call (``host_state``, their reconcile, and
  ``power_state_changed``, what a hypervisor saw), ``check_peers`` and ``audit`` for
  operators. Any compute-api replica answers.
- ``compute.<host>`` (``AGENT``): the commands the API sends one host's compute-agent.
  Each carries desired state, never a delta, so repeating one is harmless.

    spawned = await rpc.invoke(agent_topic("compute", "cn1"), SPAWN, Spawn(server=state))
    spawned.power_state, spawned.observed_generation

On the wire a request is its fields as the call's keyword arguments and a reply is the
model's JSON, as before these models existed (``clients.AgentClient`` is the typed sender).

API version history (what each side may rely on):
    1.0  compute.<host>: spawn, destroy, power(action start|stop|reboot), console_output,
         attach_volume, detach_volume, host_state (now inventory)
    1.4  compute.<host>: attach_interface, detach_interface; host_servers lists ``nics``
    1.5  compute.<host>: detach_volume, detach_interface take ``attempts``, ``wait_s``
         and ``until`` (the unplug asked again) and answer ``attempts``
    1.6  compute: host_servers is host_state (one name in every service), answering
         ``{"host", "servers"}``; compute.<host>: host_state is inventory (the audit's)
    1.7  compute.<host>: power takes pause, unpause, suspend (a managed save) and resume
    1.8  compute.<host>: resize and finish_resize (a resize on the server's own host),
         rebuild (the same server made again from its image)
    1.9  compute.<host>: snapshot (the root disk as a standalone qcow2 into the image
         store's staging file), shelve_offload (domain and files gone, as destroy, but
         not a delete: a later spawn of the server counts); ImageRef.root_format (a
         kernel boot over the image's own root disk)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from common_rpc.audit import AuditReport
from common_rpc.chassis.agent import HostStateRequest
from common_rpc.contracts.volume import ConnectionInfo
from common_rpc.methods import Contract, Empty, Message, Method

VERSION = "1.9"

# The power states of a guest as a hypervisor reports them (Nova's names, lower case).
PowerState = Literal["running", "shutdown", "paused", "crashed", "nostate"]
PowerAction = Literal["start", "stop", "reboot", "pause", "unpause", "suspend", "resume"]

# ---------------------------------------------------------------- shared parts


class Nic(Message):
    """A bound port as its host plugs it: the guest's NIC on the port's bridge."""

    port_id: str
    mac: str
    bridge: str
    mtu: int = 1500
    # The tap's name when one is given; "" derives it from the port id (what the
    # network agent matches its firewall rules on).
    device: str = ""

    @field_validator("mtu", mode="before")
    @classmethod
    def _default_mtu(cls, value: Any) -> Any:
        return 1500 if value is None else value


# ---------------------------------------------------------------- compute: the agents' calls


class DesiredServer(Message):
    """One server whose guest belongs on the host, as the service has it."""

    server_id: str
    generation: int
    # "running" or "shutdown"; None while a boot or a command is under way (the host
    # then reports nothing for it: what it sees is about to change).
    power_state: Literal["running", "shutdown"] | None = None
    # The NICs the guest has (bound at boot or hot-plugged since).
    nics: list[Nic] = []


class HostState(Message):
    """Everything that belongs on one host; anything else of ours there is an orphan."""

    host: str
    servers: list[DesiredServer] = []


class PowerStateChanged(Message):
    server_id: str
    # What the hypervisor saw, or Nova's code for it.
    power_state: PowerState | int


class ServerStatus(Message):
    server_id: str
    # None when the server is gone.
    status: str | None = None


class PeerStatus(Message):
    """One service compute depends on: its ``ping`` (which replica answered), or why not."""

    ok: bool
    service: str | None = None
    host: str | None = None
    pid: int | None = None
    uptime_s: float | None = None
    request_id: str | None = None
    error: str | None = None
    message: str | None = None


class Peers(Message):
    network: PeerStatus
    volume: PeerStatus


HOST_STATE = Method(
    "host_state", HostStateRequest, HostState, doc="the servers the host should run (agents)"
)
POWER_STATE_CHANGED = Method(
    "power_state_changed",
    PowerStateChanged,
    ServerStatus,
    doc="what a host saw; a guest that shut itself down makes its server SHUTOFF (agents "
    "send it one-way; a caller that waits gets the server's status)",
)
CHECK_PEERS = Method("check_peers", Empty, Peers, doc="whether network and volume answer")
AUDIT = Method("audit", Empty, AuditReport, doc="every host against the database (operators)")

API = Contract("compute", [HOST_STATE, POWER_STATE_CHANGED, CHECK_PEERS, AUDIT])

# ---------------------------------------------------------------- compute.<host>: commands


class ImageRef(Message):
    """How the host boots the server: a disk image, or a kernel (and ramdisk)."""

    id: str
    disk_format: Literal["qcow2", "raw", "aki-ari"]
    # The image service's file, readable on the host.
    path: str
    kernel_path: str | None = None
    ramdisk_path: str | None = None
    # The image's os_command_line, for a kernel boot.
    cmdline: str | None = None
    # A kernel boot whose image has a root disk of its own (a server's snapshot, or its
    # shelved image): ``path``'s format; the server's disk is an overlay on it, not a
    # blank one. None: no such disk.
    root_format: Literal["qcow2", "raw"] | None = None


class ConfigDrive(Message):
    # OpenStack's meta_data.json and network_data.json as the guest reads them: documents
    # of the metadata API, written to the drive as they are, so free-form here.
    meta_data: dict[str, Any] = {}
    network_data: dict[str, Any] = {}
    # base64, as the user gave it
    user_data: str | None = None


class IscsiTarget(Message):
    """Where a volume is exported and how the host logs in: Cinder's iSCSI connection
    ``data`` as the host needs it (the volume service's always has CHAP; a target without
    an account is allowed)."""

    target_iqn: str
    target_portal: str
    target_lun: int = 0
    auth_username: str | None = None
    auth_password: str | None = None


class VolumeConnection(Message):
    driver_volume_type: str = "iscsi"
    data: IscsiTarget

    @classmethod
    def of(cls, info: ConnectionInfo) -> VolumeConnection:
        """The volume service's answer to ``initialize_connection``, for the host."""
        keys = set(IscsiTarget.model_fields)
        return cls(
            driver_volume_type=info.driver_volume_type,
            data=IscsiTarget.model_validate(info.data.model_dump(include=keys)),
        )


class AttachedVolume(Message):
    volume_id: str
    device: str | None = None
    connection: VolumeConnection


class ServerState(Message):
    """The whole server as its host should run it, with its generation."""

    server_id: str
    name: str = ""
    generation: int = 0
    vcpus: int
    ram_mb: int
    disk_gb: int = 0
    image: ImageRef
    nics: list[Nic] = []
    config_drive: ConfigDrive | None = None
    volumes: list[AttachedVolume] = []


class Spawn(Message):
    server: ServerState


class ServerRef(Message):
    server_id: str


class Resize(Message):
    """The server at its new flavor on its own host; ``running``: start it after."""

    server: ServerState
    running: bool = True


class FinishResize(Message):
    """Drop the copy kept by ``resize`` (confirm), or go back to it (``revert``)."""

    server_id: str
    revert: bool = False
    running: bool = True


class Snapshot(Message):
    """Copy the server's root disk to ``target``: a path in the image store this host
    writes (the staging file of the image being made)."""

    server_id: str
    target: str


class DomainState(Message):
    server_id: str
    domain: str
    power_state: PowerState


class Spawned(DomainState):
    # The newest generation the host has seen of the server.
    observed_generation: int
    # True when the server was destroyed here before: a late spawn changes nothing.
    deleted: bool = False


class Destroyed(Message):
    server_id: str
    destroyed: bool = True


class Power(Message):
    server_id: str
    action: PowerAction


class ConsoleRequest(Message):
    server_id: str
    # Only the last ``length`` lines; None: all of them.
    length: int | None = None


class ConsoleOutput(Message):
    output: str = ""


class AttachVolume(Message):
    server_id: str
    volume_id: str
    connection: VolumeConnection


class VolumeAttached(Message):
    server_id: str
    volume_id: str
    # The device the guest sees it as (``vdb``).
    device: str


class Unplugging(Message):
    """How the host asks the guest to let a device go: up to ``attempts`` requests,
    waiting ``wait_s`` seconds after each, none begun past ``until`` (epoch seconds);
    the host's own defaults for what is not given."""

    attempts: int | None = None
    wait_s: float | None = None
    until: float | None = None


class DetachVolume(Unplugging):
    server_id: str
    volume_id: str


class VolumeDetached(Message):
    server_id: str
    volume_id: str
    detached: bool = True
    # How many unplug requests it took.
    attempts: int = 1


class AttachInterface(Message):
    server_id: str
    nic: Nic


class InterfaceAttached(Message):
    server_id: str
    port_id: str
    # False when the NIC was there already.
    attached: bool


class DetachInterface(Unplugging):
    server_id: str
    nic: Nic


class InterfaceDetached(Message):
    server_id: str
    port_id: str
    detached: bool = True
    attempts: int = 1


class DomainPower(Message):
    server_id: str
    power_state: PowerState


class Capacity(Message):
    """What the host offers (physical; the scheduler applies the allocation ratios)."""

    vcpus: int
    ram_mb: int
    disk_gb: int


class Inventory(Message):
    """What the host has, for the audit: every guest of ours and its power state."""

    host: str
    domains: list[DomainPower] = []
    capacity: Capacity | None = None


SPAWN = Method("spawn", Spawn, Spawned, doc="disks, config drive, volumes, a running domain")
DESTROY = Method("destroy", ServerRef, Destroyed, doc="no domain and no disk afterwards")
POWER = Method(
    "power",
    Power,
    DomainState,
    doc="start, stop, a hard reboot, pause/unpause, suspend (managed save)/resume",
)
CONSOLE_OUTPUT = Method("console_output", ConsoleRequest, ConsoleOutput)
ATTACH_VOLUME = Method("attach_volume", AttachVolume, VolumeAttached, doc="hot-plug the disk")
DETACH_VOLUME = Method(
    "detach_volume",
    DetachVolume,
    VolumeDetached,
    doc="unplug the disk, the guest asked again while it holds it; kept for good: "
    "InternalError and the disk stays (in the definition too)",
)
ATTACH_INTERFACE = Method(
    "attach_interface", AttachInterface, InterfaceAttached, doc="hot-plug the port's NIC"
)
DETACH_INTERFACE = Method(
    "detach_interface",
    DetachInterface,
    InterfaceDetached,
    doc="unplug the NIC with the port's MAC, asked again as detach_volume; fine when gone",
)
INVENTORY = Method("inventory", Empty, Inventory, doc="what the host has (the audit)")
RESIZE = Method(
    "resize",
    Resize,
    DomainState,
    doc="stop, keep a copy of the disk and definition, grow the disk, define at the new size",
)
FINISH_RESIZE = Method(
    "finish_resize", FinishResize, DomainState, doc="confirm: drop the copy; revert: back to it"
)
REBUILD = Method(
    "rebuild", Spawn, Spawned, doc="the domain and disk made again from the (new) image"
)
SNAPSHOT = Method(
    "snapshot",
    Snapshot,
    DomainState,
    doc="the root disk and its backing chain as one qcow2 (a running guest paused meanwhile)",
)
SHELVE_OFFLOAD = Method(
    "shelve_offload", ServerRef, Destroyed, doc="domain and files gone; later spawns count"
)

AGENT = Contract(
    "compute.<host>",
    [
        SPAWN,
        DESTROY,
        POWER,
        CONSOLE_OUTPUT,
        ATTACH_VOLUME,
        DETACH_VOLUME,
        ATTACH_INTERFACE,
        DETACH_INTERFACE,
        INVENTORY,
        RESIZE,
        FINISH_RESIZE,
        REBUILD,
        SNAPSHOT,
        SHELVE_OFFLOAD,
    ],
)
