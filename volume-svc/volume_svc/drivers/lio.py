"""iSCSI exports through LIO (the kernel target) with rtslib-fb.

Chosen where ``/sys/kernel/config/target`` exists. Same shape as the tgt helper: one
target per exported volume, a fileio backstore on the volume's file, TPG 1 with CHAP
required and no generated ACLs, one node ACL for the connector's initiator.

    lio = LioTarget(iqn_prefix="iqn.2010-10.org.stackling", portal="10.0.0.5:3260")
    lio.export(ExportSpec("v1", Path("/srv/v1.img"), "iqn.1993-08.org.debian:01:c1", "u", "s"))
"""

from __future__ import annotations

import threading
from typing import Any

from .base import DriverConfig, DriverError, Export, ExportSpec

LUN = 0


class LioTarget:
    name = "lio"

    def __init__(self, *, iqn_prefix: str, portal: str) -> None:
        import rtslib_fb  # rtslib-fb: apt python3-rtslib-fb or pip rtslib-fb

        self.rts: Any = rtslib_fb
        self.iqn_prefix = iqn_prefix
        self.portal = portal
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: DriverConfig) -> LioTarget:
        return cls(iqn_prefix=config.iqn_prefix, portal=config.portal)

    def target_iqn(self, volume_id: str) -> str:
        return f"{self.iqn_prefix}:volume-{volume_id}"

    def _backstore_name(self, volume_id: str) -> str:
        return f"{self.iqn_prefix.rsplit('.', 1)[-1]}-volume-{volume_id}"[:128]

    def _fabric(self) -> Any:
        return self.rts.FabricModule("iscsi")

    def export(self, spec: ExportSpec) -> Export:
        rts = self.rts
        iqn = self.target_iqn(spec.volume_id)
        ip, _, port = self.portal.rpartition(":")
        with self._lock:
            self._remove(spec.volume_id)
            # A file backstore needs its size given (a block device would not).
            store = rts.FileIOStorageObject(
                self._backstore_name(spec.volume_id), str(spec.path), size=spec.path.stat().st_size
            )
            try:
                target = rts.Target(self._fabric(), iqn)
                tpg = rts.TPG(target, 1)
                tpg.set_attribute("authentication", "1")
                tpg.set_attribute("generate_node_acls", "0")
                tpg.set_attribute("demo_mode_write_protect", "1")
                rts.NetworkPortal(tpg, ip, int(port))
                lun = rts.LUN(tpg, LUN, store)
                acl = rts.NodeACL(tpg, spec.initiator)
                acl.chap_userid = spec.chap_user
                acl.chap_password = spec.chap_secret
                rts.MappedLUN(acl, LUN, lun)
                tpg.enable = True
            except Exception as exc:
                self._remove(spec.volume_id)
                raise DriverError(f"LIO export of {spec.volume_id} failed: {exc}") from exc
        return Export(spec.volume_id, iqn, self.portal, LUN, (spec.initiator,), spec.chap_user)

    def _remove(self, volume_id: str) -> None:
        iqn = self.target_iqn(volume_id)
        for target in list(self._fabric().targets):
            if target.wwn == iqn:
                target.delete()
        for store in list(self.rts.RTSRoot().storage_objects):
            if store.name == self._backstore_name(volume_id):
                store.delete()

    def unexport(self, volume_id: str) -> None:
        with self._lock:
            self._remove(volume_id)
            if any(t.wwn == self.target_iqn(volume_id) for t in self._fabric().targets):
                raise DriverError(f"target {self.target_iqn(volume_id)} is still exported")

    def list_exports(self) -> dict[str, Export]:
        head = f"{self.iqn_prefix}:volume-"
        out: dict[str, Export] = {}
        with self._lock:
            for target in self._fabric().targets:
                if not target.wwn.startswith(head):
                    continue
                acls = [acl for tpg in target.tpgs for acl in tpg.node_acls]
                volume_id = target.wwn[len(head) :]
                out[volume_id] = Export(
                    volume_id,
                    target.wwn,
                    self.portal,
                    LUN,
                    tuple(a.node_wwn for a in acls),
                    acls[0].chap_userid if acls else "",
                )
        return out
