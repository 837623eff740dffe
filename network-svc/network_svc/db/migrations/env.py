"""Alembic environment of the network service (the chassis branch comes along)."""

from common_rpc.chassis.migrations import run_env
from network_svc.db.models import Base

run_env(Base.metadata)
