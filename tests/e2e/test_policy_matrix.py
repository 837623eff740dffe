"""Every route for every kind of caller, with real tokens, through the running gateway.

Routes come from each running service's own ``/openapi.json`` and from the rules of
``api_gateway.domain.policy.POLICY``, the expected answers from the rules, so a route a service
adds is walked (and must have a rule) without changing this file. Callers hold tokens
the gateway issued: its admin, a member and a reader of project A, and a member of
project B, who names project A in ``{project_id}`` (the others name their own project).

For each route and caller: never a 5xx; a caller without the rule's role gets 403 (so a
reader on a write, a member on an admin route); one with it gets neither 401 nor 403;
project B's member gets 404 on every path of project A; no token gets 401, except on
the version documents, which the gateway passes on without one.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from stack import Caller, Callers, Stack

from api_gateway.domain.auth import ROLES, effective_roles
from api_gateway.domain.policy import (
    ANY_METHOD,
    POLICY,
    PUBLIC,
    find_rule,
    is_public,
    policy_coverage,
    service_of,
)
from common_rpc import RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner

SERVICES = ("compute", "network", "volume")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Methods tried on a rule that allows any ("/v2.0/agents/**").
ANY_METHODS = ("GET", "POST", "PUT", "DELETE")
_PARAM = re.compile(r"\{([^}/]+)\}")


@pytest.fixture(scope="module")
def openapi(live_stack: Stack, signer: IdentitySigner) -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, read from it directly with a signed admin identity.

    ``/openapi.json`` is not public on a service, and the gateway never forwards it.
    """
    admin = RequestContext(project_id=uuid.uuid4().hex, roles=frozenset(ROLES))
    headers = {IDENTITY_HEADER: signer.sign(admin)}
    documents = {}
    for service in SERVICES:
        reply = httpx.get(f"{live_stack.url(service)}/openapi.json", headers=headers)
        assert reply.status_code == 200, f"{service}: {reply.status_code} {reply.text}"
        documents[service] = reply.json()
    return documents


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_route_has_a_rule(openapi: dict[str, dict[str, Any]], service: str) -> None:
    document = openapi[service]
    assert document["paths"], f"{service} lists no routes"
    assert policy_coverage(service, document) == []


@dataclass(frozen=True)
class Operation:
    """One request to try: a gateway path template, and the least role policy asks for."""

    method: str
    template: str  # as the gateway serves it: "/volume/v3/{project_id}/volumes/{id}"
    action: str | None  # the body's action, for the ".../action" rules
    least: str | None  # None: a version document, public

    def path(self, project_id: str) -> str:
        """``{project_id}`` is ``project_id``; any other id a new UUID."""
        return _PARAM.sub(
            lambda m: project_id if m.group(1) == "project_id" else str(uuid.uuid4()),
            self.template,
        )

    @property
    def in_project(self) -> bool:
        return "{project_id}" in self.template

    @property
    def body(self) -> Any:
        if self.method not in ("POST", "PUT", "PATCH"):
            return None
        return {self.action: None} if self.action else {}

    def __str__(self) -> str:
        action = f" [{self.action}]" if self.action else ""
        return f"{self.method} {self.template}{action} (needs {self.least or 'nothing'})"


def _by_rule(method: str, template: str, target: str, rest: str) -> Iterator[Operation]:
    if is_public(target, method, rest):
        yield Operation(method, template, None, None)
        return
    found = find_rule(target, method, rest)
    if found is None:
        return  # test_every_service_route_has_a_rule names it
    access = found[0].access
    if isinstance(access, str):
        yield Operation(method, template, None, access)
    else:
        for action, role in access.items():
            yield Operation(method, template, action, role)


def served_operations(openapi: dict[str, dict[str, Any]]) -> list[Operation]:
    """What the services serve today, from their OpenAPI documents."""
    found: list[Operation] = []
    for service, document in openapi.items():
        for template, item in document["paths"].items():
            target, rest = service_of(service, template)
            # compute-svc's /image/... is the gateway's /image/...; the rest gets a prefix.
            public = template if target != service else f"/{service}{template}"
            for method in (m.upper() for m in item if m.upper() in METHODS):
                found.extend(_by_rule(method, public, target, rest))
    return found


def policy_operations() -> list[Operation]:
    """Every rule of the table, whether or not a service serves its route yet."""
    found: list[Operation] = []
    for service, entries in POLICY.items():
        prefix = f"/{service}"
        for method, template, _access in entries:
            rest = template.removesuffix("/**")
            for each in ANY_METHODS if method == ANY_METHOD else (method,):
                found.extend(_by_rule(each, prefix + rest, service, rest))
    return found


def expected(op: Operation, caller: Caller, other_project: bool) -> int | None:
    """The status ``caller`` must get; None: allowed (neither 401 nor 403)."""
    if other_project and op.in_project:
        return 404
    if op.least is None or op.least in effective_roles({caller.role}):
        return None
    return 403


def walk(
    gateway: str, operations: Iterable[Operation], callers: Callers
) -> tuple[list[str], Counter[tuple[str, int | None]]]:
    """Each operation as each caller and without a token: what went wrong, what was checked."""
    wrong: list[str] = []
    checked: Counter[tuple[str, int | None]] = Counter()
    with httpx.Client(base_url=gateway, timeout=10) as http:
        for op in operations:
            for name, caller in callers.all().items():
                other_project = caller is callers.member_b
                project = callers.project_a if other_project else caller.project_id
                reply = http.request(
                    op.method, op.path(project), json=op.body, headers=caller.headers
                )
                want = expected(op, caller, other_project)
                checked[name, want] += 1
                status = reply.status_code
                ok = status not in (401, 403) if want is None else status == want
                if status >= 500 or not ok:
                    wrong.append(f"{op} as {name}: {status}, expected {want or 'allowed'}")
            reply = http.request(op.method, op.path(callers.project_a), json=op.body)
            status = reply.status_code
            # The gateway's own 401 carries its challenge; a service's would not.
            refused = status == 401 and "www-authenticate" in reply.headers
            if status >= 500 or (op.least is not None and not refused):
                wrong.append(f"{op} without a token: {status}, expected the gateway's 401")
    return wrong, checked


def test_every_served_route_for_every_caller(
    live_stack: Stack, callers: Callers, openapi: dict[str, dict[str, Any]]
) -> None:
    operations = served_operations(openapi)
    assert operations
    wrong, _checked = walk(live_stack.url("gateway"), operations, callers)
    assert not wrong, "\n".join(wrong)


def test_every_rule_of_the_table_for_every_caller(live_stack: Stack, callers: Callers) -> None:
    """The gateway decides before forwarding, so rules of routes not served yet are shown too."""
    wrong, checked = walk(live_stack.url("gateway"), policy_operations(), callers)
    assert not wrong, "\n".join(wrong)
    # The refusals the matrix is about did happen, not just the allowed calls.
    assert checked["reader_a", 403] and checked["member_a", 403] and checked["member_b", 404]
    assert checked["admin", None] and not checked["admin", 403]


def test_version_documents_pass_the_gateway_without_a_token(live_stack: Stack) -> None:
    """The gateway does not refuse them (its own 401 carries a ``WWW-Authenticate`` challenge)."""
    with httpx.Client(base_url=live_stack.url("gateway"), timeout=10) as http:
        for service in (*SERVICES, "image"):
            for rest in sorted(PUBLIC[service]):
                reply = http.get(f"/{service}{rest}")
                assert reply.status_code < 500, (service, rest, reply.status_code)
                assert "www-authenticate" not in reply.headers, (service, rest, reply.text)
