"""Who may call what: one rule per (service, method, path template), denied unless a rule says so.

    decision = authorize("compute", "DELETE", "/v2.1/servers/42", auth)
    decision.allowed, decision.status       # (True, 200), or (False, 403 | 404)
    policy_coverage("network", openapi)     # [("GET", "/v2.0/qos/policies")]: routes no rule covers

Paths are what the service sees (the gateway prefix stripped; image paths start at ``/v2``).
A template segment ``{name}`` matches any one segment, a final ``/**`` this path and
anything below it. ``{project_id}`` must be the caller's project (an admin may name any);
another project's answers 404, never 403. A GET rule also allows HEAD. Where several rules
match, the one with literal segments earliest wins, so ``/servers/detail`` beats ``/servers/{id}``.
``POST .../action`` routes carry the action in the body (``{"os-stop": null}``): their rule
names a role per action, and an action not listed is denied.

Roles imply each other (admin ⊃ member ⊃ reader); ``AuthContext.roles`` already holds the
implied ones, so a rule only names the least role it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .auth import AuthContext

log = logging.getLogger(__name__)

READER, MEMBER, ADMIN = "reader", "member", "admin"
ANY_METHOD = "*"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Version documents: clients read them before they have a token.
PUBLIC: dict[str, frozenset[str]] = {
    "compute": frozenset({"", "/", "/v2", "/v2/", "/v2.1", "/v2.1/"}),
    "network": frozenset({"", "/", "/v2.0", "/v2.0/"}),
    "volume": frozenset({"", "/", "/v3", "/v3/"}),
    "image": frozenset({"", "/", "/versions", "/v2", "/v2/"}),
}

# Routes every service serves for operators and probes; never reached through the gateway.
NOT_PROXIED = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})

Access = str | Mapping[str, str]  # a role, or a role per action for POST .../action
Entry = tuple[str, str, Access]  # (method, template, access)


def _crud(collection: str, *, create: str = MEMBER, change: str = MEMBER) -> list[Entry]:
    """List, show, create, update and delete of one collection (the common case)."""
    return [
        ("GET", collection, READER),
        ("POST", collection, create),
        ("GET", f"{collection}/{{id}}", READER),
        ("PUT", f"{collection}/{{id}}", change),
        ("DELETE", f"{collection}/{{id}}", change),
    ]


def _tags(*collections: str) -> list[Entry]:
    """Neutron's resource tags: readers read them, members change them (the service
    checks the resource is the caller's)."""
    return [
        entry
        for collection in collections
        for entry in (
            ("GET", f"{collection}/{{id}}/tags", READER),
            ("PUT", f"{collection}/{{id}}/tags", MEMBER),
            ("DELETE", f"{collection}/{{id}}/tags", MEMBER),
            ("GET", f"{collection}/{{id}}/tags/{{tag}}", READER),
            ("PUT", f"{collection}/{{id}}/tags/{{tag}}", MEMBER),
            ("DELETE", f"{collection}/{{id}}/tags/{{tag}}", MEMBER),
        )
    ]


def _admin_api(*prefixes: str) -> list[Entry]:
    """Management APIs: every method on the path and below is admin only."""
    return [(ANY_METHOD, f"{prefix}/**", ADMIN) for prefix in prefixes]


SERVER_ACTIONS = {
    **dict.fromkeys(
        (
            "os-start",
            "os-stop",
            "reboot",
            "rebuild",
            "resize",
            "confirmResize",
            "revertResize",
            "createImage",
            "pause",
            "unpause",
            "suspend",
            "resume",
            "lock",
            "unlock",
            "shelve",
            "unshelve",
            "changePassword",
            "addSecurityGroup",
            "removeSecurityGroup",
            "os-getConsoleOutput",
            "forceDelete",
            "restore",
        ),
        MEMBER,
    ),
    **dict.fromkeys(
        (
            "os-resetState",
            "migrate",
            "os-migrateLive",
            "evacuate",
            "shelveOffload",
            "injectNetworkInfo",
            "resetNetwork",
        ),
        ADMIN,
    ),
}

