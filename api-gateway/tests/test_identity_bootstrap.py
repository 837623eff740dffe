"""Bootstrap: roles, admin and demo accounts, generated passwords kept, clouds.yaml."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import yaml
from identity_fixtures import gateway_settings
from sqlalchemy import func, select

from api_gateway.db.models import Project, Role, RoleAssignment, User
from api_gateway.domain.bootstrap import MIGRATIONS, Bootstrap, bootstrap, prepare
from api_gateway.domain.passwords import Passwords
from common_rpc.chassis.db import make_engine, make_sessionmaker
from common_rpc.chassis.migrations import upgrade


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def counts(sessions) -> dict[str, int]:
    async with sessions() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)))
            for model in (Project, User, Role, RoleAssignment)
        }


async def test_generated_passwords_are_kept_and_reused(tmp_path: Path, db_url: str) -> None:
    settings = gateway_settings(tmp_path, db_url, "http://gw.example:8080")
    settings.admin_password = settings.demo_password = ""
    await upgrade(db_url, MIGRATIONS)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        first = await bootstrap(sessions, settings)
        assert first["admin"]["generated"] and first["demo"]["generated"]
        admin_pw = first["admin"]["password"]
        assert len(admin_pw) >= 20 and admin_pw != first["demo"]["password"]
        credentials = tmp_path / "credentials.json"
        assert mode(credentials) == 0o600
        assert json.loads(credentials.read_text()) == {
            "admin": admin_pw,
            "demo": first["demo"]["password"],
        }
        again = await bootstrap(sessions, settings)
        assert not again["admin"]["generated"] and again["admin"]["password"] == admin_pw
        assert again["admin"]["user_id"] == first["admin"]["user_id"]
        assert again["demo"]["project_id"] == first["demo"]["project_id"]
        assert await counts(sessions) == {
            "projects": 2,
            "users": 2,
            "roles": 3,
            "role_assignments": 2,
        }
        async with sessions() as session:
            stored = await session.scalar(select(User.password_hash).where(User.name == "admin"))
        assert await Passwords().verify(stored, admin_pw)
    finally:
        await engine.dispose()


async def test_clouds_yaml(tmp_path: Path, db_url: str) -> None:
    settings = gateway_settings(tmp_path, db_url, "http://gw.example:8080/")
    clouds_file = settings.clouds_yaml_file
    clouds_file.write_text(yaml.safe_dump({"clouds": {"mine": {"auth": {"auth_url": "x"}}}}))
    result = await prepare(settings)
    assert result["clouds_yaml"] == str(clouds_file)
    assert mode(clouds_file) == 0o600
    clouds = yaml.safe_load(clouds_file.read_text())["clouds"]
    assert set(clouds) == {"mine", "stackling-admin", "stackling-demo"}
    assert clouds["stackling-demo"] == {
        "auth": {
            "auth_url": "http://gw.example:8080/identity/v3",
            "username": "demo",
            "project_name": "demo",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "password": settings.demo_password,
        },
        "region_name": "RegionOne",
        "identity_api_version": 3,
        "interface": "public",
    }
    assert clouds["stackling-admin"]["auth"]["password"] == settings.admin_password


async def test_configured_password_is_applied(tmp_path: Path, db_url: str) -> None:
    settings = gateway_settings(tmp_path, db_url, "http://gw.test")
    await prepare(settings)
    settings.admin_password = "rotated"
    result = await prepare(settings)
    assert result["admin"]["password"] == "rotated" and not result["admin"]["generated"]
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            stored = await session.scalar(select(User.password_hash).where(User.name == "admin"))
    finally:
        await engine.dispose()
    assert await Passwords().verify(stored, "rotated")


async def test_replicas_bootstrapping_together(tmp_path: Path, db_url: str) -> None:
    settings = gateway_settings(tmp_path, db_url, "http://gw.test")
    settings.admin_password = ""
    await upgrade(db_url, MIGRATIONS)
    engines = [make_engine(db_url) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(bootstrap(make_sessionmaker(engine), settings) for engine in engines)
        )
        assert len({r["admin"]["user_id"] for r in results}) == 1
        assert len({r["admin"]["password"] for r in results}) == 1
        assert sum(r["admin"]["generated"] for r in results) == 1
        assert (await counts(make_sessionmaker(engines[0])))["users"] == 2
    finally:
        for engine in engines:
            await engine.dispose()


async def test_lifespan_part_announces_generated_passwords_once(
    tmp_path: Path, db_url: str, capsys
) -> None:
    settings = gateway_settings(tmp_path, db_url, "http://gw.test")
    settings.demo_password = ""
    await upgrade(db_url, MIGRATIONS)
    engine = make_engine(db_url)
    try:
        part = Bootstrap(make_sessionmaker(engine), settings)
        await part.start()
        await part.stop()
        assert part.result is not None
        password = part.result["demo"]["password"]
        assert f"generated password for demo: {password}" in capsys.readouterr().out
        await Bootstrap(make_sessionmaker(engine), settings).start()
        assert "generated password" not in capsys.readouterr().out
    finally:
        await engine.dispose()
