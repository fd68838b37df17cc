"""Anti-spoofing on by default: `models install` gets the PAD models or says in one line how to import
them; `models import-pad` refuses altered files; without PAD a passed live-key check goes to review
(`pad_unavailable`) unless the operator opts out; sandbox keys are not held back.

The decision tests drive the real app's decision step (real stored reference, real face models, real
store) with a passed liveness result: an aiortc clip sender's frame timestamps are perfectly regular, which
already sends a live-key check to review (`timing_too_regular`), so it cannot show the PAD policy alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace

import cv2
import jwt
import pytest

from server.app import create_app
from server.http.services import SERVICES
from server.liveness.challenges import Challenge
from server.liveness.engine import ChallengeRecord, LivenessResult
from server.models import commands, pad_files
from server.models.inventory import summary
from server.models.pad import PAD_FILES
from server.sessions import CheckPath, Status
from server.spoof.pad import PadResult
from server.spoof.signals import StreamFacts, check_signals
from tests.support.api import auth
from tests.support.media import ROOT, pad_model_dir, photo

ID_PHOTO = "angelina_jolie/deepface_img1.jpg"
# The live face: another photo of the same person (the ID photo itself would be a reference_replay).
LIVE_PHOTO = "angelina_jolie/deepface_img10.jpg"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


# -- getting the models -----------------------------------------------------------------------------------


def test_import_pad_copies_checked_files_and_refuses_a_wrong_hash(tmp_path):
    done = cli("models", "import-pad", str(pad_model_dir()), "--dest", str(tmp_path / "pad"))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "pad").iterdir()) == sorted(spec.name for spec in PAD_FILES)
    altered = tmp_path / "altered"
    shutil.copytree(pad_model_dir(), altered)
    with open(altered / "MiniFASNetV1SE.onnx", "r+b") as model:
        model.seek(1000)
        model.write(b"\x00\x01\x02\x03")
    done = cli("models", "import-pad", str(altered), "--dest", str(tmp_path / "refused"))
    assert done.returncode == 2 and "SHA-256" in done.stderr
    assert not (tmp_path / "refused").exists()


def test_install_without_network_says_in_one_line_how_to_import(tmp_path, monkeypatch, capsys):
    # Nothing listens on port 9 of loopback: the download is refused at once, as offline.
    monkeypatch.setattr(pad_files, "SOURCE_REPOSITORY", "http://127.0.0.1:9/face-anti-spoofing")
    assert commands.install_pad(tmp_path / "pad") is False
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "python -m server models import-pad FOLDER" in said[0]
    assert not (tmp_path / "pad").exists()  # no empty folder left behind


def test_install_finds_imported_models_without_downloading(tmp_path, monkeypatch, capsys):
    pad_files.import_pad_models(pad_model_dir(), tmp_path / "pad")
    monkeypatch.setattr(pad_files, "_download", lambda *a: pytest.fail("downloaded"))
    assert commands.install_pad(tmp_path / "pad") is True
    assert "already installed" in capsys.readouterr().out


def test_start_up_names_every_model_or_says_it_is_not_loaded(models):
    line = summary(models.inventory)
    assert line.startswith("models: landmarker face_landmarker.task ") and "detector " in line and "embedder " in line
    assert ("PAD MiniFASNetV2.onnx 4eed38f0bde3 + MiniFASNetV1SE.onnx d819a69bac6b" in line) == (models.pad is not None)
    without = summary(tuple(m for m in models.inventory if m.role != "pad"))
    assert "PAD NOT LOADED" in without and "\n" not in without


# -- deciding without PAD -----------------------------------------------------------------------------


@pytest.fixture
def app_without_pad(models, settings):
    def make(**changes):
        stripped = replace(models, pad=None, inventory=tuple(m for m in models.inventory if m.role != "pad"))
        return create_app(settings.replace(**changes), models=stripped)

    return make


async def passed_check(aiohttp_client, app, sandbox: bool) -> dict:
    """A session with the customer's reference stored, decided after a passed check with no PAD."""
    from server.api.auth import create_api_key

    client = await aiohttp_client(app)
    services = app[SERVICES]
    key, _secret = create_api_key(services.store, "Shop", sandbox=sandbox)
    async with client.post("/api/v1/sessions", json={"reference_id": "r-1"}, headers=auth(key)) as response:
        created = await response.json()
    data = photo(ID_PHOTO).read_bytes()
    async with client.post(f"/api/v1/sessions/{created['id']}/reference-photo", data=data, headers={**auth(key), "Content-Type": "image/jpeg"}) as response:
        assert response.status == 200, await response.text()
    session = services.store.session(created["id"])
    session = services.lifecycle.record_consent(session, "en", "consent text", "test-1")
    session = services.lifecycle.move(session, Status.LIVE, "system", attempts=1)
    result = LivenessResult(True, None, None, (ChallengeRecord(Challenge.BLINK, 1.0, 2.0, True, 0.5, 1.4),), 0.0, 3.0, ("start",))
    pad = PadResult.unavailable()
    signals = check_signals(StreamFacts(), pad)
    crop = cv2.imread(str(photo(LIVE_PHOTO)))
    session = await services.attempts.decide(session, [crop, crop], result, {}, pad, signals, CheckPath.WEBRTC)
    async with client.get(f"/api/v1/sessions/{created['id']}", headers=auth(key)) as response:
        return await response.json()


async def test_without_pad_a_live_key_check_goes_to_review(aiohttp_client, app_without_pad):
    data = await passed_check(aiohttp_client, app_without_pad(), sandbox=False)
    assert data["match"]["decision"] == "match"
    assert data["status"] == "review" and data["liveness"]["review_because"] == ["pad_unavailable"]
    assert [s["action"] for s in data["liveness"]["signals"] if s["code"] == "pad_unavailable"] == ["review"]
    claims = jwt.decode(data["receipt"], options={"verify_signature": False})  # verified in tests/test_receipts.py
    assert claims["decision"] == "review" and claims["reasons"] == ["pad_unavailable"]
    assert claims["anti_spoofing"] == {"loaded": False, "approve_without": False, "unavailable": True}


async def test_the_opt_out_approves_without_pad(aiohttp_client, app_without_pad):
    data = await passed_check(aiohttp_client, app_without_pad(approve_without_anti_spoofing=True), sandbox=False)
    assert data["status"] == "approved"
    assert "pad_unavailable" in [s["code"] for s in data["liveness"]["signals"]]


async def test_sandbox_keys_are_not_held_back_without_pad(aiohttp_client, app_without_pad):
    data = await passed_check(aiohttp_client, app_without_pad(), sandbox=True)
    assert data["status"] == "approved"


async def test_an_operators_decision_gets_a_receipt_of_its_own(aiohttp_client, app_without_pad):
    app = app_without_pad()
    data = await passed_check(aiohttp_client, app, sandbox=False)
    services = app[SERVICES]
    session = services.lifecycle.settle_review(services.store.session(data["id"]), Status.APPROVED, "operator:1", {"decision": "approve"})
    (key,) = jwt.PyJWKSet.from_dict(services.lifecycle.receipts.keys.jwks()).keys
    claims = jwt.decode(session.receipt, key.key, algorithms=["EdDSA"])
    assert session.receipt != data["receipt"]
    assert claims["decision"] == "approved" and claims["settled_by"] == "operator"
