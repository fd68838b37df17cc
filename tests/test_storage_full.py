"""A full disk under the SQLite default: the write is undone and said clearly (507 `storage_full`, with
Retry-After, to the API and on the customer's page), the database stays whole and works again once there
is room. SQLite's `max_page_count` makes it full here: SQLITE_FULL, as a full disk gives."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from realname_tools.client import HostedFlowClient
from tests.support.media import photo

LOCALES = Path(__file__).resolve().parents[1] / "server" / "web" / "locales"
ID_PHOTO = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
pytestmark = pytest.mark.media


async def test_a_full_disk_answers_507_storage_full_and_keeps_the_database_whole(server, services, sandbox_key):
    db = services.store._db
    headers = {"Authorization": f"Bearer {sandbox_key}"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(server.make_url("/api/v1/sessions"), json={"reference_id": "before"}, headers=headers) as response:
            created = await response.json()
        customer = HostedFlowClient(http, str(server.make_url("/")))
        assert await customer.open(created["url"]) == 303 and await customer.consent() == 303

        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        status, page = await customer.upload_document(photo(ID_PHOTO).read_bytes())  # the evidence write
        assert status == 507 and "Traceback" not in page
        text = json.loads((LOCALES / "en.json").read_text(encoding="utf-8"))["error.storage_full"]
        assert text.split("(")[0].strip() in page
        assert not db.in_transaction  # undone, and no lock kept
        for index in range(500):  # the API, until the pages there are hold no more
            async with http.post(server.make_url("/api/v1/sessions"), json={"reference_id": f"filling-{index}" * 8}, headers=headers) as response:
                status, body, retry_after = response.status, await response.text(), response.headers.get("Retry-After")
            if status != 201:
                break
        assert status == 507, body
        assert json.loads(body)["code"] == "storage_full" and int(retry_after or 0) >= 1

        db.execute("PRAGMA max_page_count = 1073741823")  # room again: the customer goes on
        status, page = await customer.upload_document(photo(ID_PHOTO).read_bytes())
        assert status == 303, page
    assert services.store.session(created["id"]).status.value == "id_uploaded"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
