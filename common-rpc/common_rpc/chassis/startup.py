"""What stops a process before it serves: one line that says what is wrong and what to do.

    raise StartupError("identity key /x/keys/identity.key not found; run `make setup ...`")
    # stderr: "stackling-gateway: identity key /x/keys/identity.key not found; run ..."
    # exit status 1, no traceback

Settings that do not parse, a key file that is missing or unreadable, a database URL that
is not one, a database that does not answer or a SQLite directory that cannot be written
are an operator's to fix, not a bug: a traceback would hide the one line that matters.
Every process builds its settings first (``ServiceSettings`` turns a bad value into a
``SettingsError``), so importing the settings installs ``install_excepthook``: a
``StartupError`` that reaches the top of a process, from a ``main()``, a composition root
or ``run_app``'s checks, prints that line and exits 1. Anything else keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from .db import is_sqlite, make_engine, sqlite_path


class SettingsView(Protocol):
    """What the checks read of a service's settings (``settings.ServiceSettings`` has it;
    a protocol here, since settings imports this module)."""

    data_dir: Path
    db_url: str | None

    @property
    def database_url(self) -> str: ...

    def env_names(self, field: str) -> str: ...


K = TypeVar("K")

# The drivers the chassis runs with (async SQLAlchemy): anything else fails at first use.
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
DATABASE_URL_FORMS = (
    "sqlite+aiosqlite:////path/to/file.db or postgresql+asyncpg://user:password@host/dbname"
)


class StartupError(Exception):
    """A process cannot start; the message is one line: what is wrong; what to do."""


def program() -> str:
    """The running console script's name (``stackling-gateway``, ``network-agent``...)."""
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "stackling"


def one_line(exc: BaseException) -> str:
    """What a start-up error prints: ``<program>: <message>`` on a single line."""
    message = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{program()}: {message}"


def _hook(
    previous: Callable[[type[BaseException], BaseException, TracebackType | None], object],
) -> Callable[[type[BaseException], BaseException, TracebackType | None], None]:
    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, StartupError):
            print(one_line(exc), file=sys.stderr, flush=True)
        else:
            previous(kind, exc, tb)

    excepthook.stackling = True  # type: ignore[attr-defined]
    return excepthook


def install_excepthook() -> None:
    """An uncaught ``StartupError`` prints one line instead of a traceback (idempotent)."""
    if not getattr(sys.excepthook, "stackling", False):
        sys.excepthook = _hook(sys.excepthook)


# --- what the operator sets -----------------------------------------------------------------


def env_names(settings: SettingsView, field: str) -> str:
    """The variables a setting is read from: ``NETWORK_DB_URL`` (``or STACKLING_...``)."""
    return settings.env_names(field)


def data_dir_hint(settings: SettingsView) -> str:
    data_dir = settings.data_dir.absolute()
    return (
        f"run `make setup DATA_DIR={data_dir}` or set STACKLING_DATA_DIR "
        "to the data directory set-up wrote"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, PermissionError):
        return "not readable (permission denied)"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a key file"
    if isinstance(exc, OSError):
        return f"not readable ({exc.strerror or exc})"
    return "is not an Ed25519 key in PEM form"


def load_identity_key(
    loader: Callable[[bytes], K], path: Path, settings: SettingsView, field: str
) -> K:
    """``loader(<the key file's bytes>)``, or a ``StartupError`` naming the file and the fix.

    ``field`` is the setting that can point elsewhere (``identity_public_key_path``); a key
    in ``<data_dir>/keys`` is set-up's to write, so the hint is ``make setup``.
    """
    try:
        return loader(path.read_bytes())
    except (OSError, ValueError) as exc:
        reason, broken = _reason(exc), isinstance(exc, ValueError)
    if path.absolute().parent == (settings.data_dir / "keys").absolute():
        # Set-up keeps a private key it finds: a broken one must go first.
        hint = ("move it away and " if broken else "") + data_dir_hint(settings)
    else:
        hint = f"fix {env_names(settings, field)}"
    raise StartupError(f"identity key {path.absolute()} {reason}; {hint}")


def check_database_url(url: str) -> str:
    """``url`` when the chassis can use it; else ``ValueError`` with the forms it takes."""
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        raise ValueError(f"not a database URL; use {DATABASE_URL_FORMS}") from None
    if driver not in DATABASE_DRIVERS:
        raise ValueError(f"driver {driver!r} is not supported; use {DATABASE_URL_FORMS}")
    return url


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _db_reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{exc.__class__.__name__}: {exc}"


async def check_database(settings: SettingsView, timeout_s: float = 10.0) -> None:
    """The service's database answers (SQLite: its file can be created and written).

    On an engine of its own, disposed after: the runtime's engine stays unused until start.
    """
    url = settings.database_url
    fix = f"fix {env_names(settings, 'db_url')}"
    if is_sqlite(url):
        path = sqlite_path(url)
        if settings.db_url is None:
            fix = (
                f"set STACKLING_DATA_DIR to a writable directory "
                f"(or {env_names(settings, 'db_url')})"
            )
        problem = None if path is None else _dir_problem(path.parent)
        if path is not None and problem is not None:
            where = f"database directory {path.parent}"
            raise StartupError(f"{where} {problem} (for {path.name}); {fix}")
    engine = make_engine(url, connect_timeout_s=timeout_s)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            if is_sqlite(url):
                # WAL and a write lock: what the service's first write will need.
                await conn.execute(text("BEGIN IMMEDIATE"))
                await conn.execute(text("ROLLBACK"))
    except (OSError, SQLAlchemyError, TimeoutError) as exc:
        if is_sqlite(url):
            problem = f"file {sqlite_path(url) or url} unusable"
        elif isinstance(exc, DBAPIError):
            problem = f"{_shown(url)} refused the connection"
            fix += " (`make setup` creates the stackling_<service> roles and databases)"
        else:
            problem = f"{_shown(url)} unreachable"
            fix = f"start PostgreSQL (`make setup` starts a local one) or {fix}"
        raise StartupError(f"database {problem}: {_db_reason(exc)}; {fix}") from None
    finally:
        await engine.dispose()


def _dir_problem(path: Path) -> str | None:
    """What keeps this process from writing in ``path`` (made if missing), or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "is not a directory"
    except OSError as exc:
        return f"cannot be made ({exc.strerror or exc})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def check_writable_dir(path: Path, what: str, hint: str) -> None:
    """``path`` exists (made if missing) and this process can write in it."""
    problem = _dir_problem(path)
    if problem is not None:
        raise StartupError(f"{what} {path.absolute()} {problem}; {hint}")
