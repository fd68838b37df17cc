"""Face finding and matching on the real photos in ../shared/media/photos."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from server.matching.faces import FaceError
from server.matching.images import decode_image
from server.matching.matcher import Decision, similarity
from tests.support.media import PHOTOS, ROOT, identity_photos, photo, require_media


@pytest.fixture(scope="module")
def matcher(models):
    return models.matcher


def load(path) -> np.ndarray:
    return decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=200_000_000)


def test_every_identity_photo_enrols(matcher):
    require_media()
    failures = {}
    for path in identity_photos():
        try:
            matcher.embed_photo(load(path))
        except FaceError as error:
            failures[str(path.relative_to(PHOTOS))] = error.code
    assert len(identity_photos()) > 100
    assert failures == {}


@pytest.mark.parametrize(
    "name",
    [
        "_multi_face/fr_two_people.jpg",
        "_multi_face/deepface_couple.jpg",
        "_multi_face/openface_longoria-cooper.jpg",
        "_multi_face/fr_kit_with_rose.jpg",
        "_multi_face/dlib_2008_001009.jpg",
    ],
)
def test_two_faces_of_similar_size_are_refused(matcher, name):
    with pytest.raises(FaceError) as caught:
        matcher.embed_photo(load(photo(name)))
    assert caught.value.code == "multiple_faces"


def test_a_bystander_cut_by_the_edge_does_not_block_the_subject(matcher):
    # jack_dorsey/deepface_img62.jpg has a blurred face at the bottom edge behind him.
    matcher.embed_photo(load(photo("jack_dorsey/deepface_img62.jpg")))


def test_no_face_and_artwork_are_refused_or_scored_low(matcher):
    require_media()
    people = [matcher.embed_photo(load(p)).embedding for p in identity_photos()[::4]]
    for path in sorted((PHOTOS / "_no_face").glob("*")) + sorted((PHOTOS / "_cartoon_or_art").glob("*")):
        try:
            face = matcher.embed_photo(load(path))
        except FaceError:
            continue
        best = max(similarity(face.embedding, p) for p in people)
        assert best < matcher.match_threshold, path.name


def tight_crop(bgr: np.ndarray, matcher, size: int) -> np.ndarray:
    face = matcher.embed_photo(bgr, check=False)
    return cv2.resize(face.aligned, (size, size), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("size", [112, 150])
def test_tight_portrait_crops_enrol_and_match(matcher, size):
    original = load(photo("angelina_jolie/deepface_img10.jpg"))
    crop = tight_crop(original, matcher, size)
    other = matcher.embed_photo(load(photo("angelina_jolie/deepface_img11.jpg")))
    score = similarity(matcher.embed_photo(crop).embedding, other.embedding)
    assert matcher.decide(score).decision == Decision.MATCH


def test_poor_photos_get_quality_errors(matcher):
    original = load(photo("matt_damon/deepface_img32.jpg"))
    blurred = cv2.GaussianBlur(original, (0, 0), 40)
    dark = (original * 0.06).astype(np.uint8)
    small = cv2.resize(original, (original.shape[1] // 25, original.shape[0] // 25), interpolation=cv2.INTER_AREA)
    small = cv2.copyMakeBorder(small, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=(200, 200, 200))
    codes = {}
    for name, image in (("blurred", blurred), ("dark", dark), ("small", small)):
        with pytest.raises(FaceError) as caught:
            matcher.embed_photo(image)
        codes[name] = caught.value.code
    assert codes["blurred"] in ("face_too_blurry", "no_face")
    assert codes["dark"] in ("face_too_dark", "no_face")
    assert codes["small"] in ("face_too_small", "no_face")


def test_decision_bands_follow_the_calibration(matcher):
    assert matcher.review_threshold < matcher.match_threshold
    assert matcher.decide(matcher.match_threshold).decision == Decision.MATCH
    assert matcher.decide(matcher.match_threshold - 1e-4).decision == Decision.REVIEW
    assert matcher.decide(matcher.review_threshold - 1e-4).decision == Decision.NO_MATCH
    assert matcher.decide(0.95).far <= 1e-3


def test_same_person_throughout_catches_a_swap(matcher):
    a = matcher.embed_photo(load(photo("matt_damon/deepface_img32.jpg")))
    b = matcher.embed_photo(load(photo("matt_damon/deepface_img33.jpg")))
    c = matcher.embed_photo(load(photo("scarlett_johansson/deepface_img47.jpg")))
    assert matcher.same_person_throughout([a, b])
    assert not matcher.same_person_throughout([a, b, c])


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_match_cli():
    same = cli("match", str(photo("vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg")), str(photo("vid_blinkdet_man/frame_t7.0s_eyes_closed.jpg")), "--json")
    assert same.returncode == 0, same.stderr
    data = json.loads(same.stdout)
    assert data["decision"] == "match" and data["score"] >= data["threshold"]
    other = json.loads(cli("match", str(photo("matt_damon/deepface_img32.jpg")), str(photo("katy_perry/deepface_img42.jpg")), "--json").stdout)
    assert other["decision"] == "no_match"
    for path, code in (("_multi_face/fr_two_people.jpg", "multiple_faces"), ("_no_face/faceapi_white.png", "no_face")):
        done = cli("match", str(photo(path)), str(photo("matt_damon/deepface_img32.jpg")), "--json")
        assert done.returncode == 2 and json.loads(done.stdout)["error"]["code"] == code
    done = cli("match", str(ROOT / "pyproject.toml"), str(photo("matt_damon/deepface_img32.jpg")), "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["error"]["code"] == "unsupported_type"
