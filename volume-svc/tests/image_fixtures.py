"""FakeImageApi: a stand-in for compute-svc's Image v2 API over real HTTP, for volume tests.

It answers the requests volume-svc makes (an image's record, a list by name, its file;
for an upload a new image, its file's PUT and its delete) in Glance's shapes, and checks
each carries a valid gateway-signed identity with the real verifier: a private image is
another project's 404, a bad identity a 401. It records who asked for what, so a test
sees the volume host read and write the bytes as the caller.

    fake = FakeImageApi(public_key_path)
    image = fake.add(path_to_qcow2, "qcow2", owner="p1")
    with fake.serving():
        ... VolumeSettings(image_url=fake.url) ...
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from common_rpc.chassis.identity import IDENTITY_HEADER, IdentityVerifier
from common_rpc.errors import Unauthorized


@dataclass
class FakeImage:
    id: str
    path: Path
    disk_format: str
    owner: str
    name: str
    status: str = "active"
    visibility: str = "private"
    min_disk: int = 0
    checksum: str | None = None
    size: int | None = None

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "status": self.status,
            "disk_format": self.disk_format, "container_format": "bare",
            "visibility": self.visibility, "owner": self.owner, "size": self.size,
            "virtual_size": None, "min_disk": self.min_disk, "min_ram": 0,
            "checksum": self.checksum, "protected": False, "tags": [],
            "self": f"/v2/images/{self.id}", "file": f"/v2/images/{self.id}/file",
        }  # fmt: skip


@dataclass
class FakeImageApi:
    public_key: Path
    images: dict[str, FakeImage] = field(default_factory=dict)
    # (method path, project) of every request that carried a valid identity
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    # Answer the file with this status instead (an image API failing mid-create).
    file_status: int | None = None
    # Answer an upload (PUT of a file) with this status instead.
    put_status: int | None = None
    # Where uploaded files go.
    upload_dir: Path | None = None
    url: str = ""

    def add(self, path: Path, disk_format: str, *, owner: str, **attrs: Any) -> FakeImage:
        data = path.read_bytes()
        image = FakeImage(
            id=str(uuid.uuid4()), path=path, disk_format=disk_format, owner=owner,
            name=attrs.pop("name", path.name), checksum=hashlib.md5(data).hexdigest(),
            size=len(data),
        )  # fmt: skip
        for key, value in attrs.items():
            setattr(image, key, value)
        self.images[image.id] = image
        return image

    def _visible(self, image: FakeImage, project: str | None) -> bool:
        return image.visibility == "public" or image.owner == project

    @contextmanager
    def serving(self) -> Iterator[FakeImageApi]:
        verifier = IdentityVerifier.from_file(self.public_key)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _caller(self) -> Any:
                try:
                    ctx = verifier.verify(self.headers.get(IDENTITY_HEADER) or "")
                except Unauthorized:
                    self._send(401, b'{"error": "unauthorized"}')
                    return None
                fake.seen.append((f"{self.command} {urlsplit(self.path).path}", ctx.project_id))
                return ctx

            def _mine(self, ctx: Any) -> FakeImage | None:
                parts = urlsplit(self.path).path.removeprefix("/image/v2/images/").split("/")
                image = fake.images.get(parts[0])
                if image is None or image.owner != ctx.project_id:
                    self._send(404, b'{"message": "not found"}')
                    return None
                return image

            def do_POST(self) -> None:
                ctx = self._caller()
                if ctx is None:
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert fake.upload_dir is not None
                image = FakeImage(
                    id=str(uuid.uuid4()), path=fake.upload_dir / f"{uuid.uuid4()}.img",
                    disk_format=body["disk_format"], owner=ctx.project_id, name=body["name"],
                    status="queued", visibility=body.get("visibility", "private"),
                )  # fmt: skip
                fake.images[image.id] = image
                self._send(201, json.dumps(image.record()).encode())

            def do_PUT(self) -> None:
                ctx = self._caller()
                image = self._mine(ctx) if ctx is not None else None
                if image is None:
                    return
                length = int(self.headers["Content-Length"])
                data = self.rfile.read(length)
                if fake.put_status is not None:
                    self._send(fake.put_status, b"")
                    return
                image.path.write_bytes(data)
                image.size, image.status = len(data), "active"
                image.checksum = hashlib.md5(data).hexdigest()
                self._send(204, b"")

            def do_DELETE(self) -> None:
                ctx = self._caller()
                image = self._mine(ctx) if ctx is not None else None
                if image is not None:
                    del fake.images[image.id]
                    image.path.unlink(missing_ok=True)
                    self._send(204, b"")

            def do_GET(self) -> None:
                ctx = self._caller()
                if ctx is None:
                    return
                url = urlsplit(self.path)
                parts = url.path.removeprefix("/image/v2/images").strip("/").split("/")
                if parts == [""]:
                    name = parse_qs(url.query).get("name", [None])[0]
                    found = [
                        i.record() for i in fake.images.values()
                        if i.name == name and fake._visible(i, ctx.project_id)
                    ]  # fmt: skip
                    self._send(200, json.dumps({"images": found}).encode())
                    return
                image = fake.images.get(parts[0])
                if image is None or not fake._visible(image, ctx.project_id):
                    self._send(404, b'{"message": "not found"}')
                elif parts[1:] == []:
                    self._send(200, json.dumps(image.record()).encode())
                elif parts[1:] == ["file"] and fake.file_status is not None:
                    self._send(fake.file_status, b"")
                elif parts[1:] == ["file"]:
                    self._send(200, image.path.read_bytes(), "application/octet-stream")
                else:
                    self._send(404, b"{}")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/image"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def qcow2_with_pattern(path: Path, size: str = "64M", pattern: int = 0xC3) -> Path:
    """A real qcow2 image holding one MiB of ``pattern`` at offset 0 (qemu-img, qemu-io)."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern:#x} 0 1M", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path
