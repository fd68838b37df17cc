"""Attacks on what the storage keeps (issue 10, items 5 and 19), against the real server and its real
SQLite file: an attacker with a copy of the data folder (a backup, a stolen disk) reads the raw bytes of
the database and of its -wal/-journal/-shm files.

Large sealed blobs span SQLite overflow pages, so they are looked for as 32-byte pieces: before the
deletion nearly all pieces are on disk (the attack works), after it none may be."""

from __future__ import annotations

import hashlib
import logging
import secrets
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from server.api import auth as api_auth
from server.storage.crypto import Cipher, CryptoKeyError
from server.storage.store import Store
from tests.support.api import auth
from tests.support.media import photo

ID_PHOTO = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
PIECE = 32


def on_disk(database: Path) -> bytes:
    """Everything a copy of the folder holds: the database and any -wal, -journal and -shm file."""
    return b"".join(path.read_bytes() for path in sorted(database.parent.glob(database.name + "*")))


def pieces(blob: bytes) -> list[bytes]:
    return [blob[i : i + PIECE] for i in range(0, max(1, len(blob) - PIECE + 1), PIECE)]


def share_found(blob: bytes, raw: bytes) -> float:
    found = [piece in raw for piece in pieces(blob)]
    return sum(found) / len(found)


def sealed_rows(database: Path, session_id: str) -> dict[str, bytes]:
    """The sealed values as they lie in the file, read the way an attacker would (a separate connection)."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        found = {f"evidence:{kind}": sealed for kind, sealed in db.execute("SELECT kind, sealed FROM evidence WHERE session_id = ?", (session_id,))}
        row = db.execute("SELECT reference_id, callback_url, redirect_url FROM sessions WHERE id = ?", (session_id,)).fetchone()
        found.update(zip(("session:reference_id", "session:callback_url", "session:redirect_url"), row, strict=True))
        for event_id, body in db.execute("SELECT id, body FROM webhook_events WHERE session_id = ?", (session_id,)):
            found[f"webhook:{event_id}:body"] = body
    finally:
        db.close()
    assert all(isinstance(value, bytes) for value in found.values()), found
    return found


async def api(http, server, method, path, key, **kwargs):
    headers = {**auth(key), **kwargs.pop("headers", {})}
    async with http.request(method, server.make_url(path), headers=headers, allow_redirects=False, **kwargs) as response:
        return response.status, await response.json()


async def identifying_session(http, server, services, key) -> tuple[dict, dict[str, str]]:
    """A session with a reference photo (face crop and template stored) and a queued webhook that
    carries the reference: everything item 5's attacker recovered."""
    marker = secrets.token_hex(6)
    customer = {
        "reference_id": f"passport-{marker}",
        "callback_url": f"http://127.0.0.1:9/hooks/{marker}",
        "redirect_url": f"https://shop.example/done/{marker}",
    }
    status, created = await api(http, server, "POST", "/api/v1/sessions", key, json=customer)
    assert status == 201, created
    status, data = await api(
        http, server, "POST", f"/api/v1/sessions/{created['id']}/reference-photo", key,
        data=photo(ID_PHOTO).read_bytes(), headers={"Content-Type": "image/jpeg"},
    )
    assert status == 200, data
    # Let it expire, so a session.expired event with the reference_id in its body is queued.
    services.store.update_session(created["id"], expires_at=time.time() - 1)
    status, data = await api(http, server, "GET", f"/api/v1/sessions/{created['id']}", key)
    assert status == 200 and data["status"] == "expired" and data["webhooks"], data
    return created, customer


# -- item 5: deleted evidence must not survive in the write-ahead log -------------------------------


