"""Application credentials: ``/v3/users/{user_id}/application_credentials``.

    POST   .../application_credentials  {"application_credential": {"name": "ci",
           "roles": [{"name": "member"}], "expires_at": "2030-01-01T00:00:00"}}
           -> 201 with "secret" (shown this once); the project is the token's
    GET    .../application_credentials[?name=]     GET|DELETE .../application_credentials/{id}

A user makes its own (admins too: only for themselves, as in Keystone); a user or an admin
lists, reads and deletes them. A token got with a restricted credential may not make or
delete any (403).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from common_rpc.errors import Forbidden

from ..domain import app_credentials
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access, authorize
from .schemas import ApplicationCredentialCreateBody
from .views import Links, collection, credential_view

BASE = "/v3/users/{user_id}/application_credentials"


def app_credentials_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    caller = Access(deps.tokens).caller
    links = Links(deps.settings.public_url)

    @router.post(BASE, status_code=201)
    async def create_credential(
        user_id: str, body: ApplicationCredentialCreateBody, auth: AuthContext = Depends(caller)
    ) -> dict[str, Any]:
        # Only for oneself, admins included: the credential acts with the maker's roles.
        if auth.user_id != user_id:
            raise Forbidden(
                "You are not authorized to perform the requested action: "
                "identity:create_application_credential."
            )
        credential, secret = await app_credentials.create_credential(
            deps, auth, user_id, body.application_credential
        )
        return {"application_credential": credential_view(credential, links, secret=secret)}

    @router.get(BASE)
    async def list_credentials(
        request: Request, user_id: str, auth: AuthContext = Depends(caller), name: str | None = None
    ) -> dict[str, Any]:
        authorize("identity:list_application_credentials", auth, owner=auth.user_id == user_id)
        found = await app_credentials.list_credentials(deps, user_id, name=name)
        views = [credential_view(c, links) for c in found]
        return collection("application_credentials", views, links.collection(request))

    @router.get(BASE + "/{credential_id}")
    async def show_credential(
        user_id: str, credential_id: str, auth: AuthContext = Depends(caller)
    ) -> dict[str, Any]:
        authorize("identity:get_application_credential", auth, owner=auth.user_id == user_id)
        credential = await app_credentials.get_credential(deps, user_id, credential_id)
        return {"application_credential": credential_view(credential, links)}

    @router.delete(BASE + "/{credential_id}", status_code=204)
    async def delete_credential(
        user_id: str, credential_id: str, auth: AuthContext = Depends(caller)
    ) -> Response:
        authorize("identity:delete_application_credential", auth, owner=auth.user_id == user_id)
        app_credentials.refuse_restricted(auth)
        await app_credentials.delete_credential(deps, user_id, credential_id)
        return Response(status_code=204)

    return router
