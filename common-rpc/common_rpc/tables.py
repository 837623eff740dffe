"""Tables every service keeps in its own database for the reliability rules.

They live on their own ``MetaData`` and have their own Alembic branch ("chassis", in
``common_rpc/chassis/migrations``) that each service's migration history includes, so the
shapes evolve with common-rpc and are never copied into a service.

    outbox            events written in the same transaction as a state change
    processed_events  event ids a consumer already handled (dedupe)
    rpc_operations    operation ids of mutating RPC calls: attempts and stored results
    idempotency_keys  Idempotency-Key of HTTP creates: body hash and first response
    agents            agent processes: last heartbeat and what their host offers
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import sqlite

chassis_metadata = MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT.
_BigId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")

outbox = Table(
    "outbox",
    chassis_metadata,
    Column("seq", _BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(255), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

processed_events = Table(
    "processed_events",
    chassis_metadata,
    Column("consumer", String(128), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    Index("ix_processed_events_at", "processed_at"),
)

rpc_operations = Table(
    "rpc_operations",
    chassis_metadata,
    Column("op_id", String(128), primary_key=True),
    Column("method", String(255), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # running | done | failed | dead
    Column("state", String(16), nullable=False),
    Column("result", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_rpc_operations_updated", "updated_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    chassis_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("method_path", Text, nullable=False),
    Column("body_hash", String(64), nullable=False),
    # None while the first request is still being served.
    Column("status_code", Integer, nullable=True),
    Column("response_headers", JSON, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)

# One row per agent process (binary, host): the last heartbeat says whether it is alive and
# what the host offers (compute: vcpus, ram_mb, disk_gb); see ``common_rpc.agents``.
agents = Table(
    "agents",
    chassis_metadata,
    Column("binary", String(64), primary_key=True),
    Column("host", String(255), primary_key=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_heartbeat", DateTime(timezone=True), nullable=False),
    Column("capabilities", JSON, nullable=False),
    Column("admin_state_up", Boolean, nullable=False, default=True),
)
