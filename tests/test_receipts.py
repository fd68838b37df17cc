"""Signed receipts of real decisions: verified offline by `verify-receipt` and by a standard JOSE library
(PyJWT), refused once altered, still verifiable after a key rotation, carried by the webhook."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import jwt
import pytest

from realname_tools.client import ClipTrack
from server.receipts.claims import reference_sha256
from tests.support.media import ROOT
from tests.support.waiting import eventually
from tests.test_live_flow import BLINK_ID, blink_clip, ready_for_live, session_json  # noqa: F401 (fixture)


def cli(*args: str, data_dir=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if data_dir is not None:
        env["REALNAME_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


async def jwks_of(http, server) -> dict:
    async with http.get(server.make_url("/.well-known/jwks.json")) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
        return await response.json()


def with_pyjwt(receipt: str, jwks: dict) -> dict:
    """What a merchant would write with a standard JOSE library: pick the key by kid, verify EdDSA."""
    kid = jwt.get_unverified_header(receipt)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid].key
    return jwt.decode(receipt, key=key, algorithms=["EdDSA"], options={"verify_aud": False})


def tampered(receipt: str) -> str:
    """One byte of the payload changed (a decision or a score edited after signing)."""
    head, payload, signature = receipt.split(".")
    middle = len(payload) // 2
    changed = "A" if payload[middle] != "A" else "B"
    return f"{head}.{payload[:middle]}{changed}{payload[middle + 1:]}.{signature}"


@pytest.fixture
async def decided(http, server, services, sandbox_key, blink_clip):  # noqa: F811
    """A session approved through the real live flow (WebRTC, liveness, PAD, face match)."""
    created, customer = await ready_for_live(
        http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"], callback_url="http://127.0.0.1:9/hook"
    )
    run = await customer.start_live(ClipTrack(*blink_clip))
    result = await customer.wait_result(run, timeout=60)
    await customer.close()
    assert result is not None and result["status"] == "approved"
    assert await eventually(lambda: not services.attempts.live)
    return await session_json(http, server, sandbox_key, created["id"])


async def test_a_real_decision_carries_a_receipt_that_verifies_offline(http, server, services, models, decided, tmp_path):
    receipt = decided["receipt"]
    assert receipt and receipt.count(".") == 2
    jwks = await jwks_of(http, server)
    assert all("d" not in key for key in jwks["keys"])  # never the private part
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "receipt.jws").write_text(receipt)

    done = cli("verify-receipt", str(tmp_path / "receipt.jws"), "--jwks", str(tmp_path / "jwks.json"))
    assert done.returncode == 0, done.stderr
    claims = json.loads(done.stdout)["claims"]
    assert claims == with_pyjwt(receipt, jwks)
    assert claims["sub"] == decided["id"] and claims["decision"] == "approved" and claims["reasons"] == []
    assert claims["reference_sha256"] == reference_sha256(decided["id"], "customer-42")
    assert claims["merchant"]["name"] == decided["merchant_name"]
    assert claims["challenges"] == [{"type": "blink", "passed": True}]
    match = claims["scores"]["match"]
    assert match["score"] == decided["match"]["score"] and match["threshold"] == decided["match"]["threshold"]
    assert claims["path"] == decided["liveness"]["path"]
    assert claims["consent"]["version"] == decided["consent"]["version"]
    assert {m["role"] for m in claims["models"]} >= {"landmarker", "detector", "embedder"}
    if models.pad is not None:
        assert claims["scores"]["pad"]["score"] is not None and claims["scores"]["pad"]["thresholds"]["attack"] > 0
        assert claims["anti_spoofing"]["loaded"] is True
    # The hashes are those of the sealed evidence as stored.
    _merchant, stored = services.store.receipt_facts(decided["id"])
    assert claims["evidence_sha256"] == stored and "live_face_0" in stored and "reference_face" in stored
    assert json.dumps(claims).find("customer-42") == -1  # the reference itself is not in it

    # The webhook carries the very same receipt.
    (event,) = services.store.webhook_events_for(decided["id"])
    assert json.loads(event["body"])["data"]["session"]["receipt"] == receipt

    # One payload byte changed: both verifiers refuse it.
    (tmp_path / "bad.jws").write_text(tampered(receipt))
    done = cli("verify-receipt", str(tmp_path / "bad.jws"), "--jwks", str(tmp_path / "jwks.json"))
    assert done.returncode == 1 and "INVALID" in done.stderr and done.stdout == ""
    with pytest.raises(jwt.InvalidTokenError):
        with_pyjwt(tampered(receipt), jwks)


async def test_rotation_keeps_old_receipts_verifiable(http, server, services, settings, decided, tmp_path):
    old_receipt, old_jwks = decided["receipt"], await jwks_of(http, server)
    done = cli("receipts", "rotate-key", data_dir=settings.data_dir)
    assert done.returncode == 0, done.stderr
    new_jwks = await jwks_of(http, server)  # the running service reads the rotated keyring
    assert len(new_jwks["keys"]) == 2 and old_jwks["keys"][0] in new_jwks["keys"]
    assert with_pyjwt(old_receipt, new_jwks)["sub"] == decided["id"]
    # A new decision (an operator settles nothing here: the receipt is issued again) uses the new key.
    session = services.store.session(decided["id"])
    fresh = services.lifecycle.receipts.issue(session)
    assert jwt.get_unverified_header(fresh)["kid"] == new_jwks["keys"][0]["kid"] != jwt.get_unverified_header(old_receipt)["kid"]
    (tmp_path / "old.jws").write_text(old_receipt)
    (tmp_path / "jwks.json").write_text(json.dumps(new_jwks))
    assert cli("verify-receipt", str(tmp_path / "old.jws"), "--jwks", str(tmp_path / "jwks.json")).returncode == 0
    # Without --jwks it verifies against the service's own keyring.
    assert cli("verify-receipt", str(tmp_path / "old.jws"), data_dir=settings.data_dir).returncode == 0


async def test_an_unknown_key_is_refused(http, server, decided, tmp_path):
    (tmp_path / "receipt.jws").write_text(decided["receipt"])
    (tmp_path / "other.json").write_text(json.dumps({"keys": []}))
    done = cli("verify-receipt", str(tmp_path / "receipt.jws"), "--jwks", str(tmp_path / "other.json"))
    assert done.returncode == 1 and "no key" in done.stderr


def test_claims_hash_the_reference_with_the_session_id():
    assert reference_sha256("ses_1", "r") == hashlib.sha256(b"ses_1\0r").hexdigest()
    assert reference_sha256("ses_1", None) is None
    assert reference_sha256("ses_2", "r") != reference_sha256("ses_1", "r")

