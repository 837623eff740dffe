"""Shared pieces of the compute-agent and libvirt driver tests.

Every domain, secret and file a test makes carries a random prefix and is removed in
``sweep``; ``leftovers`` says what is still there (the tests assert it is nothing).

    prefix = unique_prefix()                         # "ct3k9q-"
    server = tiny_server(guest, "s1", user_data=b"echo hi", nics=[...])
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import libvirt
import pytest

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
URI = "qemu:///system"
ROOT = Path(__file__).resolve().parents[2]


def prepare_guest(tools: tuple[str, ...] = ()) -> Path:
    """Skip unless QEMU guests can run here (root, the tools, libvirtd: started when it
    does not answer); the stackling-tiny guest, built or found up to date."""
    if os.geteuid() != 0:
        pytest.skip("QEMU guests on qemu:///system need root")
    for tool in ("qemu-system-x86_64", "qemu-img", "genisoimage", *tools):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError:
        script = ROOT / "deploy/start-host-daemons.sh"
        subprocess.run(["bash", str(script)], timeout=120, check=True)
    out = Path(os.environ.get("STACKLING_GUEST_DIR", "/var/lib/stackling/guest"))
    env = os.environ | {"STACKLING_GUEST_DIR": str(out)}
    subprocess.run(["bash", str(ROOT / "deploy/guest-image.sh")], env=env, timeout=600, check=True)
    return out


def unique_prefix() -> str:
    return "ct" + "".join(secrets.choice(ALPHABET) for _ in range(4)) + "-"


def instances_dir(prefix: str) -> Path:
    """A directory QEMU (its own user) can walk into; pytest's tmp_path is 0700."""
    path = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}"))
    path.chmod(0o755)
    return path


def fake_image(directory: Path) -> dict[str, Any]:
    """A kernel+ramdisk image of junk bytes: enough for libvirt's test driver."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "k").write_bytes(b"kernel")
    (directory / "r").write_bytes(b"ramdisk")
    return {
        "id": "img-" + uuid.uuid4().hex[:8],
        "disk_format": "aki-ari",
        "path": str(directory / "k"),
        "kernel_path": str(directory / "k"),
        "ramdisk_path": str(directory / "r"),
    }


def tiny_image(guest_dir: Path) -> dict[str, Any]:
    """The stackling-tiny guest as an aki-ari image (built by deploy/guest-image.sh)."""
    return {
        "id": "stackling-tiny-" + uuid.uuid4().hex[:8],
        "disk_format": "aki-ari",
        "path": str(guest_dir / "vmlinuz"),
        "kernel_path": str(guest_dir / "vmlinuz"),
        "ramdisk_path": str(guest_dir / "initramfs.gz"),
        "cmdline": "console=ttyS0 quiet",
    }


def server(
    image: dict[str, Any],
    *,
    server_id: str | None = None,
    user_data: bytes | None = None,
    nics: list[dict[str, Any]] | None = None,
    generation: int = 1,
    disk_gb: int = 1,
) -> dict[str, Any]:
    """A ``spawn`` payload as the compute API sends it."""
    sid = server_id or str(uuid.uuid4())
    return {
        "server_id": sid,
        "name": "vm-" + sid[:8],
        "generation": generation,
        "vcpus": 1,
        "ram_mb": 128,
        "disk_gb": disk_gb,
        "image": image,
        "nics": nics or [],
        "config_drive": {
            "meta_data": {"uuid": sid, "name": "vm-" + sid[:8], "hostname": "vm-" + sid[:8]},
            "network_data": {"links": [], "networks": [], "services": []},
            "user_data": base64.b64encode(user_data).decode() if user_data else None,
        },
        "volumes": [],
    }


def owned_domains(uri: str, prefix: str) -> list[str]:
    conn = libvirt.open(uri)
    try:
        return sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix))
    finally:
        conn.close()


def owned_secrets(uri: str, prefix: str) -> list[str]:
    conn = libvirt.open(uri)
    try:
        usages = [s.usageID() or "" for s in conn.listAllSecrets(0)]
    except libvirt.libvirtError:
        return []  # the test driver has no secrets
    finally:
        conn.close()
    return sorted(u for u in usages if u.startswith(prefix))


def sweep(uri: str, prefix: str, directory: Path) -> None:
    """Remove every domain and secret with ``prefix``, and ``directory``; never raises."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        conn = None
    if conn is not None:
        for dom in conn.listAllDomains(0):
            if not dom.name().startswith(prefix):
                continue
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
        try:
            for secret in conn.listAllSecrets(0):
                if (secret.usageID() or "").startswith(prefix):
                    secret.undefine()
        except libvirt.libvirtError:
            pass
        conn.close()
    shutil.rmtree(directory, ignore_errors=True)


def leftovers(uri: str, prefix: str, directory: Path) -> dict[str, list[str]]:
    """Domains, secrets and per-server files still there (the image cache ``_base`` stays)."""
    files = (
        sorted(str(p) for p in directory.iterdir() if p.name != "_base")
        if directory.exists()
        else []
    )
    return {
        "domains": owned_domains(uri, prefix),
        "secrets": owned_secrets(uri, prefix),
        "files": files,
    }
