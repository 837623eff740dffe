"""Image members (Glance's sharing): which projects an owner shared a ``shared`` image
with, and what each said. Its own module so the image sharing tables stay together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from common_rpc.chassis.sweeper import UtcDateTime

from .models import Base, utcnow


class ImageMember(Base):
    """One project an image is shared with: ``pending`` until it accepts or rejects.
    The key makes a second add of the same project a conflict, not a second row."""

    __tablename__ = "image_members"

    image_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
