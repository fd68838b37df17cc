"""eval-match: accuracy figures on labelled pairs, failures to enrol counted as misses, calibration files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from server.matching.calibration import Calibration, CalibrationError, ImpostorTail, OperatingPoint, calibration_for
from server.matching.evaluation import FAILED, Evaluation, PairsError, evaluate, read_pairs
from tests.support.media import MEDIA, PHOTOS, ROOT, require_media


def test_threshold_at_far_and_tar_on_known_scores():
    impostor = np.linspace(-0.2, 0.3, 1000)  # highest impostor 0.3
    genuine = np.array([0.25, 0.4, 0.6, FAILED])
    evaluation = Evaluation(genuine, impostor)
    t = evaluation.threshold_at_far(1e-3)
    assert evaluation.far(t) <= 1e-3 and t <= 0.3
    assert evaluation.tar(0.35) == 0.5  # the failed enrolment counts as a miss
    eer, _ = evaluation.eer()
    assert 0 < eer < 0.5


def test_calibration_only_lists_measurable_points():
    evaluation = Evaluation(np.array([0.6, 0.7]), np.random.default_rng(0).normal(0, 0.1, 500))
    calibration = evaluation.calibration("test", {})
    assert min(p.far for p in calibration.points) >= 1 / 500
    with pytest.raises(CalibrationError):
        calibration.threshold_for(1e-4)


def test_calibration_lookup():
    calibration = Calibration("m", (OperatingPoint(1e-2, 0.2), OperatingPoint(1e-3, 0.25), OperatingPoint(1e-4, 0.32)))
    assert calibration.threshold_for(1e-3) == 0.25
    assert calibration.threshold_for(5e-4) == 0.32  # the next stricter point
    assert calibration.far_at(0.26) == 1e-3 and calibration.far_at(0.1) == 1.0


def test_below_the_strictest_point_the_fitted_tail_answers():
    points = (OperatingPoint(1e-2, 0.2), OperatingPoint(1e-4, 0.32))
    with pytest.raises(CalibrationError, match="eval-duplicates"):
        Calibration("m", points).threshold_for(1e-7)
    tail = ImpostorTail(mean=0.0, std=0.08, top=0.1, pairs=6000, identities=24)
    calibration = Calibration("m", points, tail=tail)
    assert calibration.threshold_for(1e-7) == round(0.08 * 5.1993, 4) == tail.threshold_for(1e-7)
    assert calibration.threshold_for(1e-4) == 0.32  # measured points first
    assert Calibration("m", points, tail=ImpostorTail(0.0, 0.01, 0.1, 6000, 24)).threshold_for(1e-7) == 0.32  # never looser than them
    assert tail.far_at(tail.threshold_for(1e-6)) == pytest.approx(1e-6, rel=0.01)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    assert "tail" not in Calibration("m", points).to_dict()


def test_a_custom_model_folder_needs_its_own_calibration(tmp_path):
    with pytest.raises(CalibrationError, match="eval-match"):
        calibration_for(str(tmp_path), "")
    Calibration("mine", (OperatingPoint(1e-3, 0.3),)).save(tmp_path / "realname-calibration.json")
    assert calibration_for(str(tmp_path), "").model == "mine"


def test_shipped_calibration_is_loadable_and_documents_itself():
    calibration = calibration_for("", "")
    assert calibration.impostor_pairs > 10_000 and calibration.genuine_pairs > 500
    assert calibration.threshold_for(1e-4) > calibration.threshold_for(1e-2)
    assert "eval-match" in calibration.notes
    assert calibration.tail is not None and calibration.tail.pairs > 5000 and "eval-duplicates" in calibration.notes


def test_pairs_file_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(PairsError, match="file_a"):
        read_pairs(bad)
    bad.write_text("file_a,file_b,same\nx,y,maybe\n")
    with pytest.raises(PairsError, match="same"):
        read_pairs(bad)


def test_failures_to_enrol_are_counted_not_dropped(models, tmp_path):
    require_media()
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file_a", "file_b", "same", "note"])
        writer.writerow(["matt_damon/deepface_img32.jpg", "matt_damon/deepface_img33.jpg", 1, "extra columns are ignored"])
        writer.writerow(["matt_damon/deepface_img32.jpg", "_no_face/faceapi_white.png", 1, ""])
        writer.writerow(["matt_damon/deepface_img32.jpg", "missing/nowhere.jpg", 0, ""])
    evaluation = evaluate(models.matcher, read_pairs(pairs), PHOTOS)
    assert evaluation.failed_genuine == 1 and evaluation.failed_impostor == 1
    assert evaluation.failures == {"_no_face/faceapi_white.png": "no_face", "missing/nowhere.jpg": "missing_file"}
    assert evaluation.tar(models.matcher.review_threshold) == 0.5


def test_eval_match_on_the_shared_pairs_list(tmp_path):
    """The issue's bar: TAR at FAR 1e-3 of at least 99 %, failures to enrol counted as misses."""
    require_media()
    plot = tmp_path / "scores.png"
    calibration = tmp_path / "calibration.json"
    done = subprocess.run(
        [sys.executable, "-m", "server", "eval-match", "--pairs", str(MEDIA / "pairs.csv"), "--root", str(PHOTOS),
         "--json", "--plot", str(plot), "--write-calibration", str(calibration)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    print("eval-match on pairs.csv:", json.dumps({k: report[k] for k in ("genuine_pairs", "impostor_pairs", "failed_images", "eer", "tar_at_far", "median_image_ms", "configured")}))
    assert report["failed_images"] == 0
    assert report["tar_at_far"]["0.001"]["tar"] >= 0.99
    assert report["tar_at_far"]["0.01"]["tar"] >= 0.99
    assert "embedded" in done.stderr  # progress on long lists
    assert plot.stat().st_size > 10_000
    assert Calibration.load(calibration).impostor_pairs == report["impostor_pairs"]
