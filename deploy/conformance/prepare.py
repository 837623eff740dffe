"""Prepare a running cloud for Tempest as its operator would, then write tempest.conf.

With the admin account of a clouds.yaml entry (``--cloud``; OS_CLIENT_CONFIG_FILE names the
file): the roles Tempest's dynamic credentials assign (admin, member, reader), two flavors,
two images of the stackling-tiny guest (``make image``; two, so the list filters by image
can tell servers apart), an external network with a subnet for the test projects' routers.
Each is found by name or made, so a second run reuses them; ``--cleanup`` deletes them.
Then ``tempest.conf`` (tempest_conf.py) and ``cloud.json`` (what was found, for the report).

Runs in the conformance venv (.venv-tempest): openstacksdk from its constraints.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import openstack
from openstack.connection import Connection

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tempest_conf  # the generator beside this script

ROLES = ("admin", "member", "reader")
FLAVORS = (  # name, RAM MiB, vCPUs, disk GiB: stackling-tiny needs 64 MiB and one core
    ("conformance.tiny", 128, 1, 1),
    ("conformance.small", 192, 1, 1),
)
IMAGES = ("conformance-tiny", "conformance-tiny-alt")
PUBLIC_NETWORK = "conformance-public"


def log(text: str) -> None:
    print(f"[prepare] {text}", flush=True)


def ensure_roles(conn: Connection) -> None:
    have = {role.name for role in conn.identity.roles()}
    for name in ROLES:
        if name not in have:
            log(f"role {name}: creating")
            conn.identity.create_role(name=name)
    log(f"roles: {', '.join(ROLES)} present")


def ensure_flavors(conn: Connection) -> list[str]:
    ids = []
    for name, ram, vcpus, disk in FLAVORS:
        flavor = conn.compute.find_flavor(name, ignore_missing=True)
        if flavor is None:
            flavor = conn.compute.create_flavor(
                name=name, ram=ram, vcpus=vcpus, disk=disk, is_public=True
            )
            log(f"flavor {name}: created {flavor.id}")
        ids.append(str(flavor.id))
    return ids


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # Glance's ``checksum``
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_images(conn: Connection, disk: Path, timeout: int) -> list[str]:
    """The guest disk as two public images, uploaded again when ``make image`` changed it."""
    if not disk.is_file():
        sys.exit(f"[prepare] no guest disk {disk}: run `make image`")
    checksum = md5_of(disk)
    ids = []
    for name in IMAGES:
        image = conn.image.find_image(name, ignore_missing=True)
        if image is not None and (image.status != "active" or image.checksum != checksum):
            log(f"image {name}: {image.status}, not {disk}'s content: replacing it")
            conn.image.delete_image(image)
            image = None
        if image is None:
            image = conn.image.create_image(
                name,
                filename=str(disk),
                disk_format="qcow2",
                container_format="bare",
                visibility="public",
                wait=True,
                timeout=timeout,
            )
            log(f"image {name}: uploaded {image.id} from {disk}")
        ids.append(str(image.id))
    return ids


def ensure_public_network(conn: Connection, cidr: str) -> tuple[str, str]:
    network = conn.network.find_network(PUBLIC_NETWORK, ignore_missing=True)
    if network is None:
        network = conn.network.create_network(
            name=PUBLIC_NETWORK, is_router_external=True, is_shared=False
        )
        log(f"network {PUBLIC_NETWORK}: created {network.id}")
    if not list(conn.network.subnets(network_id=network.id)):
        conn.network.create_subnet(
            name=f"{PUBLIC_NETWORK}-subnet",
            network_id=network.id,
            ip_version=4,
            cidr=cidr,
            enable_dhcp=False,
        )
        log(f"subnet of {PUBLIC_NETWORK}: {cidr}")
    return str(network.id), PUBLIC_NETWORK


def volume_extensions(conn: Connection) -> list[str]:
    try:
        return sorted(ext.alias for ext in conn.block_storage.extensions())
    except openstack.exceptions.SDKException as error:
        log(f"volume extensions not listed ({error}): none configured")
        return []


def max_microversion(proxy: Any) -> str | None:
    """The highest microversion a service's version document advertises, e.g. "2.1"."""
    data = proxy.get_endpoint_data()
    if data is None or not data.max_microversion:
        return None
    return ".".join(str(part) for part in data.max_microversion)


