"""Optional API extensions and host drivers, found by Python entry points and chosen in settings.

A third party adds an extension or a driver by installing a package, never by editing a
service (the way OpenStack used stevedore). The package declares, in its pyproject:

    [project.entry-points."stackling.network.extensions"]
    qos = "stackling_qos:extension"          # an Extension: alias, name, ..., router
    [project.entry-points."stackling.network.drivers"]
    "l2.ovs" = "stackling_ovs:OvsL2Driver"    # "<kind>.<name>": a class or factory

and the service loads what its settings name (``NETWORK_EXTENSIONS='["qos"]'``,
``NETWORK_DRIVERS='{"l2": "ovs"}'``):

    exts = load_extensions("network", settings.extensions)   # PluginError if one is missing
    mount_extensions(app, exts, prefix="/v2.0")               # routers + GET /v2.0/extensions
    driver_cls = load_driver("network", "l2", settings.drivers.get("l2", "linux"))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from fastapi import APIRouter, FastAPI

from ..errors import NotFound

EXTENSIONS_GROUP = "stackling.{service}.extensions"
DRIVERS_GROUP = "stackling.{service}.drivers"


class PluginError(RuntimeError):
    """A configured extension or driver is not installed or not usable (a start-up error)."""


@dataclass(frozen=True)
class Extension:
    """An optional API: what ``GET /extensions`` lists, and the routes it adds (if any)."""

    alias: str
    name: str
    description: str
    updated: str  # ISO 8601, as OpenStack lists it
    router: APIRouter | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "name": self.name,
            "description": self.description,
            "updated": self.updated,
            "links": [],
        }


def load_extensions(service: str, names: Iterable[str]) -> list[Extension]:
    """The extensions ``names`` of ``service``, in order; PluginError names what is missing."""
    group = EXTENSIONS_GROUP.format(service=service)
    loaded: list[Extension] = []
    for name in dict.fromkeys(names):
        loaded.append(_as_extension(_load(group, "", name, "extension"), f"{group}:{name}"))
    aliases = [ext.alias for ext in loaded]
    duplicates = sorted({a for a in aliases if aliases.count(a) > 1})
    if duplicates:
        raise PluginError(f"{group}: more than one extension has the alias {duplicates}")
    return loaded


def load_driver(service: str, kind: str, name: str) -> Any:
    """The driver class (or factory) ``name`` of ``kind`` for ``service``."""
    group = DRIVERS_GROUP.format(service=service)
    return _load(group, f"{kind}.", name, f"{kind} driver")


def extensions_document(exts: Iterable[Extension]) -> dict[str, Any]:
    """``{"extensions": [{"alias", "name", "description", "updated", "links"}]}``."""
    return {"extensions": [ext.describe() for ext in exts]}


def mount_extensions(
    app: FastAPI,
    exts: Sequence[Extension],
    prefix: str = "",
    *,
    builtin: Sequence[Extension] = (),
) -> None:
    """Include each extension's router and serve ``GET {prefix}/extensions[/{alias}]``.

    ``builtin`` lists what the service itself implements (OpenStack clients look for
    aliases such as ``security-group``): it is listed, never routed.
    """
    for ext in exts:
        if ext.router is not None:
            app.include_router(ext.router, prefix=prefix)
    app.include_router(extensions_router([*builtin, *exts]), prefix=prefix)
    app.state.extensions = list(exts)


def extensions_router(exts: Sequence[Extension]) -> APIRouter:
    router = APIRouter(tags=["extensions"])
    by_alias = {ext.alias: ext for ext in exts}

    @router.get("/extensions")
    async def list_extensions() -> dict[str, Any]:
        return extensions_document(exts)

    @router.get("/extensions/{alias}")
    async def show_extension(alias: str) -> dict[str, Any]:
        ext = by_alias.get(alias)
        if ext is None:
            raise NotFound(f"Extension {alias} could not be found.")
        return {"extension": ext.describe()}

    return router


def _load(group: str, prefix: str, name: str, what: str) -> Any:
    """The object behind entry point ``prefix + name`` of ``group``."""
    found = [ep for ep in entry_points(group=group) if ep.name == prefix + name]
    if not found:
        raise PluginError(
            f"{what} {name!r} is not installed (entry point {prefix}{name} in group {group}); "
            f"installed: {', '.join(_installed(group, prefix)) or 'none'}"
        )
    if len(found) > 1:
        raise PluginError(
            f"{what} {name!r} is provided by more than one package ({_providers(found)})"
        )
    try:
        return found[0].load()
    except Exception as exc:
        raise PluginError(f"{what} {name!r} ({found[0].value}) failed to load: {exc}") from exc


def _installed(group: str, prefix: str) -> list[str]:
    names = (ep.name for ep in entry_points(group=group))
    return sorted({n.removeprefix(prefix) for n in names if n.startswith(prefix)})


def _providers(found: list[EntryPoint]) -> str:
    return ", ".join(sorted(ep.dist.name if ep.dist else ep.value for ep in found))


def _as_extension(obj: Any, where: str) -> Extension:
    """An ``Extension`` from any object with the attributes (a module, a namespace...)."""
    if isinstance(obj, Extension):
        ext = obj
    else:
        missing = [a for a in ("alias", "name", "description", "updated") if not hasattr(obj, a)]
        if missing:
            raise PluginError(f"{where} is not an extension: it lacks {', '.join(missing)}")
        ext = Extension(
            alias=str(obj.alias),
            name=str(obj.name),
            description=str(obj.description),
            updated=str(obj.updated),
            router=getattr(obj, "router", None),
        )
    if ext.router is not None and not isinstance(ext.router, APIRouter):
        raise PluginError(f"{where}: router must be a FastAPI APIRouter")
    try:
        datetime.fromisoformat(ext.updated)
    except ValueError:
        raise PluginError(f"{where}: updated {ext.updated!r} is not an ISO 8601 date") from None
    return ext
