"""What ``stackling audit`` asks each service: does the host match the database?

Each service answers the RPC method ``audit`` on its topic with an ``AuditReport``: what
it compared (counts) and every finding (an orphan on a host, an object the DB expects but
a host lacks, a duplicate, a resource stuck past its deadline). Zero findings is the
"nothing lost, nothing leaked" invariant of reliability.md.

Service side::

    @rpc.handler()
    async def audit(deps) -> dict:
        report = AuditReport(service="network")
        report.add("orphan", "bridge", "sl-br-1a2b", host="cn1", detail="no such network")
        return report.to_wire()

Operator side: ``stackling audit [network volume compute]`` (see ``cli.audit``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .context import RequestContext, current_context, use_context
from .errors import Forbidden
from .rpc import RpcClient

FindingKind = Literal["orphan", "missing", "duplicate", "stuck", "mismatch", "unreachable"]
SERVICES = ("network", "volume", "compute")
OPERATOR = RequestContext(user_id="stackling-audit", roles=frozenset({"admin"}))


class Finding(BaseModel):
    kind: FindingKind
    resource: str
    id: str
    host: str | None = None
    detail: str = ""


class AuditReport(BaseModel):
    service: str
    checked: dict[str, int] = Field(default_factory=dict)
    findings: list[Finding] = Field(default_factory=list)

    def add(
        self,
        kind: FindingKind,
        resource: str,
        id: str,
        *,
        host: str | None = None,
        detail: str = "",
    ) -> None:
        self.findings.append(Finding(kind=kind, resource=resource, id=id, host=host, detail=detail))

    def count(self, what: str, n: int) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def require_admin() -> None:
    """Audit reads every project's resources and every host: operators only."""
    if not current_context().is_admin:
        raise Forbidden("audit is for operators")


async def request_audit(rpc: RpcClient, service: str, *, timeout: float = 60.0) -> AuditReport:
    """Ask one service (its topic is its name) for its report."""
    with use_context(OPERATOR):
        reply = await rpc.call(service, "audit", timeout=timeout)
    return AuditReport.model_validate(reply)
