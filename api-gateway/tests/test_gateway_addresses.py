"""IPv6 addresses the gateway echoes (catalog, version links, clouds.yaml) are canonical
(RFC 5952), however the operator wrote them in its settings."""

from __future__ import annotations

from pathlib import Path

import yaml
from identity_fixtures import ADMIN_PASSWORD, build_app, gateway_settings, password_auth

from api_gateway.domain.bootstrap import bootstrap
from api_gateway.settings import GatewaySettings
from common_rpc.testing import running_app


async def test_catalog_links_and_clouds_yaml_show_canonical_ipv6(tmp_path: Path) -> None:
    written = gateway_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/gateway.db", "")
    settings = GatewaySettings(
        **written.model_dump()
        | {"public_url": "http://[0:0:0:0:0:0:0:1]:8080", "compute_urls": ["http://[::0001]:8774"]}
    )
    assert settings.public_url == "http://[::1]:8080"
    assert settings.compute_urls == ["http://[::1]:8774"]
    app = build_app(settings)
    async with running_app(app, base_url="http://[::1]:8080") as http:
        await bootstrap(app.state.runtime.sessions, settings)
        reply = await http.post(
            "/identity/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD, "admin")
        )
        assert reply.status_code == 201, reply.text
        urls = [
            endpoint["url"]
            for service in reply.json()["token"]["catalog"]
            for endpoint in service["endpoints"]
        ]
        assert urls and all(url.startswith("http://[::1]:8080/") for url in urls), urls
        version = (await http.get("/identity/v3")).json()["version"]
        assert version["links"][0]["href"].startswith("http://[::1]:8080/identity/v3")
    clouds = yaml.safe_load(settings.clouds_yaml_file.read_text())["clouds"]
    assert clouds["stackling-admin"]["auth"]["auth_url"] == "http://[::1]:8080/identity/v3"
