"""Each service alone from docker-compose.yml, used with the ``openstack`` CLI.

One compose project for the module, run in three shapes one after another (the gateway's
upstreams, and so its catalog, from ``deploy/compose/<shape>.env``):

- ``volume``: ``up gateway volume-api volume-agent`` runs those and the broker and the
  database only; the catalog offers identity and block storage alone; ``openstack
  volume create/list/delete`` work. Then volume-api's image is rebuilt with one more
  migration and rolled out with ``docker-compose up -d volume-api``: it migrates its own
  database on start and the volume made before is still there.
- ``network``: the same with network-api and network-agent (network create/list/delete).
- ``compute``: compute-api and compute-agent with networking: the catalog offers compute,
  image and network, not block storage; the CLI lists flavors and servers, and the
  compute host reports itself up.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cloud import wait_until
from compose import Project, compose_project
from stack import IdentityAdmin
from tenant import OPENSTACK, Cli

INFRA = {"rabbitmq", "postgres"}
IDENTITY = {"identity"}
PROBE_TABLE = "compose_upgrade_probe"
MIGRATION = '''"""A table of the compose upgrade test's own: the image rolled out is this one.

Revision ID: {revision}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("{table}")
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield from compose_project(tmp_path_factory)


class Member:
    """A fresh project's member of the running shape, and the ``openstack`` CLI as it."""

    def __init__(self, project: Project, directory: Path, name: str) -> None:
        identity = IdentityAdmin(project.url("gateway"), project.admin_password)
        self.project_name = f"{name}-{project.lab.prefix}"
        try:
            project_id = identity.create_project(self.project_name)
            self.caller = identity.add_user(f"{name}-member", project_id, "member")
        finally:
            identity.close()
        self.project = project
        self.cli = Cli(SimpleNamespace(caller=self.caller, stack=project), directory)  # type: ignore[arg-type]

    def catalog(self) -> set[str]:
        return self.project.catalog_types(self.caller.name, self.caller.password, self.project_name)

    def run(self, *args: str) -> Any:
        return self.cli.run(*args)

    def quiet(self, *args: str) -> None:
        """A command that prints nothing (``volume delete``)."""
        done = subprocess.run(
            [str(OPENSTACK), *args], env=self.cli.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr[-2000:]}"


def shape(project: Project, name: str, *services: str) -> None:
    """Only ``services`` (with the broker and the database) run, in the shape ``name``."""
    project.shape = name
    running = project.running() - INFRA
    extra = running - set(services)
    if extra:
        project.compose("rm", "-s", "-f", *sorted(extra))
    project.up(*services)
    assert project.running() == INFRA | set(services)


def volume_status(member: Member, volume_id: str, wanted: str) -> bool:
    status = member.run("volume", "show", volume_id)["status"]
    assert status not in ("error", "error_deleting"), status
    return bool(status == wanted)


