"""``/v1/events``: the caller's project's live events as Server-Sent Events, and their types.

    app.include_router(events_router(deps.events, deps.tokens))

    GET /v1/events?type=compute.server.*.end&type=volume.#      X-Auth-Token: ...
    : connected

    id: 6f1c0b9e-...
    event: compute.server.create.end
    data: {"id":"6f1c0b9e-...","event_type":"compute.server.create.end","project_id":...}

    GET /v1/events/types  -> {"event_types": [{"event_type", "version", "description", "schema"}]}

A token is needed for both (401); the stream needs a project-scoped one (403), and only
an admin may ask for ``all_projects=true``. ``type`` patterns use AMQP topic syntax
(default ``#``). The fan-out itself is ``domain.events.EventStream``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from common_rpc.contracts import all_contracts

from ..domain.auth import AuthContext, TokenValidator
from ..domain.events import EventStream
from .edge import FAULTS, UNAUTHENTICATED, fault_response, read_token

# For the gateway's IdentityMiddleware: these routes check the tenant's token themselves.
PUBLIC_PATHS = ("/v1/events", "/v1/events/*")
MAX_PATTERNS = 16
_PATTERN = re.compile(r"^(?:[A-Za-z0-9_-]+|\*|#)(?:\.(?:[A-Za-z0-9_-]+|\*|#))*$")


@cache
def event_types_document() -> dict[str, Any]:
    """Every event contract with the JSON Schema of its payload (built once)."""
    return {
        "event_types": [
            {
                "event_type": contract.event_type,
                "version": contract.version,
                "description": contract.description,
                "schema": contract.model.model_json_schema(),
            }
            for contract in all_contracts()
        ]
    }


def events_router(
    stream: EventStream, validator: TokenValidator, *, recheck_s: float = 5.0
) -> APIRouter:
    """``GET /v1/events`` (SSE) and ``GET /v1/events/types``, both needing a valid token.

    An open stream asks the validator again every ``recheck_s`` and ends once its token is
    revoked, its user disabled or deleted, or the role it was opened with is gone.
    """
    router = APIRouter(prefix="/v1/events", tags=["events"])
    fault = FAULTS["gateway"]

    async def caller(request: Request) -> AuthContext | None:
        token = read_token(request.scope["headers"])
        return await validator.validate(token) if token else None

    @router.get("", response_model=None)
    async def events(
        request: Request,
        all_projects: bool = False,
        types: Annotated[list[str] | None, Query(alias="type")] = None,
    ) -> Response:
        auth = await caller(request)
        if auth is None:
            return fault_response(fault, 401, UNAUTHENTICATED)
        if auth.project_id is None:
            return fault_response(fault, 403, "Events need a project-scoped token.")
        if all_projects and not auth.is_admin:
            return fault_response(fault, 403, "Only an admin may see all projects' events.")
        patterns = tuple(dict.fromkeys(types or ["#"]))
        bad = [p for p in patterns if len(p) > 255 or not _PATTERN.match(p)]
        if bad or len(patterns) > MAX_PATTERNS:
            message = f"type must be up to {MAX_PATTERNS} patterns like compute.server.*.end"
            return fault_response(fault, 400, message)
        if stream.full:
            return fault_response(fault, 503, "Too many event streams; retry later.")
        token = read_token(request.scope["headers"])
        project_id = auth.project_id

        async def still_allowed() -> bool:
            now = await validator.validate(token) if token else None
            return (
                now is not None
                and now.project_id == project_id
                and (now.is_admin or not all_projects)
            )

        return StreamingResponse(
            stream.frames(
                project_id,
                patterns,
                all_projects,
                still_allowed=still_allowed,
                recheck_s=recheck_s,
            ),
            media_type="text/event-stream",
            # No caching, and no buffering by a proxy in front: events must flow as they come.
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/types", response_model=None)
    async def event_types(request: Request) -> Response:
        if await caller(request) is None:
            return fault_response(fault, 401, UNAUTHENTICATED)
        return JSONResponse(event_types_document())

    return router
