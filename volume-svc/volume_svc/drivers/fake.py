"""FakeTarget: an in-memory target helper for API and RPC plumbing tests (no iSCSI at all)."""

from __future__ import annotations

from .base import DriverConfig, Export, ExportSpec


class FakeTarget:
    name = "fake"

    def __init__(self, *, iqn_prefix: str, portal: str) -> None:
        self.iqn_prefix = iqn_prefix
        self.portal = portal
        self.exports: dict[str, Export] = {}

    @classmethod
    def from_config(cls, config: DriverConfig) -> FakeTarget:
        return cls(iqn_prefix=config.iqn_prefix, portal=config.portal)

    def target_iqn(self, volume_id: str) -> str:
        return f"{self.iqn_prefix}:volume-{volume_id}"

    def export(self, spec: ExportSpec) -> Export:
        export = Export(
            spec.volume_id,
            self.target_iqn(spec.volume_id),
            self.portal,
            1,
            (spec.initiator,),
            spec.chap_user,
        )
        self.exports[spec.volume_id] = export
        return export

    def unexport(self, volume_id: str) -> None:
        self.exports.pop(volume_id, None)

    def list_exports(self) -> dict[str, Export]:
        return dict(self.exports)
