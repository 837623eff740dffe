"""Alembic environment of the compute service (the chassis branch comes along)."""

from common_rpc.chassis.migrations import run_env
from compute_svc.db.models import Base

run_env(Base.metadata)
