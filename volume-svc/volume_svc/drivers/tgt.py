"""iSCSI exports through tgt (the userspace target), driven by ``tgtadm`` argument lists.

One target per exported volume: ``<iqn_prefix>:volume-<id>``, LUN 1 backed by the
volume's file, an ACL naming only the connector's initiator, and an incoming CHAP
account of its own. tgtd keeps nothing across a restart; volume-agent's reconcile puts
back what the database expects.

    tgt = TgtTarget(iqn_prefix="iqn.2010-10.org.stackling", portal="127.0.0.1:3260")
    tgt.export(ExportSpec("v1", Path("/srv/v1.img"), "iqn.1993-08.org.debian:01:c1", "u", "s"))
    tgt.unexport("v1")      # raises DriverError if the target is still there afterwards
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from common_rpc.chassis import commands

from .base import CommandError, DriverConfig, DriverError, Export, ExportSpec

LUN = 1
_TARGET = re.compile(r"^Target (\d+): (\S+)$")


@dataclass
class _Shown:
    tid: int
    iqn: str
    backing: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    acl: list[str] = field(default_factory=list)


def parse_show(text: str) -> list[_Shown]:
    """The targets in ``tgtadm --mode target --op show`` output."""
    targets: list[_Shown] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        match = _TARGET.match(raw)
        if match:
            targets.append(_Shown(int(match.group(1)), match.group(2)))
            section = ""
            continue
        if not targets or not line:
            continue
        if line.endswith(":") and not raw.startswith(" " * 8):
            section = line[:-1]
        elif line.startswith("Backing store path:"):
            path = line.split(":", 1)[1].strip()
            if path and path != "None":
                targets[-1].backing.append(path)
        elif section == "Account information":
            targets[-1].accounts.append(line.split()[0])
        elif section == "ACL information":
            targets[-1].acl.append(line)
    return targets


class TgtTarget:
    name = "tgt"

    def __init__(self, *, iqn_prefix: str, portal: str, control_port: int = 0) -> None:
        self.iqn_prefix = iqn_prefix
        self.portal = portal
        self.control_port = control_port
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: DriverConfig) -> TgtTarget:
        return cls(
            iqn_prefix=config.iqn_prefix, portal=config.portal, control_port=config.tgt_control_port
        )

    def _adm(self, *args: str, timeout: float = 15.0) -> str:
        base = ["tgtadm"]
        if self.control_port:
            base += ["-C", str(self.control_port)]
        # The CHAP secret after --password never reaches an error or a log line.
        argv = [*base, "--lld", "iscsi", *args]
        return commands.run(argv, timeout=timeout, secret_flags={"--password"}, error=CommandError)

    def target_iqn(self, volume_id: str) -> str:
        return f"{self.iqn_prefix}:volume-{volume_id}"

    def _owned_head(self) -> str:
        return f"{self.iqn_prefix}:volume-"

    def _show(self) -> list[_Shown]:
        return parse_show(self._adm("--mode", "target", "--op", "show"))

    def _export_of(self, shown: _Shown) -> Export:
        return Export(
            volume_id=shown.iqn[len(self._owned_head()) :],
            target_iqn=shown.iqn,
            portal=self.portal,
            lun=LUN,
            initiators=tuple(shown.acl),
            chap_user=shown.accounts[0] if shown.accounts else "",
        )

    def export(self, spec: ExportSpec) -> Export:
        """Make the target exactly ``spec``: an existing one that differs is rebuilt."""
        iqn = self.target_iqn(spec.volume_id)
        with self._lock:
            targets = self._show()
            for shown in targets:
                if shown.iqn != iqn:
                    continue
                if (
                    shown.acl == [spec.initiator]
                    and shown.accounts == [spec.chap_user]
                    and shown.backing == [str(spec.path)]
                ):
                    return self._export_of(shown)
                self._delete(shown)
                targets = self._show()
            tid = self._new_target(iqn, targets)
            try:
                # Closed until the ACL is set: tgt admits nobody to a target without one.
                self._account(spec, tid)
                self._adm(
                    "--mode", "target", "--op", "bind", "--tid", str(tid),
                    "--initiator-name", spec.initiator,
                )  # fmt: skip
                self._adm(
                    "--mode", "logicalunit", "--op", "new", "--tid", str(tid),
                    "--lun", str(LUN), "--backing-store", str(spec.path),
                )  # fmt: skip
            except DriverError:
                self._delete(_Shown(tid, iqn, accounts=[spec.chap_user]))
                raise
        return Export(spec.volume_id, iqn, self.portal, LUN, (spec.initiator,), spec.chap_user)

    def _new_target(self, iqn: str, targets: list[_Shown]) -> int:
        """Create the target under the next free tid; another tgtadm user may take one first."""
        for _ in range(5):
            tid = max((t.tid for t in targets), default=0) + 1
            try:
                self._adm("--mode", "target", "--op", "new", "--tid", str(tid), "-T", iqn)
                return tid
            except CommandError as exc:
                if "exist" not in exc.stderr:
                    raise
                targets = self._show()
        raise DriverError(f"no free target id for {iqn}")

    def _account(self, spec: ExportSpec, tid: int) -> None:
        self._drop_account(spec.chap_user)
        self._adm(
            "--mode", "account", "--op", "new",
            "--user", spec.chap_user, "--password", spec.chap_secret,
        )  # fmt: skip
        self._adm("--mode", "account", "--op", "bind", "--tid", str(tid), "--user", spec.chap_user)

    def _drop_account(self, user: str) -> None:
        try:
            self._adm("--mode", "account", "--op", "delete", "--user", user)
        except CommandError:
            pass  # not there: nothing to drop

    def _delete(self, shown: _Shown) -> None:
        try:
            self._adm("--mode", "target", "--op", "delete", "--force", "--tid", str(shown.tid))
        except CommandError as exc:
            if "can't find the target" not in exc.stderr:
                raise
        for user in shown.accounts:
            self._drop_account(user)

    def unexport(self, volume_id: str) -> None:
        """Remove the volume's target and account, then check the target is really gone."""
        iqn = self.target_iqn(volume_id)
        with self._lock:
            for shown in self._show():
                if shown.iqn == iqn:
                    self._delete(shown)
            if any(t.iqn == iqn for t in self._show()):
                raise DriverError(f"target {iqn} is still exported after its removal")

    def list_exports(self) -> dict[str, Export]:
        """This helper's targets (by volume id); other prefixes' targets are not ours."""
        head = self._owned_head()
        with self._lock:
            shown = [t for t in self._show() if t.iqn.startswith(head)]
        return {e.volume_id: e for e in map(self._export_of, shown)}
