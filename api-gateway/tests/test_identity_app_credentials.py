"""Application credentials: made by a user with some of its token's roles, the secret shown
once, and tokens got with them (by id or by name and user) that never hold more than the
user does; over HTTP, then with the openstack CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from identity_fixtures import DEMO_PASSWORD, Gateway, LiveGateway, openstack_cli, password_auth
from test_identity_admin import admin_headers, fault, ok

V3 = "/identity/v3"


def credential_auth(secret: str, **ref: object) -> dict[str, object]:
    method = {"secret": secret, **ref}
    return {
        "auth": {
            "identity": {"methods": ["application_credential"], "application_credential": method}
        }
    }


async def test_create_list_show_delete(gateway: Gateway) -> None:
    http = gateway.http
    demo = gateway.accounts["demo"]
    member = {"X-Auth-Token": await gateway.demo_token()}
    base = f"{V3}/users/{demo['user_id']}/application_credentials"
    made = ok(
        await http.post(base, json={"application_credential": {"name": "ci"}}, headers=member),
        201,
    )["application_credential"]
    assert len(made["secret"]) >= 64
    assert made["project_id"] == demo["project_id"] and made["unrestricted"] is False
    assert [r["name"] for r in made["roles"]] == ["member", "reader"]  # the token's roles
    assert made["links"]["self"].endswith(f"{base}/{made['id']}")
    shown = ok(await http.get(f"{base}/{made['id']}", headers=member))["application_credential"]
    assert "secret" not in shown
    assert shown == {key: value for key, value in made.items() if key != "secret"}
    listed = ok(await http.get(base, params={"name": "ci"}, headers=member))
    assert [c["id"] for c in listed["application_credentials"]] == [made["id"]]
    assert "secret" not in listed["application_credentials"][0]

    body = {"application_credential": {"name": "ci"}}
    fault(await http.post(base, json=body, headers=member), 409)
    more = {"application_credential": {"name": "root", "roles": [{"name": "admin"}]}}
    fault(await http.post(base, json=more, headers=member), 404)  # not a role it holds
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = {"application_credential": {"name": "old", "expires_at": past}}
    fault(await http.post(base, json=expired, headers=member), 400)
    login = password_auth("demo", DEMO_PASSWORD)
    login["auth"]["scope"] = "unscoped"
    reply = await http.post(f"{V3}/auth/tokens", json=login)
    unscoped = {"X-Auth-Token": ok(reply, 201) and reply.headers["X-Subject-Token"]}
    fault(
        await http.post(base, json={"application_credential": {"name": "u"}}, headers=unscoped), 400
    )
    # Only for oneself, even an admin; an admin may read and delete them.
    admin = await admin_headers(gateway)
    fault(await http.post(base, json={"application_credential": {"name": "a"}}, headers=admin), 403)
    admin_base = f"{V3}/users/{gateway.accounts['admin']['user_id']}/application_credentials"
    fault(await http.get(admin_base, headers=member), 403)
    ok(await http.get(f"{base}/{made['id']}", headers=admin))
    ok(await http.delete(f"{base}/{made['id']}", headers=admin), 204)
    fault(await http.get(f"{base}/{made['id']}", headers=member), 404)
    fault(await http.delete(f"{base}/{made['id']}", headers=member), 404)


async def test_authenticate_with_a_credential(gateway: Gateway) -> None:
    http = gateway.http
    demo = gateway.accounts["demo"]
    member = {"X-Auth-Token": await gateway.demo_token()}
    base = f"{V3}/users/{demo['user_id']}/application_credentials"
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    body = {
        "application_credential": {
            "name": "reader-ci",
            "secret": "chosen-secret",
            "roles": [{"name": "reader"}],
            "expires_at": soon.isoformat().replace("+00:00", ""),  # naive: UTC
        }
    }
    made = ok(await http.post(base, json=body, headers=member), 201)["application_credential"]
    assert made["secret"] == "chosen-secret"
    assert made["expires_at"] == soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    reply = await http.post(
        f"{V3}/auth/tokens", json=credential_auth("chosen-secret", id=made["id"])
    )
    token = ok(reply, 201)["token"]
    assert token["methods"] == ["application_credential"]
    assert token["project"]["id"] == demo["project_id"]
    assert [r["name"] for r in token["roles"]] == ["reader"]  # only the credential's
    assert token["application_credential"] == {
        "id": made["id"],
        "name": "reader-ci",
        "restricted": True,
    }
    assert token["expires_at"] == made["expires_at"]  # never outlives the credential
    assert any(s["type"] == "compute" for s in token["catalog"])
    secret = reply.headers["X-Subject-Token"]
    by_name = credential_auth(
        "chosen-secret", name="reader-ci", user={"name": "demo", "domain": {"name": "Default"}}
    )
    ok(await http.post(f"{V3}/auth/tokens", json=by_name), 201)
    scoped = credential_auth("chosen-secret", id=made["id"])
    scoped["auth"]["scope"] = {"project": {"id": demo["project_id"]}}  # type: ignore[index]
    for refused in (
        credential_auth("wrong", id=made["id"]),
        credential_auth("chosen-secret", id="nope"),
        scoped,  # a credential's scope is its own
    ):
        fault(await http.post(f"{V3}/auth/tokens", json=refused), 401)

    # A restricted credential's token may not manage credentials.
    restricted = {"X-Auth-Token": secret}
    more = {"application_credential": {"name": "more"}}
    assert "not allowed" in fault(await http.post(base, json=more, headers=restricted), 403)
    fault(await http.delete(f"{base}/{made['id']}", headers=restricted), 403)

    # Deleting the credential ends its tokens.
    ok(await http.delete(f"{base}/{made['id']}", headers=member), 204)
    assert await gateway.tokens.validate(secret) is None
    fault(
        await http.post(f"{V3}/auth/tokens", json=credential_auth("chosen-secret", id=made["id"])),
        401,
    )


async def test_credential_tokens_follow_the_users_roles(gateway: Gateway) -> None:
    """A role taken from the user is taken from the tokens of its credentials."""
    http = gateway.http
    admin = await admin_headers(gateway)
    demo_project = gateway.accounts["demo"]["project_id"]
    body = {"user": {"name": "cred-user", "password": "cred-pw"}}
    user_id = ok(await http.post(f"{V3}/users", json=body, headers=admin), 201)["user"]["id"]
    roles = ok(await http.get(f"{V3}/roles", headers=admin))["roles"]
    role_ids = {r["name"]: r["id"] for r in roles}
    grant = f"{V3}/projects/{demo_project}/users/{user_id}/roles"
    ok(await http.put(f"{grant}/{role_ids['member']}", headers=admin), 204)
    login = await http.post(f"{V3}/auth/tokens", json=password_auth("cred-user", "cred-pw", "demo"))
    user_token = {"X-Auth-Token": ok(login, 201) and login.headers["X-Subject-Token"]}
    base = f"{V3}/users/{user_id}/application_credentials"
    made = ok(
        await http.post(
            base,
            json={"application_credential": {"name": "c", "unrestricted": True}},
            headers=user_token,
        ),
        201,
    )["application_credential"]
    reply = await http.post(
        f"{V3}/auth/tokens", json=credential_auth(made["secret"], id=made["id"])
    )
    secret = ok(reply, 201) and reply.headers["X-Subject-Token"]
    auth = await gateway.tokens.validate(secret)
    assert auth is not None and auth.roles == {"member", "reader"} and not auth.restricted
    # Demoted to reader: the credential's token keeps only reader.
    ok(await http.put(f"{grant}/{role_ids['reader']}", headers=admin), 204)
    ok(await http.delete(f"{grant}/{role_ids['member']}", headers=admin), 204)
    auth = await gateway.tokens.validate(secret)
    assert auth is not None and auth.roles == {"reader"}
    # No role left on the project: the token is no longer valid.
    ok(await http.delete(f"{grant}/{role_ids['reader']}", headers=admin), 204)
    assert await gateway.tokens.validate(secret) is None
    # The user goes: its credentials go too.
    ok(await http.delete(f"{V3}/users/{user_id}", headers=admin), 204)
    fault(
        await http.post(f"{V3}/auth/tokens", json=credential_auth(made["secret"], id=made["id"])),
        401,
    )


def test_application_credential_commands(live_gateway: LiveGateway) -> None:
    def cli(*args: str) -> object:
        return openstack_cli(live_gateway, *args, cloud="stackling-demo")

    made = cli("application", "credential", "create", "--role", "reader", "cli-cred", "-f", "json")
    assert made["Name"] == "cli-cred" and made["Secret"]
    assert [r["name"] for r in made["Roles"]] == ["reader"]
    made_id, secret = made["ID"], made["Secret"]
    listed = cli("application", "credential", "list", "-f", "json")
    assert [c["ID"] for c in listed] == [made_id]
    shown = cli("application", "credential", "show", "cli-cred", "-f", "json")
    assert shown["ID"] == made_id and shown.get("Secret") is None
    # Authenticate with it: no password, no project named.
    args = [
        "--os-auth-type", "v3applicationcredential",
        "--os-auth-url", live_gateway.url + "/identity/v3",
        "--os-application-credential-id", made_id,
        "--os-application-credential-secret", secret,
        "token", "issue", "-f", "json",
    ]  # fmt: skip
    issued = openstack_cli(live_gateway, *args, cloud="")
    assert issued["project_id"] == live_gateway.accounts["demo"]["project_id"]
    cli("application", "credential", "delete", "cli-cred")
    assert cli("application", "credential", "list", "-f", "json") == []
    refused = openstack_cli(live_gateway, *args, cloud="", check=False)
    assert refused.returncode != 0 and "401" in refused.stderr
