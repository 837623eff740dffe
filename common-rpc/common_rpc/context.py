"""The request context: who asked, for which project, under which request id.

It travels in HTTP headers (from the gateway) and inside every RPC message and event,
and every log line carries it. Handlers read it with ``current_context()``.

    >>> ctx = RequestContext(project_id="p1", user_id="u1", roles=frozenset({"member"}))
    >>> with use_context(ctx):
    ...     current_context().project_id
    'p1'
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

REQUEST_ID_HEADER = "X-Request-Id"
OPENSTACK_REQUEST_ID_HEADER = "X-Openstack-Request-Id"


def new_request_id() -> str:
    """OpenStack's request id shape, so client logs and ours line up."""
    return f"req-{uuid.uuid4()}"


class RequestContext(BaseModel):
    """Identity and tracing for one request; immutable so it can be shared safely."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(default_factory=new_request_id)
    project_id: str | None = None
    user_id: str | None = None
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def to_wire(self) -> dict[str, Any]:
        """The compact form carried inside RPC messages and events."""
        return {
            "request_id": self.request_id,
            "project_id": self.project_id,
            "user_id": self.user_id,
            "roles": sorted(self.roles),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> RequestContext:
        if not data:
            return cls()
        return cls(
            request_id=data.get("request_id") or new_request_id(),
            project_id=data.get("project_id"),
            user_id=data.get("user_id"),
            roles=frozenset(data.get("roles") or ()),
        )


_ANONYMOUS = RequestContext(request_id="-")
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "stackling_request_context", default=_ANONYMOUS
)


def current_context() -> RequestContext:
    """The context of the request being served (an anonymous one outside any request)."""
    return _current.get()


def set_context(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def reset_context(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)


@contextmanager
def use_context(ctx: RequestContext) -> Iterator[RequestContext]:
    """Run a block under ``ctx`` (tests, background jobs acting for a project)."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
