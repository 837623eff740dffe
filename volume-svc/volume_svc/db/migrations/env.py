"""Alembic environment of the volume service (the chassis branch comes along)."""

from common_rpc.chassis.migrations import run_env
from volume_svc.db.models import Base

run_env(Base.metadata)
