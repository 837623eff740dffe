"""``/v2.0/security-groups`` and ``/v2.0/security-group-rules`` (rules are not updatable)."""

from __future__ import annotations

from typing import Any

from ..db.models import SecurityGroupRule
from ..domain import push, security_groups
from ..wiring import Deps
from .resources import crud_router


def _rule_view(rule: SecurityGroupRule, _ctx: Any) -> dict[str, Any]:
    return security_groups.rule_view(rule)


async def _rules_changed(deps: Deps, _row: Any, info: dict[str, Any]) -> None:
    """A rule came or went: the group's bound ports are re-wired on their hosts now."""
    await push.rules_changed(deps, info.get(security_groups.RULES_CHANGED_KEY, set()))


groups = crud_router(
    "security_groups",
    "security_group",
    security_groups,
    path="security-groups",
    create=lambda call, body: security_groups.create(call.session, call.ctx, call.settings, body),
    reads_write=True,
    tagged=True,
)
rules = crud_router(
    "security_group_rules",
    "security_group_rule",
    security_groups,
    path="security-group-rules",
    create=lambda call, body: security_groups.create_rule(
        call.session, call.ctx, call.settings, body
    ),
    view=_rule_view,
    get="get_rule",
    list_all="list_rules",
    reads_write=True,
    update=None,
    remove="remove_rule",
    after_create=_rules_changed,
    after_remove=_rules_changed,
)