VOLUME_ACTIONS = {
    **dict.fromkeys(
        (
            "os-extend",
            "os-reserve",
            "os-unreserve",
            "os-begin_detaching",
            "os-roll_detaching",
            "os-attach",
            "os-detach",
            "os-initialize_connection",
            "os-terminate_connection",
            "os-set_bootable",
            "os-update_readonly_flag",
            "os-retype",
            "os-volume_upload_image",
        ),
        MEMBER,
    ),
    **dict.fromkeys(
        ("os-reset_status", "os-force_delete", "os-force_detach", "os-migrate_volume"), ADMIN
    ),
}

BACKUP_ACTIONS = dict.fromkeys(("os-reset_status", "os-force_delete"), ADMIN)

SNAPSHOT_ACTIONS = dict.fromkeys(
    ("os-reset_status", "os-force_delete", "os-update_snapshot_status"), ADMIN
)

FLAVOR_ACTIONS = dict.fromkeys(("addTenantAccess", "removeTenantAccess"), ADMIN)
TYPE_ACTIONS = dict.fromkeys(("addProjectAccess", "removeProjectAccess"), ADMIN)

V21 = "/v2.1"
COMPUTE: list[Entry] = [
    ("GET", f"{V21}/extensions", READER),
    ("GET", f"{V21}/extensions/{{alias}}", READER),
    *_crud(f"{V21}/servers"),
    ("GET", f"{V21}/servers/detail", READER),
    ("POST", f"{V21}/servers/{{id}}/action", SERVER_ACTIONS),
    ("GET", f"{V21}/servers/{{id}}/ips", READER),
    ("GET", f"{V21}/servers/{{id}}/ips/{{network}}", READER),
    ("GET", f"{V21}/servers/{{id}}/metadata", READER),
    ("PUT", f"{V21}/servers/{{id}}/metadata", MEMBER),
    ("POST", f"{V21}/servers/{{id}}/metadata", MEMBER),
    ("GET", f"{V21}/servers/{{id}}/metadata/{{key}}", READER),
    ("PUT", f"{V21}/servers/{{id}}/metadata/{{key}}", MEMBER),
    ("DELETE", f"{V21}/servers/{{id}}/metadata/{{key}}", MEMBER),
    ("GET", f"{V21}/servers/{{id}}/os-volume_attachments", READER),
    ("POST", f"{V21}/servers/{{id}}/os-volume_attachments", MEMBER),
    ("GET", f"{V21}/servers/{{id}}/os-volume_attachments/{{volume_id}}", READER),
    # Swapping the disk under a server is an operator's job (nova: admin only).
    ("PUT", f"{V21}/servers/{{id}}/os-volume_attachments/{{volume_id}}", ADMIN),
    ("DELETE", f"{V21}/servers/{{id}}/os-volume_attachments/{{volume_id}}", MEMBER),
    ("GET", f"{V21}/servers/{{id}}/os-interface", READER),
    ("POST", f"{V21}/servers/{{id}}/os-interface", MEMBER),
    ("GET", f"{V21}/servers/{{id}}/os-interface/{{port_id}}", READER),
    ("DELETE", f"{V21}/servers/{{id}}/os-interface/{{port_id}}", MEMBER),
    ("GET", f"{V21}/servers/{{id}}/os-instance-actions", READER),
    ("GET", f"{V21}/servers/{{id}}/os-instance-actions/{{request_id}}", READER),
    ("GET", f"{V21}/servers/{{id}}/os-security-groups", READER),
    ("GET", f"{V21}/servers/{{id}}/diagnostics", ADMIN),
    ("GET", f"{V21}/servers/{{id}}/migrations", ADMIN),
    ("GET", f"{V21}/servers/{{id}}/migrations/{{migration_id}}", ADMIN),
    *_crud(f"{V21}/flavors", create=ADMIN, change=ADMIN),
    ("GET", f"{V21}/flavors/detail", READER),
    ("POST", f"{V21}/flavors/{{id}}/action", FLAVOR_ACTIONS),
    ("GET", f"{V21}/flavors/{{id}}/os-flavor-access", ADMIN),
    ("GET", f"{V21}/flavors/{{id}}/os-extra_specs", READER),
    ("POST", f"{V21}/flavors/{{id}}/os-extra_specs", ADMIN),
    ("GET", f"{V21}/flavors/{{id}}/os-extra_specs/{{key}}", READER),
    ("PUT", f"{V21}/flavors/{{id}}/os-extra_specs/{{key}}", ADMIN),
    ("DELETE", f"{V21}/flavors/{{id}}/os-extra_specs/{{key}}", ADMIN),
    ("GET", f"{V21}/os-keypairs", READER),
    ("POST", f"{V21}/os-keypairs", MEMBER),
    ("GET", f"{V21}/os-keypairs/{{name}}", READER),
    ("DELETE", f"{V21}/os-keypairs/{{name}}", MEMBER),
    ("GET", f"{V21}/os-server-groups", READER),
    ("POST", f"{V21}/os-server-groups", MEMBER),
    ("GET", f"{V21}/os-server-groups/{{id}}", READER),
    ("DELETE", f"{V21}/os-server-groups/{{id}}", MEMBER),
    ("GET", f"{V21}/images", READER),
    ("GET", f"{V21}/images/detail", READER),
    ("GET", f"{V21}/images/{{id}}", READER),
    ("DELETE", f"{V21}/images/{{id}}", MEMBER),  # the image API checks the owner
    ("GET", f"{V21}/limits", READER),
    ("GET", f"{V21}/os-availability-zone", READER),
    ("GET", f"{V21}/os-availability-zone/detail", ADMIN),
    ("GET", f"{V21}/os-quota-sets/{{project_id}}", READER),
    ("GET", f"{V21}/os-quota-sets/{{project_id}}/detail", READER),
    ("GET", f"{V21}/os-quota-sets/{{project_id}}/defaults", READER),
    ("PUT", f"{V21}/os-quota-sets/{{project_id}}", ADMIN),
    ("DELETE", f"{V21}/os-quota-sets/{{project_id}}", ADMIN),
    ("GET", f"{V21}/os-simple-tenant-usage", ADMIN),
    ("GET", f"{V21}/os-simple-tenant-usage/{{project_id}}", READER),
    *_admin_api(
        f"{V21}/os-hypervisors",
        f"{V21}/os-services",
        f"{V21}/os-aggregates",
        f"{V21}/os-migrations",
        f"{V21}/os-hosts",
    ),
]