@pytest.mark.parametrize("checkpointed_before", [False, True], ids=["evidence-in-wal", "evidence-in-db-file"])
async def test_deleted_evidence_is_gone_from_every_file(http, server, services, settings, sandbox_key, checkpointed_before):
    created, customer = await identifying_session(http, server, services, sandbox_key)
    database = settings.database_path
    face = services.store.evidence(created["id"], "reference_face")
    sealed = sealed_rows(database, created["id"])
    assert {"evidence:reference_face", "evidence:reference_embedding"} <= set(sealed)
    if checkpointed_before:  # the evidence has reached the database file itself, not only the log
        db = sqlite3.connect(database)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()

    before = on_disk(database)
    for name, blob in sealed.items():
        assert share_found(blob, before) > 0.9, f"{name} should be on disk before the deletion"

    status, tomb = await api(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200 and tomb["redacted"] is True

    after = on_disk(database)
    assert len(after) > 10_000  # the database is still there, it just forgot
    assert not database.with_name(database.name + "-wal").exists() or database.with_name(database.name + "-wal").stat().st_size < 1024 * 1024
    for name, blob in sealed.items():
        assert share_found(blob, after) == 0, f"{name} survived the deletion"
    for text in customer.values():
        assert text.encode() not in after
    assert share_found(face, after) == 0


async def test_evidence_purged_by_retention_is_gone_from_every_file(http, server, services, settings, sandbox_key):
    created, _ = await identifying_session(http, server, services, sandbox_key)
    sealed = sealed_rows(settings.database_path, created["id"])
    evidence = [blob for name, blob in sealed.items() if name.startswith("evidence:")]
    assert services.store.purge_evidence_before(time.time() + 1) == [created["id"]]
    after = on_disk(settings.database_path)
    assert evidence and all(share_found(blob, after) == 0 for blob in evidence)


async def test_the_evidence_key_can_live_outside_the_data_folder(aiohttp_server, make_app, settings, tmp_path, caplog):
    key_file = tmp_path / "elsewhere" / "evidence.key"
    with caplog.at_level(logging.WARNING, logger="server.storage.crypto"):
        await aiohttp_server(make_app(settings.replace(evidence_key_file=str(key_file))))
    assert key_file.is_file() and not (settings.data_path / "evidence.key").exists()
    assert not [r for r in caplog.records if "evidence key" in r.getMessage()]


async def test_a_key_inside_the_data_folder_is_warned_about_without_showing_it(aiohttp_server, make_app, settings, caplog):
    with caplog.at_level(logging.WARNING, logger="server.storage.crypto"):
        await aiohttp_server(make_app(settings))
    key_text = (settings.data_path / "evidence.key").read_text().strip()
    [warning] = [r.getMessage() for r in caplog.records if "evidence key" in r.getMessage()]
    assert "inside the data folder" in warning and "REALNAME_EVIDENCE_KEY_FILE" in warning
    assert key_text not in caplog.text


# -- item 19: what identifies a customer is not plaintext at rest ----------------------------------


async def test_a_stolen_database_without_the_key_names_no_customer(http, server, services, settings, sandbox_key, tmp_path):
    created, customer = await identifying_session(http, server, services, sandbox_key)
    [event] = services.store.webhook_events_for(created["id"])
    assert customer["reference_id"] in event["body"]  # the queued webhook carries it, sealed

    stolen = tmp_path / "stolen"
    stolen.mkdir()
    for path in settings.database_path.parent.glob(settings.database_path.name + "*"):
        shutil.copy(path, stolen / path.name)
    raw = on_disk(stolen / settings.database_path.name)
    assert len(raw) > 10_000
    for text in customer.values():
        assert text.encode() not in raw, text
    assert b'"reference_id":"' not in raw  # no webhook body in clear
    assert hashlib.sha256(customer["reference_id"].encode()).hexdigest().encode() not in raw  # the lookup hash is keyed

    # The service's own code, given any other key, refuses the copy rather than returning garbage.
    with pytest.raises(CryptoKeyError):
        Store(stolen / settings.database_path.name, Cipher(secrets.token_bytes(32)))
    # The service itself still reads it, and finds it by reference.
    key = api_auth.find_active_key(services.store, sandbox_key[:14])
    assert [s.id for s in services.store.sessions_by_reference(key.merchant_id, customer["reference_id"])] == [created["id"]]