def cleanup(conn: Connection) -> None:
    """Delete what the preparation made (not the roles)."""
    network = conn.network.find_network(PUBLIC_NETWORK, ignore_missing=True)
    if network is not None:
        for subnet in conn.network.subnets(network_id=network.id):
            conn.network.delete_subnet(subnet, ignore_missing=True)
        conn.network.delete_network(network, ignore_missing=True)
        log(f"network {PUBLIC_NETWORK}: deleted")
    for name in IMAGES:
        image = conn.image.find_image(name, ignore_missing=True)
        if image is not None:
            conn.image.delete_image(image, ignore_missing=True)
            log(f"image {name}: deleted")
    for name, *_ in FLAVORS:
        flavor = conn.compute.find_flavor(name, ignore_missing=True)
        if flavor is not None:
            conn.compute.delete_flavor(flavor, ignore_missing=True)
            log(f"flavor {name}: deleted")


def extra_options(path: str | None) -> dict[str, dict[str, str]]:
    """An operator's own tempest.conf options (an ini file), laid over the generated ones."""
    if not path:
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    extra = {section: dict(parser.items(section, raw=True)) for section in parser.sections()}
    if parser.defaults():
        extra["DEFAULT"] = dict(parser.defaults())
    return extra


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--cloud", required=True, help="clouds.yaml entry with admin rights")
    args.add_argument("--disk", type=Path, help="guest disk to upload (qcow2)")
    args.add_argument("--public-cidr", default="10.199.0.0/24")
    args.add_argument("--conf", type=Path, help="tempest.conf to write")
    args.add_argument("--facts", type=Path, help="cloud.json to write")
    args.add_argument("--log-dir", default=".")
    args.add_argument("--lock-path", default=".")
    args.add_argument("--timeout", type=int, default=600)
    args.add_argument("--extra-conf", help="ini file of tempest.conf options to add")
    args.add_argument("--cleanup", action="store_true", help="delete what was prepared")
    opts = args.parse_args()

    conn = openstack.connect(cloud=opts.cloud)
    if opts.cleanup:
        cleanup(conn)
        return
    ensure_roles(conn)
    flavors = ensure_flavors(conn)
    images = ensure_images(conn, opts.disk, opts.timeout)
    public_id, public_name = ensure_public_network(conn, opts.public_cidr)
    auth: dict[str, Any] = conn.config.config["auth"]
    cloud = tempest_conf.Cloud(
        auth_url=auth["auth_url"],
        region=conn.config.region_name or "RegionOne",
        admin_username=auth["username"],
        admin_password=auth["password"],
        admin_project_name=auth["project_name"],
        admin_user_domain_name=auth.get("user_domain_name") or "Default",
        admin_project_domain_name=auth.get("project_domain_name") or "Default",
        image_ref=images[0],
        image_ref_alt=images[1],
        flavor_ref=flavors[0],
        flavor_ref_alt=flavors[1],
        public_network_id=public_id,
        public_network_name=public_name,
        network_extensions=tuple(sorted(ext.alias for ext in conn.network.extensions())),
        volume_extensions=tuple(volume_extensions(conn)),
        compute_max_microversion=max_microversion(conn.compute),
        volume_max_microversion=max_microversion(conn.block_storage),
    )
    run = tempest_conf.Run(
        log_dir=opts.log_dir,
        lock_path=opts.lock_path,
        build_timeout=opts.timeout,
        extra=extra_options(opts.extra_conf),
    )
    opts.conf.parent.mkdir(parents=True, exist_ok=True)
    opts.conf.touch(mode=0o600)
    opts.conf.chmod(0o600)  # the admin password is in it
    opts.conf.write_text(tempest_conf.render(cloud, run))
    facts = {k: v for k, v in vars(cloud).items() if k != "admin_password"}
    opts.facts.write_text(json.dumps(facts, indent=2) + "\n")
    log(f"tempest.conf: {opts.conf}")


if __name__ == "__main__":
    main()