V20 = "/v2.0"
NETWORK: list[Entry] = [
    ("GET", f"{V20}/extensions", READER),
    ("GET", f"{V20}/extensions/{{alias}}", READER),
    *_crud(f"{V20}/networks"),
    *_crud(f"{V20}/subnets"),
    *_crud(f"{V20}/ports"),
    *_crud(f"{V20}/routers"),
    ("PUT", f"{V20}/routers/{{id}}/add_router_interface", MEMBER),
    ("PUT", f"{V20}/routers/{{id}}/remove_router_interface", MEMBER),
    ("PUT", f"{V20}/routers/{{id}}/add_extraroutes", MEMBER),
    ("PUT", f"{V20}/routers/{{id}}/remove_extraroutes", MEMBER),
    *_crud(f"{V20}/floatingips"),
    *_crud(f"{V20}/security-groups"),
    *_crud(f"{V20}/security-group-rules"),
    *_crud(f"{V20}/subnetpools"),
    *_crud(f"{V20}/address-scopes"),
    ("GET", f"{V20}/availability_zones", READER),
    ("GET", f"{V20}/quotas", ADMIN),
    ("GET", f"{V20}/quotas/{{project_id}}", READER),
    ("GET", f"{V20}/quotas/{{project_id}}/details", READER),
    ("GET", f"{V20}/quotas/{{project_id}}/default", READER),
    ("PUT", f"{V20}/quotas/{{project_id}}", ADMIN),
    ("DELETE", f"{V20}/quotas/{{project_id}}", ADMIN),
    *_tags(f"{V20}/networks", f"{V20}/subnets", f"{V20}/ports", f"{V20}/routers"),
    *_tags(f"{V20}/floatingips", f"{V20}/security-groups"),
    # Neutron lists agents to anyone: a non-admin gets an empty list, not 403.
    ("GET", f"{V20}/agents", READER),
    *_admin_api(f"{V20}/agents", f"{V20}/network-ip-availabilities"),
]

