"""Housekeeping trims old rows of the chassis tables and keeps the recent ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from common_rpc.chassis.housekeeping import Housekeeping
from common_rpc.tables import idempotency_keys, processed_events, rpc_operations


async def _count(sessions, table) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_old_rows_go_recent_and_running_stay(sessions) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=30)
    async with sessions.begin() as session:
        await session.execute(
            insert(processed_events),
            [
                {"consumer": "c", "event_id": "old", "processed_at": old},
                {"consumer": "c", "event_id": "new", "processed_at": now},
            ],
        )
        await session.execute(
            insert(rpc_operations),
            [
                {
                    "op_id": "done-old",
                    "method": "m",
                    "attempts": 1,
                    "state": "done",
                    "updated_at": old,
                },
                {
                    "op_id": "run-old",
                    "method": "m",
                    "attempts": 1,
                    "state": "running",
                    "updated_at": old,
                },
                {
                    "op_id": "done-new",
                    "method": "m",
                    "attempts": 1,
                    "state": "done",
                    "updated_at": now,
                },
            ],
        )
        await session.execute(
            insert(idempotency_keys),
            [
                {
                    "project_id": "p",
                    "key": "old",
                    "method_path": "POST /x",
                    "body_hash": "h",
                    "created_at": old,
                },
                {
                    "project_id": "p",
                    "key": "new",
                    "method_path": "POST /x",
                    "body_hash": "h",
                    "created_at": now,
                },
            ],
        )
    counts = await Housekeeping(sessions).run_once()
    assert counts == {"idempotency_keys": 1, "processed_events": 1, "rpc_operations": 1}
    assert await _count(sessions, processed_events) == 1
    assert await _count(sessions, rpc_operations) == 2  # the running one is kept
    assert await _count(sessions, idempotency_keys) == 1
