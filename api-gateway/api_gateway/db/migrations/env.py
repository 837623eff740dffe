"""Alembic environment of the gateway service (the chassis branch comes along)."""

from common_rpc.chassis.migrations import run_env
from api_gateway.db.models import Base

run_env(Base.metadata)