V3 = "/v3/{project_id}"
VOLUME: list[Entry] = [
    # Cinder serves these under the project too; today's volume-svc serves them under /v3.
    ("GET", "/v3/extensions", READER),
    ("GET", "/v3/extensions/{alias}", READER),
    ("GET", f"{V3}/extensions", READER),
    ("GET", f"{V3}/extensions/{{alias}}", READER),
    *_crud(f"{V3}/volumes"),
    ("GET", f"{V3}/volumes/detail", READER),
    ("GET", f"{V3}/volumes/summary", READER),
    ("POST", f"{V3}/volumes/{{id}}/action", VOLUME_ACTIONS),
    ("GET", f"{V3}/volumes/{{id}}/metadata", READER),
    ("PUT", f"{V3}/volumes/{{id}}/metadata", MEMBER),
    ("POST", f"{V3}/volumes/{{id}}/metadata", MEMBER),
    ("GET", f"{V3}/volumes/{{id}}/metadata/{{key}}", READER),
    ("PUT", f"{V3}/volumes/{{id}}/metadata/{{key}}", MEMBER),
    ("DELETE", f"{V3}/volumes/{{id}}/metadata/{{key}}", MEMBER),
    *_crud(f"{V3}/snapshots"),
    ("GET", f"{V3}/snapshots/detail", READER),
    ("GET", f"{V3}/snapshots/{{id}}/metadata", READER),
    ("PUT", f"{V3}/snapshots/{{id}}/metadata", MEMBER),
    ("POST", f"{V3}/snapshots/{{id}}/metadata", MEMBER),
    ("GET", f"{V3}/snapshots/{{id}}/metadata/{{key}}", READER),
    ("PUT", f"{V3}/snapshots/{{id}}/metadata/{{key}}", MEMBER),
    ("DELETE", f"{V3}/snapshots/{{id}}/metadata/{{key}}", MEMBER),
    # Transfers: the giver makes and deletes one; any project's member accepts with the
    # auth key (the service checks the key, as Cinder's volume:accept_transfer).
    *(
        entry
        for transfers in (f"{V3}/os-volume-transfer", f"{V3}/volume-transfers")
        for entry in (
            ("GET", transfers, READER),
            ("POST", transfers, MEMBER),
            ("GET", f"{transfers}/detail", READER),
            ("GET", f"{transfers}/{{id}}", READER),
            ("DELETE", f"{transfers}/{{id}}", MEMBER),
            ("POST", f"{transfers}/{{id}}/accept", MEMBER),
        )
    ),
    ("POST", f"{V3}/snapshots/{{id}}/action", SNAPSHOT_ACTIONS),
    *_crud(f"{V3}/types", create=ADMIN, change=ADMIN),
    ("GET", f"{V3}/types/default", READER),
    ("POST", f"{V3}/types/{{id}}/action", TYPE_ACTIONS),
    ("GET", f"{V3}/types/{{id}}/os-volume-type-access", ADMIN),
    ("GET", f"{V3}/types/{{id}}/extra_specs", READER),
    ("POST", f"{V3}/types/{{id}}/extra_specs", ADMIN),
    ("GET", f"{V3}/types/{{id}}/extra_specs/{{key}}", READER),
    ("PUT", f"{V3}/types/{{id}}/extra_specs/{{key}}", ADMIN),
    ("DELETE", f"{V3}/types/{{id}}/extra_specs/{{key}}", ADMIN),
    *_crud(f"{V3}/backups"),
    ("GET", f"{V3}/backups/detail", READER),
    ("POST", f"{V3}/backups/{{id}}/restore", MEMBER),
    ("POST", f"{V3}/backups/{{id}}/action", BACKUP_ACTIONS),
    *_crud(f"{V3}/attachments"),
    ("GET", f"{V3}/attachments/detail", READER),
    ("POST", f"{V3}/attachments/{{id}}/action", {"os-complete": MEMBER}),
    ("GET", f"{V3}/limits", READER),
    ("GET", f"{V3}/os-availability-zone", READER),
    # The quota target may be another project: the service lets only admins read those.
    ("GET", f"{V3}/os-quota-sets/{{target_project_id}}", READER),
    ("GET", f"{V3}/os-quota-sets/{{target_project_id}}/defaults", READER),
    ("PUT", f"{V3}/os-quota-sets/{{target_project_id}}", ADMIN),
    ("DELETE", f"{V3}/os-quota-sets/{{target_project_id}}", ADMIN),
    *_admin_api(f"{V3}/os-services", f"{V3}/os-hosts", f"{V3}/scheduler-stats"),
]

