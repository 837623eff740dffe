"""tempest.conf for a prepared cloud: what the cloud is, never what would make tests skip.

Only the deployment is described here (endpoints, the admin account, the images, flavors
and external network the preparation made, the extensions the cloud advertises, timeouts
that fit guests under QEMU's TCG). Every feature flag stays at upstream Tempest's default,
i.e. a full libvirt cloud: a feature Stackling lacks fails its tests instead of skipping
them. The one exception is ``run_validation`` (stackling-tiny has no SSH server); the
tests it skips are counted as failed by results.py unless accepted-skips.txt names them.

Standard library only: tests/static/test_conformance.py imports it from the cloud's venv.
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass, field

# Formats the image API accepts (compute-svc domain/images.py); Tempest picks from these.
CONTAINER_FORMATS = ("bare", "ami", "aki", "ari", "ovf")
DISK_FORMATS = ("qcow2", "raw", "ami", "ari", "aki")


@dataclass(frozen=True)
class Cloud:
    """What the preparation found or made on the cloud under test."""

    auth_url: str  # Keystone v3, as in clouds.yaml (".../identity/v3")
    region: str
    admin_username: str
    admin_password: str
    admin_project_name: str
    admin_user_domain_name: str
    admin_project_domain_name: str
    image_ref: str
    image_ref_alt: str
    flavor_ref: str
    flavor_ref_alt: str
    public_network_id: str
    public_network_name: str
    network_extensions: tuple[str, ...]
    volume_extensions: tuple[str, ...]
    compute_max_microversion: str | None = None  # from the version documents; None: 2.1 only
    volume_max_microversion: str | None = None


@dataclass(frozen=True)
class Run:
    """Where this run keeps its files, and its patience (guests run under TCG, 2 cores)."""

    log_dir: str
    lock_path: str
    build_timeout: int = 600  # servers, volumes, images, ports: seconds to a final status
    build_interval: int = 2
    extra: dict[str, dict[str, str]] = field(default_factory=dict)  # section -> overrides


def identity_v3(auth_url: str) -> str:
    """Keystone's v3 URL from a clouds.yaml ``auth_url`` (with or without ``/v3``)."""
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def _extensions(aliases: tuple[str, ...]) -> str:
    # An empty list would mean "none" to Tempest's is_extension_enabled; say so explicitly.
    return ",".join(sorted(set(aliases))) if aliases else ""


def _max_microversion(version: str | None) -> dict[str, str]:
    return {"max_microversion": version} if version else {}


def sections(cloud: Cloud, run: Run) -> dict[str, dict[str, str]]:
    """tempest.conf as sections of options (strings, as oslo.config reads them)."""
    timeouts = {"build_timeout": str(run.build_timeout), "build_interval": str(run.build_interval)}
    conf: dict[str, dict[str, str]] = {
        "DEFAULT": {"log_dir": run.log_dir, "log_file": "tempest.log", "use_stderr": "false"},
        "oslo_concurrency": {"lock_path": run.lock_path},
        "auth": {
            "use_dynamic_credentials": "true",
            "create_isolated_networks": "true",
            "admin_username": cloud.admin_username,
            "admin_password": cloud.admin_password,
            "admin_project_name": cloud.admin_project_name,
            "admin_domain_name": cloud.admin_user_domain_name,
            "admin_user_domain_name": cloud.admin_user_domain_name,
            "admin_project_domain_name": cloud.admin_project_domain_name,
            "default_credentials_domain_name": cloud.admin_user_domain_name,
        },
        "identity": {
            "auth_version": "v3",
            "uri_v3": identity_v3(cloud.auth_url),
            "region": cloud.region,
            "v3_endpoint_type": "public",
            "admin_role": "admin",
        },
        "identity-feature-enabled": {"api_v2": "false", "api_v3": "true"},
        "service_available": {
            "nova": "true",
            "neutron": "true",
            "cinder": "true",
            "glance": "true",
            "swift": "false",
            "horizon": "false",
        },
        "compute": {
            "image_ref": cloud.image_ref,
            "image_ref_alt": cloud.image_ref_alt,
            "flavor_ref": cloud.flavor_ref,
            "flavor_ref_alt": cloud.flavor_ref_alt,
            "region": cloud.region,
            "endpoint_type": "publicURL",
            "min_compute_nodes": "1",
            **_max_microversion(cloud.compute_max_microversion),
            **timeouts,
        },
        "image": {
            "region": cloud.region,
            "container_formats": ",".join(CONTAINER_FORMATS),
            "disk_formats": ",".join(DISK_FORMATS),
            **timeouts,
        },
        "network": {
            "region": cloud.region,
            "public_network_id": cloud.public_network_id,
            "floating_network_name": cloud.public_network_name,
            **timeouts,
        },
        "network-feature-enabled": {"api_extensions": _extensions(cloud.network_extensions)},
        "image-feature-enabled": {"image_format_enforcement": "false"},
        "volume": {
            "region": cloud.region,
            "catalog_type": "block-storage",
            **_max_microversion(cloud.volume_max_microversion),
            **timeouts,
        },
        "volume-feature-enabled": {"api_extensions": _extensions(cloud.volume_extensions)},
        # stackling-tiny answers HTTP and prints its state on the console but runs no sshd.
        "validation": {"run_validation": "false"},
    }
    for section, options in run.extra.items():
        conf.setdefault(section, {}).update(options)
    return conf


def render(cloud: Cloud, run: Run) -> str:
    """The tempest.conf text."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep option case
    for section, options in sections(cloud, run).items():
        if section != "DEFAULT":
            parser.add_section(section)
        for key, value in options.items():
            parser.set(section, key, value)
    out = io.StringIO()
    out.write("# Written by deploy/conformance/prepare.py; regenerated on every run.\n")
    parser.write(out)
    return out.getvalue()
