"""The usage ledger: what each server held and from when to when, kept after its row is
gone so ``os-simple-tenant-usage`` can bill deleted servers (``domain.usage``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from common_rpc.chassis.sweeper import UtcDateTime

from .models import Base


class ServerUsage(Base):
    """One server's life for billing: its size, its start and (once deleted) its end."""

    __tablename__ = "server_usages"

    server_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    flavor: Mapped[str] = mapped_column(String(255), default="")
    vcpus: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None, index=True)
