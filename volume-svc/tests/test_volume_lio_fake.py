"""LioTarget's logic against a fake rtslib (LIO needs configfs, which this host lacks).

The fake keeps rtslib-fb's object model just far enough to check what the helper asks
for: one target per volume, CHAP on, no generated ACLs, one ACL for the initiator.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from volume_svc.drivers.base import ExportSpec
from volume_svc.drivers.lio import LioTarget


class FakeRtslib:
    def __init__(self) -> None:
        self.targets: list[Any] = []
        self.stores: list[Any] = []
        fake = self

        class Store:
            def __init__(self, name: str, dev: str, size: int) -> None:
                self.name, self.dev, self.size = name, dev, size
                fake.stores.append(self)

            def delete(self) -> None:
                fake.stores.remove(self)

        class Target:
            def __init__(self, _fabric: Any, wwn: str) -> None:
                self.wwn, self.tpgs = wwn, []
                fake.targets.append(self)

            def delete(self) -> None:
                fake.targets.remove(self)

        class TPG:
            def __init__(self, target: Any, tag: int) -> None:
                self.tag, self.attributes, self.node_acls = tag, {}, []
                self.enable, self.portals, self.luns = False, [], []
                target.tpgs.append(self)

            def set_attribute(self, key: str, value: str) -> None:
                self.attributes[key] = value

        class NodeACL:
            def __init__(self, tpg: Any, node_wwn: str) -> None:
                self.node_wwn, self.chap_userid, self.chap_password = node_wwn, "", ""
                self.mapped: list[int] = []
                tpg.node_acls.append(self)

        self.FileIOStorageObject = Store
        self.Target = Target
        self.TPG = TPG
        self.NodeACL = NodeACL
        self.NetworkPortal = lambda tpg, ip, port: tpg.portals.append((ip, port))
        self.LUN = lambda tpg, lun, store: tpg.luns.append((lun, store)) or lun
        self.MappedLUN = lambda acl, lun, tpg_lun: acl.mapped.append(lun)
        self.FabricModule = lambda name: SimpleNamespace(targets=list(fake.targets))
        self.RTSRoot = lambda: SimpleNamespace(storage_objects=list(fake.stores))


def _lio(fake: FakeRtslib) -> LioTarget:
    lio = LioTarget.__new__(LioTarget)
    lio.rts, lio.iqn_prefix, lio.portal = fake, "iqn.2010-10.org.stackling", "10.0.0.5:3260"
    lio._lock = threading.Lock()
    return lio


def test_lio_export_is_one_chap_target_for_one_initiator(tmp_path: Path) -> None:
    fake = FakeRtslib()
    lio = _lio(fake)
    path = tmp_path / "v1.img"
    path.write_bytes(b"\0" * 4096)
    spec = ExportSpec("v1", path, "iqn.1993-08.org.debian:01:c1", "vol-v1", "s" * 16)
    export = lio.export(spec)
    assert export.target_iqn == "iqn.2010-10.org.stackling:volume-v1" and export.lun == 0
    (target,) = fake.targets
    (tpg,) = target.tpgs
    assert tpg.enable and tpg.portals == [("10.0.0.5", 3260)]
    assert tpg.attributes["authentication"] == "1"
    assert tpg.attributes["generate_node_acls"] == "0"
    (acl,) = tpg.node_acls
    assert (acl.node_wwn, acl.chap_userid, acl.chap_password) == (
        "iqn.1993-08.org.debian:01:c1", "vol-v1", "s" * 16,
    )  # fmt: skip
    assert fake.stores[0].size == 4096
    assert lio.list_exports()["v1"].initiators == ("iqn.1993-08.org.debian:01:c1",)
    lio.export(spec)  # repeating an export rebuilds it, never doubles it
    assert len(fake.targets) == 1 and len(fake.stores) == 1
    lio.unexport("v1")
    assert fake.targets == [] and fake.stores == [] and lio.list_exports() == {}
