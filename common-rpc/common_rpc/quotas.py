"""Per-project quotas, counted with the resource's row; each service keeps its own tables.

A service declares two ORM models with the same columns (``project_id``, ``resource``
and ``in_use`` for what a project holds; ``project_id``, ``resource`` and ``hard_limit``
for the limits an admin set) and builds one ``Quotas`` with its resource names and its
own fault for "over the limit". Defaults come from the service's settings, per call.

``reserve`` runs inside the transaction that inserts the row: one conditional
``UPDATE usages SET in_use = in_use + n WHERE ... AND in_use + n <= limit`` (the limit
read by a subquery: the admin's row, else the default; -1 is unlimited) either takes the
units or changes nothing, so parallel creates cannot overshoot (the row lock on
PostgreSQL, the write lock on SQLite), and a create pays one statement. Only a project's
first reservation of a resource inserts its usage row. ``release`` is the same UPDATE,
negative, in the transaction that deletes the row.

    quotas = Quotas(Usage, Limit, ("port", "network"), over_limit=my_fault, invalid=bad)
    await quotas.reserve(session, "p1", {"port": 1}, defaults={"port": 500, "network": 100})
    await quotas.release(session, "p1", {"port": 1})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Integer, String, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .errors import RpcError

# Limits are stored as INTEGER: a larger value would fail in the database, not as a 400.
MAX_LIMIT = 2**31 - 1

# (resource, requested, in use, limit) -> the service's own fault
OverLimit = Callable[[str, int, int, int], RpcError]


class QuotaUsageColumns:
    """The usage table's columns, for a service's own model:
    ``class QuotaUsage(QuotaUsageColumns, Base): __tablename__ = "quota_usages"``."""

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    in_use: Mapped[int] = mapped_column(Integer, default=0)


class QuotaLimitColumns:
    """The limits table's columns: a project's limit where an admin set one."""

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Quotas:
    """The quota engine over one service's usage and limit models."""

    usage_model: Any
    limit_model: Any
    resources: tuple[str, ...]
    over_limit: OverLimit
    invalid: Callable[[str], RpcError]

    async def limits(
        self, session: AsyncSession, project: str, defaults: Mapping[str, int]
    ) -> dict[str, int]:
        """Each resource's limit for ``project``: the admin's, else the default."""
        out = {r: defaults[r] for r in self.resources}
        limit = self.limit_model
        rows = await session.scalars(select(limit).where(limit.project_id == project))
        out |= {row.resource: row.hard_limit for row in rows if row.resource in out}
        return out

    async def usage(self, session: AsyncSession, project: str) -> dict[str, int]:
        out = dict.fromkeys(self.resources, 0)
        usage = self.usage_model
        rows = await session.scalars(select(usage).where(usage.project_id == project))
        out |= {row.resource: row.in_use for row in rows if row.resource in out}
        return out

    async def projects_with_limits(self, session: AsyncSession) -> list[str]:
        """Projects an admin set any limit for (Neutron's ``GET /v2.0/quotas``)."""
        limit = self.limit_model
        rows = await session.scalars(select(limit.project_id).distinct().order_by(limit.project_id))
        return list(rows)

    @cached_property
    def _counted_add(self) -> Any:
        """``in_use += :amount`` for one (project, resource); built once, bound per call."""
        usage = self.usage_model
        return (
            update(usage)
            .where(
                usage.project_id == bindparam("q_project"),
                usage.resource == bindparam("q_resource"),
            )
            .values(in_use=usage.in_use + bindparam("q_amount", type_=Integer))
            .execution_options(synchronize_session=False)
        )

    @cached_property
    def _checked_add(self) -> Any:
        """The same, only while within the limit in force: the admin's row, else the
        default (``:q_default``); a negative limit is no limit."""
        usage, limit = self.usage_model, self.limit_model
        admin = (
            select(limit.hard_limit)
            .where(
                limit.project_id == bindparam("q_project"),
                limit.resource == bindparam("q_resource"),
            )
            .scalar_subquery()
        )
        cap = func.coalesce(admin, bindparam("q_default", type_=Integer))
        amount = bindparam("q_amount", type_=Integer)
        return self._counted_add.where((cap < 0) | (usage.in_use + amount <= cap))

    async def _add(
        self, session: AsyncSession, project: str, resource: str, amount: int, default: int | None
    ) -> bool:
        params: dict[str, Any] = {"q_project": project, "q_resource": resource, "q_amount": amount}
        if default is None:
            result = await session.execute(self._counted_add, params)
        else:
            result = await session.execute(self._checked_add, params | {"q_default": default})
        return bool(getattr(result, "rowcount", 0))

    async def _ensure_row(self, session: AsyncSession, project: str, resource: str) -> None:
        usage = self.usage_model
        found = await session.scalar(
            select(usage.in_use).where(usage.project_id == project, usage.resource == resource)
        )
        if found is not None:
            return
        try:
            async with session.begin_nested():
                session.add(usage(project_id=project, resource=resource, in_use=0))
        except IntegrityError:
            pass  # a parallel first reservation inserted it

    async def _take(
        self,
        session: AsyncSession,
        project: str,
        deltas: Mapping[str, int],
        defaults: Mapping[str, int] | None,
    ) -> None:
        for resource, amount in deltas.items():
            if amount <= 0:
                continue
            default = None if defaults is None else defaults[resource]
            if await self._add(session, project, resource, amount, default):
                continue  # the common case: one statement
            # No usage row yet, or over the limit: which one decides the answer.
            await self._ensure_row(session, project, resource)
            if await self._add(session, project, resource, amount, default):
                continue
            assert defaults is not None
            hard = (await self.limits(session, project, defaults))[resource]
            held = (await self.usage(session, project))[resource]
            raise self.over_limit(resource, amount, held, hard)

    async def reserve(
        self,
        session: AsyncSession,
        project: str,
        deltas: Mapping[str, int],
        defaults: Mapping[str, int],
    ) -> None:
        """Take ``deltas`` units or raise the service's fault naming the resource over its
        limit (the caller's transaction then rolls back whatever it took)."""
        await self._take(session, project, deltas, defaults)

    async def record(self, session: AsyncSession, project: str, deltas: Mapping[str, int]) -> None:
        """Count ``deltas`` units without checking a limit: for rows a service creates as a
        side effect of another request, which are counted but never refused."""
        await self._take(session, project, deltas, None)

    async def release(self, session: AsyncSession, project: str, deltas: Mapping[str, int]) -> None:
        for resource, amount in deltas.items():
            if amount <= 0:
                continue
            params = {"q_project": project, "q_resource": resource, "q_amount": -amount}
            await session.execute(self._counted_add, params)

    async def set_limits(
        self,
        session: AsyncSession,
        project: str,
        values: Mapping[str, object],
        *,
        unknown_is_error: bool = False,
    ) -> None:
        """Store an admin's limits (integers >= -1). Keys this service does not track are
        skipped, or refused with ``unknown_is_error``; nothing is stored on a refusal."""
        checked: dict[str, int] = {}
        for resource, value in values.items():
            if resource not in self.resources:
                if unknown_is_error:
                    raise self.invalid(f"Unrecognized quota resource: {resource}.")
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not -1 <= value <= MAX_LIMIT
            ):
                raise self.invalid(f"Invalid quota value for {resource}: must be an integer >= -1.")
            checked[resource] = value
        limit = self.limit_model
        for resource, value in checked.items():
            row = await session.get(limit, (project, resource))
            if row is None:
                session.add(limit(project_id=project, resource=resource, hard_limit=value))
            else:
                row.hard_limit = value
        await session.flush()

    async def clear_limits(self, session: AsyncSession, project: str) -> None:
        """Back to the defaults."""
        limit = self.limit_model
        await session.execute(delete(limit).where(limit.project_id == project))