V2 = "/v2"
IMAGE: list[Entry] = [
    ("GET", f"{V2}/images", READER),
    ("POST", f"{V2}/images", MEMBER),
    ("GET", f"{V2}/images/{{id}}", READER),
    ("PATCH", f"{V2}/images/{{id}}", MEMBER),
    ("DELETE", f"{V2}/images/{{id}}", MEMBER),
    ("GET", f"{V2}/images/{{id}}/file", READER),
    ("PUT", f"{V2}/images/{{id}}/file", MEMBER),
    # owner or admin (Glance since Wallaby): the image API checks the owner itself
    ("POST", f"{V2}/images/{{id}}/actions/deactivate", MEMBER),
    ("POST", f"{V2}/images/{{id}}/actions/reactivate", MEMBER),
    ("PUT", f"{V2}/images/{{id}}/tags/{{tag}}", MEMBER),
    ("DELETE", f"{V2}/images/{{id}}/tags/{{tag}}", MEMBER),
    ("GET", f"{V2}/images/{{id}}/members", READER),
    ("POST", f"{V2}/images/{{id}}/members", MEMBER),
    ("GET", f"{V2}/images/{{id}}/members/{{member_id}}", READER),
    ("PUT", f"{V2}/images/{{id}}/members/{{member_id}}", MEMBER),
    ("DELETE", f"{V2}/images/{{id}}/members/{{member_id}}", MEMBER),
    ("GET", f"{V2}/schemas/**", READER),
    ("GET", f"{V2}/info/**", READER),
]

POLICY: dict[str, list[Entry]] = {
    "compute": COMPUTE,
    "network": NETWORK,
    "volume": VOLUME,
    "image": IMAGE,
}

# compute-svc serves the image API under /image (its own catalog entry, see api/proxy.py).
MOUNTED_IN: dict[str, dict[str, str]] = {"compute": {"/image": "image"}}


@dataclass(frozen=True)
class Rule:
    service: str
    method: str
    template: str
    access: Access
    # Split once: matching runs on every proxied request.
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", _segments(self.template))

    def role_for(self, action: str | None) -> str | None:
        """The least role this rule asks for ``action`` (None: the action is not allowed)."""
        if isinstance(self.access, str):
            return self.access
        return self.access.get(action) if action is not None else None

    @property
    def by_action(self) -> bool:
        return not isinstance(self.access, str)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int  # 200 allowed; 401 no token; 403 refused; 404 another project's resource
    reason: str
    rule: Rule | None = None
    # Refused until asked again with the body's action (fails closed if nobody does).
    needs_action: bool = False


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.split("/")[1:]) if path.startswith("/") else tuple(path.split("/"))


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _bind(template: tuple[str, ...], path: tuple[str, ...]) -> dict[str, str] | None:
    """The template's parameters bound to ``path``'s segments, or None when it does not match."""
    params: dict[str, str] = {}
    for i, part in enumerate(template):
        if part == "**":
            return params
        if i >= len(path):
            return None
        if _is_param(part):
            params[part[1:-1]] = path[i]
        elif part != path[i]:
            return None
    return params if len(template) == len(path) else None


def _specificity(rule: Rule) -> tuple[int, ...]:
    # Literal segments first wins; a "/**" rule is the least specific of all.
    return tuple(0 if _is_param(p) or p == "**" else 1 for p in rule.segments) + (
        (0,) if rule.segments and rule.segments[-1] == "**" else (1,)
    )


def _method_matches(rule_method: str, method: str) -> bool:
    return rule_method in (ANY_METHOD, method) or (rule_method == "GET" and method == "HEAD")


