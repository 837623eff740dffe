"""Security groups and rules; every project gets a ``default`` group on first use."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import String, bindparam, delete, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import SecurityGroupPayload, SecurityGroupRulePayload
from common_rpc.errors import Conflict, NotFound
from common_rpc.outbox import add_event

from .. import protocols
from ..db.models import PortSecurityGroup, SecurityGroup, SecurityGroupRule
from ..protocols import IP_PROTOCOL_MAP
from ..settings import NetworkSettings
from . import events, quotas
from .changes import GENERATIONS
from .common import iso, new_id, owner_of, standard_view, text, touch, try_insert
from .errors import bad_attribute, conflict, invalid, not_found, required

RULE_KEYS = (
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
)


def _normalized(prefix: str | None) -> str | None:
    return None if prefix is None else str(ipaddress.ip_interface(prefix).network)


def rule_view(rule: SecurityGroupRule, default_group: bool = False) -> dict[str, Any]:
    return {
        "id": rule.id,
        "project_id": rule.project_id,
        "tenant_id": rule.project_id,
        "security_group_id": rule.security_group_id,
        **{key: getattr(rule, key) for key in RULE_KEYS},
        "remote_address_group_id": None,
        "normalized_cidr": _normalized(rule.remote_ip_prefix),
        "belongs_to_default_sg": default_group,
        "description": rule.description,
        "tags": [],
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
        "revision_number": rule.revision_number,
    }


def view(group: SecurityGroup, _ctx: RequestContext | None = None) -> dict[str, Any]:
    default = group.default_for is not None
    return standard_view(group) | {
        "stateful": group.stateful,
        "shared": False,
        "security_group_rules": [rule_view(r, default) for r in group.rules],
    }


def visible(ctx: RequestContext) -> Any:
    query = select(SecurityGroup).order_by(SecurityGroup.created_at, SecurityGroup.id)
    return query if ctx.is_admin else query.where(SecurityGroup.project_id == ctx.project_id)


async def get(session: AsyncSession, ctx: RequestContext, group_id: str) -> SecurityGroup:
    group = (await session.scalars(visible(ctx).where(SecurityGroup.id == group_id))).first()
    if group is None:
        raise not_found("SecurityGroup", group_id)
    return group


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[SecurityGroup]:
    if ctx.project_id:
        await ensure_default(session, ctx, ctx.project_id)
    return list(await session.scalars(visible(ctx)))


async def find(
    session: AsyncSession, ctx: RequestContext, wanted: list[str], *, missing_ok: bool = False
) -> list[SecurityGroup]:
    """The caller's project's groups for each entry, found as Neutron's client finds one
    (an id, else a name only one group has), in the order asked, each once.

    ``default`` is made if the project has none yet (as its first port would; the caller
    opens a writing transaction for it). An entry that matches nothing is NotFound
    (skipped with ``missing_ok``), a name that several groups share is Conflict; both
    carry the entry as ``details["name"]``.
    """
    project_id = ctx.project_id
    if not project_id:
        raise invalid("A project-scoped token is required.")
    mine = select(SecurityGroup).where(SecurityGroup.project_id == project_id)
    if "default" in wanted:
        await ensure_default(session, ctx, project_id)
    by_id = {g.id: g for g in await session.scalars(mine.where(SecurityGroup.id.in_(wanted)))}
    rest = [entry for entry in wanted if entry not in by_id]
    named: dict[str, list[SecurityGroup]] = {}
    for group in await session.scalars(mine.where(SecurityGroup.name.in_(rest))):
        named.setdefault(group.name, []).append(group)
    found: dict[str, SecurityGroup] = {}
    for entry in wanted:
        matches = [by_id[entry]] if entry in by_id else named.get(entry, [])
        if len(matches) > 1:
            raise Conflict(
                f"Multiple security_group matches found for name '{entry}', "
                "use an ID to be more specific.",
                details={"type": "NoUniqueMatch", "name": entry},
            )
        if not matches:
            if missing_ok:
                continue
            raise NotFound(
                f"Security group {entry} not found for project {project_id}.",
                details={"type": "SecurityGroupNotFound", "name": entry},
            )
        found.setdefault(matches[0].id, matches[0])
    return list(found.values())


def _rule(group: SecurityGroup, **attrs: Any) -> SecurityGroupRule:
    return SecurityGroupRule(
        id=new_id(), project_id=group.project_id, security_group_id=group.id, **attrs
    )


async def ensure_default(
    session: AsyncSession, ctx: RequestContext, project_id: str
) -> SecurityGroup:
    """The project's ``default`` group, created with its rules if it does not exist yet."""
    query = select(SecurityGroup).where(SecurityGroup.default_for == project_id)
    found = (await session.scalars(query)).first()
    if found is not None:
        return found
    group = SecurityGroup(
        id=new_id(),
        project_id=project_id,
        name="default",
        description="Default security group",
        default_for=project_id,
    )
    # Two first requests may race: the unique default_for key keeps one group.
    if not await try_insert(session, group):
        return (await session.scalars(query)).one()
    for ethertype in ("IPv4", "IPv6"):
        session.add(_rule(group, direction="egress", ethertype=ethertype))
        session.add(
            _rule(group, direction="ingress", ethertype=ethertype, remote_group_id=group.id)
        )
    # Made on first use, not asked for: counted, never refused (as Neutron does).
    await quotas.record(session, project_id, "security_group")
    await quotas.record(session, project_id, "security_group_rule", 4)
    await session.flush()
    await session.refresh(group, ["rules"])
    await _emit(session, ctx, group, events.CREATE)
    return group


