"""The network service's tables (its own database; no other service reads it).

The chassis tables (outbox, processed events, operation log, idempotency keys) are
added by the chassis migration branch, not declared here.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
