"""Alembic environment of the gateway service (the chassis branch comes along)."""

from api_gateway.db.models import Base
from common_rpc.chassis.migrations import run_env

run_env(Base.metadata)