def test_volume_alone_serves_the_cli_and_a_rebuilt_image_migrates_its_database(
    project: Project, tmp_path: Path
) -> None:
    shape(project, "volume", "gateway", "volume-api", "volume-agent")
    member = Member(project, tmp_path, "vol")
    assert member.catalog() == IDENTITY | {"block-storage", "volumev3"}

    made = member.run("volume", "create", "--size", "1", "alone")
    wait_until("volume available", lambda: volume_status(member, made["id"], "available"), 90)
    kept = member.run("volume", "create", "--size", "1", "kept")
    wait_until("volume available", lambda: volume_status(member, kept["id"], "available"), 90)
    listed = {(v["ID"], v["Name"]) for v in member.run("volume", "list")}
    assert listed == {(made["id"], "alone"), (kept["id"], "kept")}, listed
    member.quiet("volume", "delete", made["id"])
    wait_until("volume deleted", lambda: len(member.run("volume", "list")) == 1, 90)

    # A new image with one more migration, rolled out: it migrates its database on start.
    tag = f"upgrade-{project.lab.prefix}"
    revision = rebuilt_with_migration("stackling/volume-api:latest", tag, "volume_svc")
    try:
        assert revision not in heads_of(project, "stackling_volume")
        project.compose("up", "-d", "--no-deps", "volume-api", STACKLING_IMAGE_TAG=tag)
        project.wait_healthy(["volume-api"])
        image = subprocess.run(
            ["docker", "inspect", "-f", "{{.Config.Image}}", project.containers("volume-api")[0]],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()  # fmt: skip
        assert image == f"stackling/volume-api:{tag}"
        assert revision in heads_of(project, "stackling_volume")
        assert project.psql("stackling_volume", f"SELECT count(*) FROM {PROBE_TABLE}") == "0"
        assert [(v["ID"], v["Status"]) for v in member.run("volume", "list")] == [
            (kept["id"], "available")
        ]
        member.quiet("volume", "delete", kept["id"])
        wait_until("volume deleted", lambda: member.run("volume", "list") == [], 90)
        # Gone before the image: nothing else of the project runs it.
        project.compose("rm", "-s", "-f", "volume-api")
    finally:
        subprocess.run(["docker", "rmi", "-f", f"stackling/volume-api:{tag}"],
                       capture_output=True, timeout=120)  # fmt: skip


def test_network_alone_serves_the_cli(project: Project, tmp_path: Path) -> None:
    shape(project, "network", "gateway", "network-api", "network-agent")
    member = Member(project, tmp_path, "net")
    assert member.catalog() == IDENTITY | {"network"}
    net = member.run("network", "create", "alone")
    subnet = member.run("subnet", "create", "--network", net["id"],
                        "--subnet-range", "10.83.0.0/24", "alone-subnet")  # fmt: skip
    assert subnet["network_id"] == net["id"], subnet
    assert [n["ID"] for n in member.run("network", "list")] == [net["id"]]
    member.quiet("network", "delete", net["id"])
    assert member.run("network", "list") == []


def test_compute_with_network_serves_the_cli(project: Project, tmp_path: Path) -> None:
    shape(project, "compute", "gateway", "compute-api", "compute-agent",
          "network-api", "network-agent")  # fmt: skip
    member = Member(project, tmp_path, "cmp")
    assert member.catalog() == IDENTITY | {"compute", "image", "network"}
    assert member.run("server", "list") == []
    assert member.run("image", "list") == []
    admin = Cli(
        SimpleNamespace(caller=admin_caller(project), stack=project),  # type: ignore[arg-type]
        Path(tempfile.mkdtemp(dir=tmp_path)),
    )

    def host_up() -> bool:
        rows = admin.run("hypervisor", "list")
        return any(r["Hypervisor Hostname"] == project.lab.host and r["State"] == "up"
                   for r in rows)  # fmt: skip

    wait_until("the compute host up", host_up, 60)
    flavors = admin.run("flavor", "create", "--ram", "128", "--vcpus", "1", "--disk", "1",
                        f"alone-{project.lab.prefix}")  # fmt: skip
    try:
        names = {f["Name"] for f in member.run("flavor", "list")}
        assert f"alone-{project.lab.prefix}" in names, names
    finally:
        done = subprocess.run([str(OPENSTACK), "flavor", "delete", flavors["id"]],
                              env=admin.env, capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr


def heads_of(project: Project, database: str) -> set[str]:
    """The database's migration heads (the chassis' branch and the service's)."""
    return set(project.psql(database, "SELECT version_num FROM alembic_version").split())


def admin_caller(project: Project) -> Any:
    identity = IdentityAdmin(project.url("gateway"), project.admin_password)
    try:
        return identity.admin
    finally:
        identity.close()


def rebuilt_with_migration(image: str, tag: str, package: str) -> str:
    """``image`` with one more migration on its head, tagged ``tag``; the new revision."""
    revision = f"compose_probe_{tag.replace('-', '_')}"
    with tempfile.TemporaryDirectory() as context:
        container = subprocess.run(["docker", "create", image], capture_output=True,
                                   text=True, timeout=60, check=True).stdout.strip()  # fmt: skip
        try:
            found = subprocess.run(
                ["docker", "run", "--rm", "--entrypoint", "find", image, "/opt/stackling",
                 "-type", "d", "-path", f"*/{package}/*migrations/versions"],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout.split()  # fmt: skip
            assert len(found) == 1, found
            versions = found[0]
            subprocess.run(["docker", "cp", f"{container}:{versions}", f"{context}/versions"],
                           capture_output=True, timeout=60, check=True)  # fmt: skip
        finally:
            subprocess.run(["docker", "rm", container], capture_output=True, timeout=60)
        revisions, downs = set(), set()
        for path in Path(context, "versions").glob("*.py"):
            text = path.read_text()
            if m := re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M):
                revisions.add(m[1])
            if m := re.search(r'^down_revision\s*=\s*"([^"]+)"', text, re.M):
                downs.add(m[1])
        heads = revisions - downs
        assert len(heads) == 1, heads
        Path(context, f"{revision}.py").write_text(
            MIGRATION.format(revision=revision, down=heads.pop(), table=PROBE_TABLE)
        )
        Path(context, "Dockerfile").write_text(
            f"FROM {image}\nCOPY {revision}.py {versions}/{revision}.py\n"
        )
        subprocess.run(
            ["docker", "build", "-q", "-t", f"{image.split(':')[0]}:{tag}", context],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
    return revision
