"""Identity protections, as Keystone's ``[security_compliance]`` offers them: a lockout after
failed password attempts, rules new passwords must meet, and failed logins counted.

    reason = await check_password(deps, user, given, who="alice")   # None: it matches
    check_password_rules(deps.settings, "new password")              # or Keystone's 400
    locked_until(deps.settings, user, utcnow())                      # shown by user show

With ``lockout_failure_attempts`` = N (settings; 0 turns it off) a user whose last N
password attempts in a row failed is refused, right password or not, until
``lockout_duration_s`` after the last one, or until an admin enables the user again; a
success resets the count. The option ``ignore_lockout_failure_attempts`` (Keystone's user
option) exempts a user, e.g. a service account. While locked, attempts are not counted,
so the lockout ends when announced. Password changes count like logins.

Every failure is counted in ``stackling_gateway_failed_logins_total{reason}`` (reasons
``bad_credentials``: unknown user or wrong password, alike, so the public /metrics does
not tell them apart; ``locked``; ``disabled``) and logged with the name given, never the
password.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import case, update

from common_rpc.errors import Invalid

from ..db.models import User
from ..settings import GatewaySettings
from ..wiring import Deps
from .tokens import utcnow

log = logging.getLogger(__name__)

FAILED_LOGINS = Counter(
    "stackling_gateway_failed_logins_total",
    "Password logins and password changes refused, by reason",
    ["reason"],
)
BAD_CREDENTIALS, LOCKED, DISABLED = "bad_credentials", "locked", "disabled"


def locked_until(settings: GatewaySettings, user: User, now: datetime) -> datetime | None:
    """When the user's lockout ends, or None when it is not locked out now."""
    attempts = settings.lockout_failure_attempts
    if not attempts or user.ignore_lockout or user.failed_auth_at is None:
        return None
    if (user.failed_auth_count or 0) < attempts:
        return None
    until = user.failed_auth_at + timedelta(seconds=settings.lockout_duration_s)
    return until if until > now else None


def failed_login(reason: str, who: str) -> None:
    FAILED_LOGINS.labels(reason).inc()
    log.warning("password check failed for user %r: %s", who, reason)


async def check_password(deps: Deps, user: User | None, given: str, *, who: str) -> str | None:
    """None when ``given`` is the user's password and the user may use it; else the reason
    (counted, logged and, for a wrong password, recorded toward the lockout)."""
    now = utcnow()
    until = locked_until(deps.settings, user, now) if user is not None else None
    stored = user.password_hash if user is not None else None
    # Checked as long for an unknown or locked user as for a wrong password.
    matches = await deps.passwords.verify(stored, given) and bool(given)
    reason: str | None = None
    if until is not None:
        reason = LOCKED
    elif user is None or not matches:
        reason = BAD_CREDENTIALS
        if user is not None and deps.settings.lockout_failure_attempts:
            await _record_failure(deps, user.id, now)
    elif not user.enabled:
        reason = DISABLED
    if reason is not None:
        failed_login(reason, who)
        return reason
    assert user is not None
    if user.failed_auth_count:
        await reset_failures(deps, user.id)
    return None


async def _record_failure(deps: Deps, user_id: str, now: datetime) -> None:
    """One more failure in a row, atomically; a count left from an ended lockout restarts."""
    attempts = deps.settings.lockout_failure_attempts
    async with deps.sessions.begin() as session:
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(
                failed_auth_count=case(
                    (User.failed_auth_count >= attempts, 1),
                    else_=User.failed_auth_count + 1,
                ),
                failed_auth_at=now,
            )
        )


async def reset_failures(deps: Deps, user_id: str) -> None:
    async with deps.sessions.begin() as session:
        await session.execute(
            update(User)
            .where(User.id == user_id, User.failed_auth_count != 0)
            .values(failed_auth_count=0, failed_auth_at=None)
        )


def check_password_rules(settings: GatewaySettings, password: str) -> None:
    """Keystone's ``password_regex``: a new password must match it (from its start)."""
    if settings.password_regex and not re.match(settings.password_regex, password):
        detail = settings.password_regex_description or "it does not match the rules"
        raise Invalid(
            f"Password validation error: The password does not meet the requirements: {detail}."
        )