class RuleTable:
    """The rules by service, most specific first, so the first match is the one to use."""

    def __init__(self, policy: Mapping[str, Iterable[Entry]], index_size: int = 4096) -> None:
        self.rules: dict[str, list[Rule]] = {
            service: sorted(
                (Rule(service, method, template, access) for method, template, access in entries),
                key=_specificity,
                reverse=True,
            )
            for service, entries in policy.items()
        }
        # Only the rules that can match a method and a path depth: a scan of a few, not all.
        self._index: dict[tuple[str, str, int], list[Rule]] = {}
        self._index_size = index_size

    def candidates(self, service: str, method: str, depth: int) -> list[Rule]:
        key = (service, method, depth)
        found = self._index.get(key)
        if found is None:
            found = [
                rule
                for rule in self.rules.get(service, ())
                if _method_matches(rule.method, method) and _fits(rule.segments, depth)
            ]
            if len(self._index) < self._index_size:  # methods are client input: stay bounded
                self._index[key] = found
        return found


def _fits(segments: tuple[str, ...], depth: int) -> bool:
    if segments and segments[-1] == "**":
        return len(segments) - 1 <= depth
    return len(segments) == depth


RULES = RuleTable(POLICY)


def is_public(service: str, method: str, path: str) -> bool:
    """A version document, readable without a token."""
    return method in ("GET", "HEAD") and path in PUBLIC.get(service, frozenset())


def find_rule(
    service: str, method: str, path: str, rules: RuleTable = RULES
) -> tuple[Rule, dict[str, str]] | None:
    segments = _segments(path)
    for rule in rules.candidates(service, method, len(segments)):
        params = _bind(rule.segments, segments)
        if params is not None:
            return rule, params
    return None


def authorize(
    service: str,
    method: str,
    path: str,
    auth: AuthContext | None,
    action: str | None = None,
    rules: RuleTable = RULES,
) -> Decision:
    """May ``auth`` call ``method path`` of ``service``? ``action``: the body's, when asked."""
    if is_public(service, method, path):
        return Decision(True, 200, "public version document")
    if auth is None:
        return Decision(False, 401, "no token")
    found = find_rule(service, method, path, rules)
    if found is None:
        log.warning("policy: no rule for %s %s %s: denied", service, method, path)
        return Decision(False, 403, f"no policy rule for {method} {path}")
    rule, params = found
    project = params.get("project_id")
    if project is not None and project != auth.project_id and not auth.is_admin:
        # Another project's resource: 404, so its existence is not disclosed.
        return Decision(False, 404, f"project {project} is not the token's project", rule)
    if rule.by_action and action is None:
        return Decision(False, 403, "the action in the body decides", rule, needs_action=True)
    role = rule.role_for(action)
    if role is None:
        log.warning("policy: no rule for %s %s %s action %s: denied", service, method, path, action)
        return Decision(False, 403, f"no policy rule for action {action}", rule)
    if role not in auth.roles:
        log.info(
            "policy: %s %s %s needs %s; user %s has %s",
            service,
            method,
            path,
            role,
            auth.user_id,
            sorted(auth.roles),
        )
        return Decision(False, 403, f"role {role} required", rule)
    return Decision(True, 200, f"role {role}", rule)


def _covers(rule: Rule, method: str, template: tuple[str, ...]) -> bool:
    """Does ``rule`` cover every path of an API route template (``{x}`` = any segment)?"""
    if not _method_matches(rule.method, method):
        return False
    for i, part in enumerate(rule.segments):
        if part == "**":
            return True
        if i >= len(template):
            return False
        if not _is_param(part) and part != template[i]:
            return False
    return len(rule.segments) == len(template)


def service_of(backend: str, path: str) -> tuple[str, str]:
    """The policy service and path of a route a backend serves (compute's /image/... is image)."""
    for prefix, service in MOUNTED_IN.get(backend, {}).items():
        if path == prefix or path.startswith(prefix + "/"):
            return service, path[len(prefix) :]
    return backend, path


def policy_coverage(
    service: str, openapi: Mapping[str, Any], rules: RuleTable = RULES
) -> list[tuple[str, str]]:
    """The (method, path) routes of a service's OpenAPI document that no rule covers."""
    uncovered: list[tuple[str, str]] = []
    for path, item in sorted(openapi.get("paths", {}).items()):
        if path in NOT_PROXIED:
            continue
        target, rest = service_of(service, path)
        for method in (m.upper() for m in item):
            if method not in HTTP_METHODS or is_public(target, method, rest):
                continue  # not an operation ("parameters"), or a version document
            template = _segments(rest)
            if not any(_covers(rule, method, template) for rule in rules.rules.get(target, ())):
                uncovered.append((method, path))
    return uncovered
