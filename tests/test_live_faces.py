"""The kept face crops are embedded during the check, once each, when their slot is final; the decision
gets the embeddings of exactly the crops the check kept (a crop replaced after it was handed over is
embedded again), with the real detector and ArcFace."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from server.flow.live_faces import LiveFaces, open_slot
from server.liveness.challenges import Challenge
from server.liveness.engine import LivenessEngine, Phase
from server.matching.calibration import calibration_for
from server.matching.matcher import FaceMatcher
from server.models.loader import load_face_models
from tests.support.media import photo

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def matcher() -> FaceMatcher:
    return FaceMatcher(load_face_models(), calibration_for("", ""))


def engine_at(phase: Phase, index: int = 0) -> LivenessEngine:
    engine = LivenessEngine([Challenge.BLINK, Challenge.BLINK, Challenge.BLINK])
    engine.phase, engine.index = phase, index
    return engine


def test_only_the_slot_of_the_calm_moment_under_way_is_open():
    assert open_slot(engine_at(Phase.START)) == "start"
    assert open_slot(engine_at(Phase.RETURN, 1)) == "after_1"
    assert open_slot(engine_at(Phase.CHALLENGE, 2)) is None
    assert open_slot(engine_at(Phase.DONE, 2)) is None


async def test_final_crops_are_embedded_once_and_the_decision_gets_the_kept_crops(matcher):
    first = cv2.imread(str(photo("angelina_jolie/deepface_img10.jpg")))
    second = cv2.imread(str(photo("angelina_jolie/deepface_img1.jpg")))
    other = cv2.imread(str(photo("jennifer_aniston/deepface_img3.jpg")))
    with ThreadPoolExecutor(2) as executor:
        faces = LiveFaces(matcher, executor)
        analyzer = SimpleNamespace(engine=engine_at(Phase.START), kept_faces={"start": first})
        faces.kick(analyzer)  # the start is still being kept: nothing handed over
        assert not faces._handed
        analyzer.engine = engine_at(Phase.CHALLENGE)
        faces.kick(analyzer)
        faces.kick(analyzer)  # once, not per frame
        assert list(faces._handed) == ["start"]
        analyzer.engine = engine_at(Phase.RETURN, 0)
        analyzer.kept_faces["after_0"] = second
        faces.kick(analyzer)
        assert list(faces._handed) == ["start"]
        analyzer.engine = engine_at(Phase.CHALLENGE, 1)
        faces.kick(analyzer)
        assert list(faces._handed) == ["start", "after_0"]
        got = await faces.faces(("start", "after_0"), analyzer)
        expected = matcher.embed_live([first, second])
        assert len(got) == 2 and all(np.allclose(g.embedding, e.embedding, atol=1e-5) for g, e in zip(got, expected, strict=True))
        # A crop replaced after it was handed over (the engine never does so): the kept crop is what is matched.
        analyzer.kept_faces["start"] = other
        got = await faces.faces(("start", "after_0"), analyzer)
        assert np.allclose(got[0].embedding, matcher.embed_live([other])[0].embedding, atol=1e-5)
        assert not matcher.same_person_throughout(got)
