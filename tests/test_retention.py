"""The clock's work and restarts: expiry with a webhook, evidence purge, result deletion, recovery."""

from __future__ import annotations

import time

import numpy as np
import pytest

from server.retention import DAY, run_once
from server.sessions import Status
from tests.support.api import auth
from tests.support.postgres import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def database_url(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return database_for(request)



async def create(http, server, key, **body):
    body.setdefault("reference_id", "r")
    async with http.post(server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        return await response.json()


async def test_expiry_evidence_purge_and_result_deletion(http, server, services, sandbox_key):
    store, settings = services.store, services.settings
    stale = await create(http, server, sandbox_key)
    kept = await create(http, server, sandbox_key)
    store.update_session(stale["id"], expires_at=time.time() - 5)
    store.put_evidence(kept["id"], "reference_face", b"face")
    document = {"type": "td3_mrz", "fields": {"name": {"value": "ZHANG SAN", "confidence": 0.9}}, "checks": [], "expected_matches": {"name": True}}
    store.update_session(kept["id"], document=document, expected={"name": "Zhang San"})

    counts = run_once(settings, store, services.lifecycle)
    assert counts["expired"] == 1 and store.session(stale["id"]).status == Status.EXPIRED
    assert store.evidence_kinds(kept["id"]) == ["reference_face"]

    later = time.time() + settings.retention_days * DAY + 60
    counts = run_once(settings, store, services.lifecycle, now=later)
    assert counts["evidence_purged"] == 1 and store.evidence_kinds(kept["id"]) == []
    assert store.session(kept["id"]).evidence_purged_at is not None
    purged = store.session(kept["id"])  # what the document said goes with the evidence; its outcome stays
    assert purged.document == {**document, "fields": {}} and purged.expected is None
    assert any(e["action"] == "evidence.purged" for e in store.audit_for(kept["id"]))

    much_later = time.time() + settings.result_retention_days * DAY + 60
    counts = run_once(settings, store, services.lifecycle, now=much_later)
    assert store.session(stale["id"]) is None  # a finished result, past result retention


async def test_expiry_notifies_the_merchant(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key, callback_url="http://127.0.0.1:9/hook")
    services.store.update_session(created["id"], expires_at=time.time() - 5)
    services.lifecycle.expire_due()
    events = services.store.webhook_events_for(created["id"])
    assert [e["type"] for e in events] == ["session.expired"]


async def test_a_restart_leaves_no_check_stuck(http, server, services, sandbox_key):
    store, lifecycle = services.store, services.lifecycle
    first = await create(http, server, sandbox_key)
    last = await create(http, server, sandbox_key)
    for session_id, attempts in ((first["id"], 1), (last["id"], 3)):
        for target in (Status.CONSENTED, Status.ID_UPLOADED):
            store.move_session(session_id, store.session(session_id).status, target)
        store.move_session(session_id, Status.ID_UPLOADED, Status.LIVE, attempts=attempts)
    assert lifecycle.recover_interrupted() == 2
    one, two = store.session(first["id"]), store.session(last["id"])
    assert one.status == Status.ID_UPLOADED and one.failure_reason == "interrupted"  # may try again
    assert two.status == Status.ID_UPLOADED and two.failure_reason == "interrupted"  # the last attempt given back
    assert (one.attempts, two.attempts) == (0, 2)


async def test_redaction_erases_evidence_and_confirms_by_webhook(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key, callback_url="http://127.0.0.1:9/hook")
    services.store.put_evidence(created["id"], "reference_embedding", np.zeros(512, np.float32).tobytes())
    async with http.delete(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(sandbox_key)) as response:
        tombstone = await response.json()
    assert tombstone["redacted"] and tombstone["reference_id"] is None and tombstone["status"] == "failed"
    assert services.store.evidence_kinds(created["id"]) == []
    assert [e["type"] for e in services.store.webhook_events_for(created["id"])] == ["session.redacted"]


async def test_redaction_scrubs_the_reference_from_earlier_events(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key, reference_id="customer-secret-7", callback_url="http://127.0.0.1:9/hook")
    services.store.update_session(created["id"], expires_at=time.time() - 5)
    services.lifecycle.expire_due()
    async with http.delete(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(sandbox_key)) as response:
        assert response.status == 200
    rows = services.store.webhook_events_for(created["id"])
    assert len(rows) == 2 and all("customer-secret-7" not in row["body"] for row in rows)
