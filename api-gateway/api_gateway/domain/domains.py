"""The one domain: ``default``, named "Default", enabled for good.

domain_matches(name="Default", enabled=True)    # True: it is listed
get_domain("default")                           # any other id: Keystone's 404
delete_domain("default")                        # 403, Keystone's answer for an enabled domain
"""

from __future__ import annotations

from common_rpc.errors import Forbidden, NotFound

from ..db.models import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME


def domain_matches(*, name: str | None = None, enabled: bool | None = None) -> bool:
    """Does the default domain pass a listing's filters?"""
    return (name is None or name == DEFAULT_DOMAIN_NAME) and enabled in (None, True)


def get_domain(domain_id: str) -> str:
    if domain_id != DEFAULT_DOMAIN_ID:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return domain_id


def delete_domain(domain_id: str) -> None:
    get_domain(domain_id)
    # The one domain is enabled for good: Keystone's answer for an enabled domain.
    raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
