"""Merchant accounts own sessions and keys (issue 10, items 17 and 18), attacked through the real API,
the real hosted pages and the real CLI on a real SQLite file."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from server.api import auth as api_auth
from server.cli import main as cli
from server.web.i18n import messages
from tests.support.api import auth


async def call(http, server, method, path, key, **kwargs):
    headers = {**auth(key), **kwargs.pop("headers", {})}
    async with http.request(method, server.make_url(path), headers=headers, allow_redirects=False, **kwargs) as response:
        return response.status, await response.json()


async def create(http, server, key, **body):
    body.setdefault("reference_id", "order-17")
    status, data = await call(http, server, "POST", "/api/v1/sessions", key, json=body)
    assert status == 201, data
    return data


async def open_as_customer(http, link: str) -> list[str]:
    """The pages a customer sees from the link to the consent step (a start page is claimed by a POST)."""
    async with http.get(link) as response:
        pages = [await response.text()]
    if 'method="post"' in pages[0] and f'action="{urlsplit(link).path}"' in pages[0]:
        async with http.post(link) as response:
            pages.append(await response.text())
    return pages


# -- item 17: revocation, rotation, ownership ----------------------------------------------------------


async def test_revoking_a_key_leaves_its_sessions_to_the_merchants_other_key(http, server, services):
    old_key, _ = api_auth.create_api_key(services.store, "Acme", sandbox=True)
    new_key, _ = api_auth.create_api_key(services.store, "Acme", sandbox=True)  # rotation: a second key first
    created = await create(http, server, old_key)

    revocation = api_auth.revoke_api_key(services.store, old_key[:14])
    assert (revocation.open_sessions, revocation.other_active_keys) == (1, 1)

    assert (await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", old_key))[0] == 401
    status, data = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", new_key)
    assert status == 200 and data["reference_id"] == "order-17" and data["status"] == "created"
    # The customer's link still works ...
    pages = await open_as_customer(http, created["url"])
    assert "Acme" in pages[-1]
    # ... and the merchant can still erase the session with its other key.
    status, tomb = await call(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", new_key)
    assert status == 200 and tomb["redacted"] is True


async def test_two_merchants_never_see_each_others_sessions(http, server, services):
    mine, _ = api_auth.create_api_key(services.store, "Acme", sandbox=True)
    theirs, _ = api_auth.create_api_key(services.store, "Zeta", sandbox=True)
    created = await create(http, server, mine)
    for method in ("GET", "DELETE"):
        status, problem = await call(http, server, method, f"/api/v1/sessions/{created['id']}", theirs)
        assert status == 404 and problem["code"] == "not_found"
    status, _ = await call(
        http, server, "POST", f"/api/v1/sessions/{created['id']}/reference-photo", theirs, data=b"x", headers={"Content-Type": "image/jpeg"}
    )
    assert status == 404
    # Even once every key of the owner is revoked, the other merchant gets nothing.
    api_auth.revoke_api_key(services.store, mine[:14])
    assert (await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", theirs))[0] == 404
    assert services.store.session(created["id"]).redacted_at is None


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_data(tmp_path, monkeypatch):
    monkeypatch.setenv("REALNAME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REALNAME_EVIDENCE_KEY_FILE", str(tmp_path / "keys" / "evidence.key"))
    return tmp_path


def test_cli_refuses_an_ambiguous_revocation_and_says_what_happens_to_open_sessions(cli_data, capsys):
    for merchant in ("acme", "zeta"):
        assert run_cli(capsys, "merchants", "create", merchant, "--display-name", merchant.title())[0] == 0
        code, out, _ = run_cli(capsys, "keys", "create", "--merchant", merchant, "--name", "main", "--json")
        assert code == 0 and json.loads(out)["name"] == "main"
    code, out, err = run_cli(capsys, "keys", "create", "--merchant", "acme", "--name", "main")
    assert code == 2 and "already has a key named 'main'" in err
    assert run_cli(capsys, "keys", "create", "--merchant", "nobody")[0] == 2  # no account made up by a typo

    # The name is not unique across merchants: nothing is revoked.
    code, out, err = run_cli(capsys, "keys", "revoke", "main")
    assert code == 2 and "matches 2 active keys" in err
    code, out, _ = run_cli(capsys, "keys", "list", "--json")
    assert [k["revoked"] for k in json.loads(out)] == [False, False]

    code, out, _ = run_cli(capsys, "keys", "revoke", "main", "--merchant", "acme")
    assert code == 0 and "last active key" in out and "keys create --merchant 'acme'" in out
    code, out, _ = run_cli(capsys, "keys", "list", "--json")
    assert [(k["merchant"], k["revoked"]) for k in json.loads(out)] == [("acme", True), ("zeta", False)]

    # With another key left, the merchant is told its sessions stay readable.
    assert run_cli(capsys, "keys", "create", "--merchant", "zeta", "--sandbox")[0] == 0
    code, out, _ = run_cli(capsys, "keys", "list", "--json")
    prefix = json.loads(out)[1]["prefix"]
    code, out, _ = run_cli(capsys, "keys", "revoke", prefix)
    assert code == 0 and "0 open session(s) it created keep working; the merchant's 1 other active key(s) can still read and erase them" in out

    code, out, _ = run_cli(capsys, "merchants", "list", "--json")
    assert [{k: row[k] for k in ("name", "display_name", "active_keys", "retention")} for row in json.loads(out)] == [
        {"name": "acme", "display_name": "Acme", "active_keys": 0, "retention": "standard"},
        {"name": "zeta", "display_name": "Zeta", "active_keys": 1, "retention": "standard"},
    ]
    assert not (cli_data / "data" / "evidence.key").exists()  # the key lives where the setting says


# -- item 18: the brand on the hosted pages ------------------------------------------------------------


async def test_the_hosted_pages_show_the_accounts_display_name_not_the_one_in_the_request(http, server, services):
    merchant = services.store.create_merchant("acme-mobile", "Acme Mobile")
    key, _ = api_auth.create_api_key(services.store, merchant, sandbox=False)
    status, refused = await call(http, server, "POST", "/api/v1/sessions", key, json={"reference_id": "order-17", "merchant_name": "Evil Bank"})
    assert status == 422 and refused["code"] == "invalid_fields" and refused["errors"][0]["field"] == "merchant_name"
    created = await create(http, server, key)
    assert created["merchant_name"] == "Acme Mobile"

    pages = await open_as_customer(http, created["url"])
    assert messages("en")["consent.intro"].format(merchant="Acme Mobile") in pages[-1]  # the consent step, in the account's name
    for page in pages:
        assert "Acme Mobile" in page and "Evil Bank" not in page
    status, data = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", key)
    assert status == 200 and data["merchant_name"] == "Acme Mobile" and "Evil Bank" not in json.dumps(data)