_LINKS = PortSecurityGroup.__table__  # the Core table: the ORM would take params as a bulk insert
_LINK_DEFAULT = (
    insert(_LINKS)
    .from_select(
        ["port_id", "security_group_id"],
        select(bindparam("port_id", type_=String), SecurityGroup.id).where(
            SecurityGroup.default_for == bindparam("project_id")
        ),
    )
    .returning(_LINKS.c.security_group_id)
)  # built once: it runs on every port create


async def link_default(
    session: AsyncSession, ctx: RequestContext, port_id: str, project_id: str
) -> str:
    """Link a new port to its project's ``default`` group; the group's id.

    One ``INSERT ... SELECT ... RETURNING`` on the hot path of every port create; only a
    project's first port makes the group first.
    """
    linked = await session.scalar(_LINK_DEFAULT, {"port_id": port_id, "project_id": project_id})
    if linked is not None:
        return str(linked)
    group = await ensure_default(session, ctx, project_id)
    await session.execute(
        insert(PortSecurityGroup).values(port_id=port_id, security_group_id=group.id)
    )
    return group.id


async def create(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> SecurityGroup:
    project_id = owner_of(ctx, body)
    name = text(body, "name")
    if name.lower() == "default":
        raise default_exists()
    group = SecurityGroup(
        id=new_id(), project_id=project_id, name=name, description=text(body, "description")
    )
    session.add(group)
    await session.flush()
    await quotas.reserve(session, settings, project_id, "security_group")
    for ethertype in ("IPv4", "IPv6"):
        session.add(_rule(group, direction="egress", ethertype=ethertype))
    await quotas.record(session, project_id, "security_group_rule", 2)  # come with the group
    await session.flush()
    await session.refresh(group, ["rules"])
    await _emit(session, ctx, group, events.CREATE)
    return group


async def update(
    session: AsyncSession, ctx: RequestContext, group_id: str, body: dict[str, Any]
) -> SecurityGroup:
    group = await get(session, ctx, group_id)
    if "name" in body:
        name = text(body, "name")
        if name.lower() == "default" and group.default_for is None:
            raise default_exists()
        if name != "default" and group.default_for is not None:
            raise conflict(
                "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed."
            )
        group.name = name
    if "description" in body:
        group.description = text(body, "description")
    touch(group)
    await session.flush()
    await _emit(session, ctx, group, events.UPDATE)
    return group


def default_exists() -> Conflict:
    """Neutron's name check: no second group named ``default`` (in any case)."""
    return conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")


async def remove(session: AsyncSession, ctx: RequestContext, group_id: str) -> None:
    group = await get(session, ctx, group_id)
    if group.default_for is not None and not ctx.is_admin:
        raise conflict(
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        )
    # The row lock (PostgreSQL) holds off a rule being added meanwhile: the rules counted
    # below are all the delete takes with it.
    await session.execute(
        select(SecurityGroup.id).where(SecurityGroup.id == group_id).with_for_update()
    )
    # The group's quota before its rules' (the order creates take them in); a refusal
    # below rolls the releases back.
    await quotas.release(session, group.project_id, "security_group")
    try:
        async with session.begin_nested():
            rules = await session.execute(
                delete(SecurityGroupRule).where(SecurityGroupRule.security_group_id == group_id)
            )
            await session.delete(group)
    except IntegrityError:
        # Ports still reference it: their foreign key refuses the delete.
        raise conflict("SecurityGroupInUse", f"Security Group {group_id} in use.") from None
    rule_count = int(rules.rowcount)  # type: ignore[attr-defined]
    await quotas.release(session, group.project_id, "security_group_rule", rule_count)
    await _emit(session, ctx, group, events.DELETE)


# Neutron's sg_supported_protocols, as its refusal prints them.
SUPPORTED_PROTOCOLS = (None, "any", *IP_PROTOCOL_MAP)


def _protocol(value: Any) -> str | None:
    """neutron's ``convert_protocol``: "any" is none, names lower case, numbers 0-255."""
    if value in (None, "any"):
        return None
    refused = invalid(
        f"Security group rule protocol {value} not supported. Only protocol values "
        f"{SUPPORTED_PROTOCOLS} and integer representations [0 to 255] are supported.",
        "SecurityGroupRuleInvalidProtocol",
    )
    if isinstance(value, bool):
        raise refused
    try:
        number = int(value)
    except (TypeError, ValueError):
        if isinstance(value, str) and value.lower() in SUPPORTED_PROTOCOLS:
            return value.lower()
        raise refused from None
    if 0 <= number <= 255:
        return str(value)
    raise refused


def _port(value: Any) -> int | None:
    """neutron's ``convert_validate_port_value``: 0 to 65535, a number or its string."""
    if value is None:
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if isinstance(value, bool) or not 0 <= port <= 65535 or isinstance(value, float):
        raise invalid(f"Invalid value for port {value}", "SecurityGroupInvalidPortValue")
    return port


def _ethertype(value: Any) -> str:
    for ethertype in ("IPv4", "IPv6"):
        if isinstance(value, str) and value.lower() == ethertype.lower():
            return ethertype
    raise invalid(
        f"Security group rule for ethertype '{value}' not supported. "
        "Allowed values are ['IPv4', 'IPv6'].",
        "SecurityGroupRuleInvalidEtherType",
    )


def _prefix(value: Any) -> str | None:
    """neutron's ``convert_ip_prefix_to_cidr``: the prefix with its length, host bits
    kept (``normalized_cidr`` clears them), the address canonical (RFC 5952)."""
    if not value:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(ipaddress.ip_interface(value))
    except ValueError:
        raise invalid(f"Invalid CIDR {value} given as IP prefix.", "InvalidCIDR") from None


def _port_range(protocol: str | None, low: int | None, high: int | None) -> None:
    """neutron's ``_validate_port_range``, with its faults and texts."""
    if low is None and high is None:
        return
    if not protocol:
        raise invalid(
            "Must also specify protocol if port range is given.",
            "SecurityGroupProtocolRequiredWithPorts",
        )
    number = protocols.number(protocol)
    if number in (protocols.IP_PROTOCOL_MAP[p] for p in protocols.PORT_PROTOCOLS):
        if low == 0 or high == 0:
            raise invalid("Invalid value for port 0", "SecurityGroupInvalidPortValue")
        if low is None or high is None or low > high:
            raise invalid(
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                "SecurityGroupInvalidPortRange",
            )
    elif number in protocols.ICMP_NUMBERS:
        icmp = ((low, "type", "port_range_min"), (high, "code", "port_range_max"))
        for value, field, attr in icmp:
            if value is not None and not 0 <= value <= 255:
                raise invalid(
                    f"Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.",
                    "SecurityGroupInvalidIcmpValue",
                )
        if low is None:
            raise invalid(
                f"ICMP code (port-range-max) {high} is provided but ICMP type "
                "(port-range-min) is missing.",
                "SecurityGroupMissingIcmpType",
            )
    else:
        raise invalid(
            f"Ports cannot be specified for protocol {number}. Ports are only supported "
            f"for {', '.join(p.upper() for p in protocols.PORT_PROTOCOLS)}.",
            "SecurityGroupInvalidProtocolForPort",
        )


def _rule_attrs(body: dict[str, Any]) -> dict[str, Any]:
    """A rule checked as Neutron checks one: the API layer converts each attribute in
    its order, then the plugin checks them together. The rule in its canonical form."""
    for key in ("security_group_id", "direction"):
        if key not in body:
            raise required(key)
    direction = body["direction"]
    if direction not in ("ingress", "egress"):
        raise bad_attribute("direction", f"{direction} is not in ['ingress', 'egress']")
    protocol = _protocol(body.get("protocol"))
    low, high = _port(body.get("port_range_min")), _port(body.get("port_range_max"))
    ethertype = _ethertype(body.get("ethertype", "IPv4"))
    prefix = _prefix(body.get("remote_ip_prefix"))
    if ethertype == "IPv6" and protocol in ("icmp", "icmpv6"):
        protocol = "ipv6-icmp"  # Neutron's canonical name in IPv6
    elif ethertype == "IPv6" and protocol == "1":
        protocol = "58"
    if low == 1 and high == 65535:
        low = high = None  # the whole range is no range (Neutron's canonical form)
    _port_range(protocol, low, high)
    if prefix is not None and f"IPv{ipaddress.ip_interface(prefix).version}" != ethertype:
        raise invalid(
            f"Conflicting value ethertype {ethertype} for CIDR {body['remote_ip_prefix']}",
            "SecurityGroupRuleParameterConflict",
        )
    if ethertype == "IPv4" and protocol in protocols.IPV6_ONLY:
        raise invalid(
            f"Invalid ethertype {ethertype} for protocol {protocol}.",
            "SecurityGroupEthertypeConflictWithProtocol",
        )
    remote_group = body.get("remote_group_id")
    if prefix is not None and remote_group is not None:
        raise invalid(
            "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id "
            "may be provided.",
            "SecurityGroupMultipleRemoteEntites",
        )
    return {
        "direction": direction,
        "ethertype": ethertype,
        "protocol": protocol,
        "port_range_min": low,
        "port_range_max": high,
        "remote_ip_prefix": prefix,
        "remote_group_id": remote_group,
        "description": text(body, "description"),
    }


def _rule_key(attrs: Any) -> tuple[Any, ...]:
    """What makes two rules the same (Neutron's ``_rule_to_key``): a protocol by its
    number, an all-addresses prefix as no prefix."""
    get = attrs.get if isinstance(attrs, dict) else lambda key: getattr(attrs, key)
    protocol, prefix = get("protocol"), get("remote_ip_prefix")
    return (
        get("direction"),
        get("ethertype"),
        None if protocol is None else protocols.number(protocol),
        get("port_range_min"),
        get("port_range_max"),
        None if prefix in ("0.0.0.0/0", "::/0") else prefix,
        get("remote_group_id"),
    )


async def create_rule(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> SecurityGroupRule:
    attrs = _rule_attrs(body)
    if attrs["remote_group_id"] is not None:
        await get(session, ctx, str(attrs["remote_group_id"]))
    group = await get(session, ctx, str(body["security_group_id"]))
    for rule in group.rules:
        if _rule_key(rule) == _rule_key(attrs):
            raise conflict(
                "SecurityGroupRuleExists",
                f"Security group rule already exists. Rule id is {rule.id}.",
            )
    rule = _rule(group, **attrs)
    session.add(rule)
    await session.flush()
    # After the insert: the group's row (its foreign key) is locked before the quota row.
    await quotas.reserve(session, settings, rule.project_id, "security_group_rule")
    await _emit_rule(session, ctx, rule, events.CREATE)
    await _rules_changed(session, group.id)
    return rule


# session.info key: the groups whose rules a transaction changed (their hosts re-wire).
RULES_CHANGED_KEY = "security_group_rules_changed"


def rules_visible(ctx: RequestContext) -> Any:
    query = select(SecurityGroupRule).order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)
    return query if ctx.is_admin else query.where(SecurityGroupRule.project_id == ctx.project_id)


async def get_rule(session: AsyncSession, ctx: RequestContext, rule_id: str) -> SecurityGroupRule:
    query = rules_visible(ctx).where(SecurityGroupRule.id == rule_id)
    rule = (await session.scalars(query)).first()
    if rule is None:
        raise not_found("SecurityGroupRule", rule_id)
    return rule


async def list_rules(session: AsyncSession, ctx: RequestContext) -> list[SecurityGroupRule]:
    if ctx.project_id:
        await ensure_default(session, ctx, ctx.project_id)
    return list(await session.scalars(rules_visible(ctx)))


async def remove_rule(session: AsyncSession, ctx: RequestContext, rule_id: str) -> None:
    rule = await get_rule(session, ctx, rule_id)
    await session.delete(rule)
    await quotas.release(session, rule.project_id, "security_group_rule")
    await session.flush()
    await _emit_rule(session, ctx, rule, events.DELETE)
    await _rules_changed(session, rule.security_group_id)


async def _rules_changed(session: AsyncSession, group_id: str) -> None:
    """The group's ports have new desired rules: a new generation for each, and the group
    noted in ``session.info`` so their hosts are told once this commits."""
    members = select(PortSecurityGroup.port_id).where(
        PortSecurityGroup.security_group_id == group_id
    )
    ports = GENERATIONS["ports"]
    await session.execute(
        sql_update(ports)
        .where(ports.c.id.in_(members))
        .values(generation=ports.c.generation + 1)
        .execution_options(synchronize_session=False)
    )
    session.info.setdefault(RULES_CHANGED_KEY, set()).add(group_id)


async def _emit(
    session: AsyncSession, ctx: RequestContext, group: SecurityGroup, action: str
) -> None:
    payload = SecurityGroupPayload(id=group.id, project_id=group.project_id, name=group.name)
    await add_event(
        session,
        events.SECURITY_GROUP.format(action=action),
        payload,
        project_id=group.project_id,
        ctx=ctx,
    )


async def _emit_rule(
    session: AsyncSession, ctx: RequestContext, rule: SecurityGroupRule, action: str
) -> None:
    payload = SecurityGroupRulePayload(
        id=rule.id,
        security_group_id=rule.security_group_id,
        project_id=rule.project_id,
        **{key: getattr(rule, key) for key in RULE_KEYS},
    )
    await add_event(
        session,
        events.SECURITY_GROUP_RULE.format(action=action),
        payload,
        project_id=rule.project_id,
        ctx=ctx,
    )
