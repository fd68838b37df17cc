"""The gallery's command line: `gallery configure / status / rekey`, `eval-duplicates` on real photos and
`bench-gallery` on both engines, each run as the operator runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from realname_tools.eval_duplicates import evaluate, fit_tail, per_comparison_far
from server.matching.calibration import Calibration, calibration_for
from tests.support.media import PHOTOS, ROOT, VIDEOS, require_media


def server(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True, cwd=ROOT, timeout=900, env={**os.environ, **(env or {})})


def test_configure_status_and_rekey(tmp_path):
    env = {"REALNAME_DATA_DIR": str(tmp_path / "data"), "REALNAME_GALLERY_KEY_FILE": str(tmp_path / "keys" / "gallery.key")}
    assert server("merchants", "create", "shop", env=env).returncode == 0
    done = server("gallery", "configure", "shop", "on", "--action", "reject", "--document-cap", "3", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"merchant": "shop", "gallery": True, "action": "reject", "document_cap": 3, "removed": 0}
    status = json.loads(server("gallery", "status", "--json", env=env).stdout)
    assert status["engine"] == "sqlite" and status["merchants"][0]["gallery"] is True
    old_key = (tmp_path / "keys" / "gallery.key").read_text()
    done = server("gallery", "rekey", "--json", env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["templates"] == 0
    assert (tmp_path / "keys" / "gallery.key").read_text() != old_key
    assert server("gallery", "status", env=env).returncode == 0  # the new key opens the gallery
    (tmp_path / "keys" / "gallery.key").write_text(old_key)
    refused = server("gallery", "status", "--json", env=env)
    assert refused.returncode == 2 and json.loads(refused.stdout)["error"]["code"] == "configuration"
    assert server("gallery", "configure", "nobody", "on", env=env).returncode == 2


def test_eval_duplicates_measures_fpir_and_fnir_against_gallery_size(tmp_path):
    require_media()
    for name in ("george_clooney", "matt_damon", "jennifer_aniston", "_expressions"):
        (tmp_path / name).symlink_to(PHOTOS / name)
    strangers = tmp_path / "strangers"  # none of the identities: 7 stock photos and a clip's frames
    strangers.mkdir()
    (strangers / "expressions").symlink_to(PHOTOS / "_expressions")
    (strangers / "clip.mp4").symlink_to(VIDEOS / "lp_d0_smile_greenscreen_asian_man_3s.mp4")
    done = server("eval-duplicates", "--photos", str(tmp_path), "--impostors", str(strangers), "--distractors", "2000", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    threshold = calibration_for("", "").threshold_for(1e-7)  # the default GALLERY_FAR, from the fitted impostor tail
    assert report["identities"] == 3 and report["threshold"] == threshold and report["distractor_model"] == "matched"
    assert [row["distractors"] for row in report["by_gallery_size"]] == [0, 1000, 2000]
    assert report["fnir"] == 0 and report["fpir"] == 0 and report["other_identity_returned"] == 0
    assert report["fpir_95"][0] == 0 < report["fpir_95"][1] < 1  # zero of few searches: an interval, not a certainty
    assert threshold in [row["threshold"] for row in report["by_threshold"]]
    assert "tail" not in report and "cross_validation" not in report  # 74 impostor pairs: too few to fit a tail on
    strangers_found = report["impostors"]
    assert strangers_found["faces"] >= 7 + 5 and strangers_found["distractors"] == 2000  # every stock face, most frames
    assert strangers_found["fpir"] == 0 and strangers_found["pairs_above_threshold"] == 0 and strangers_found["highest_pair"] < threshold
    assert strangers_found["pairs_with_identity_photos"] == strangers_found["faces"] * sum(len(list((PHOTOS / n).iterdir())) for n in ("george_clooney", "matt_damon", "jennifer_aniston"))


def test_cross_validation_judges_each_identity_at_a_tail_fitted_without_it():
    rng = np.random.default_rng(5)
    centres = unit_rows(rng.standard_normal((30, 512)))
    templates = {f"id{i}": list(unit_rows(c + 0.05 * rng.standard_normal((4, 512)))) for i, c in enumerate(centres)}
    report = evaluate(templates, threshold=0.5, distractors=1000, model="random", far=1e-7)
    cross = report["cross_validation"]
    assert cross["far"] == 1e-7 and cross["fnir"] == 0 and cross["fpir"] == 0 and len(cross["by_gallery_size"]) == 2
    assert cross["fpir_95"][0] == 0 < cross["fpir_95"][1] < 0.05  # 90 searches, none a false hit
    tail = report["tail"]  # random directions: scores near N(0, 1/512), whose 1e-7 point is about 0.23
    assert abs(tail["threshold"] - 5.2 / np.sqrt(512)) < 0.03 and cross["thresholds"]["min"] <= tail["threshold"] <= cross["thresholds"]["max"]
    assert cross["held_out_impostor_pairs_above"]["0.01"]["expected"] > 0


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def test_the_fitted_tail_follows_the_highest_scores():
    rng = np.random.default_rng(3)
    normal = rng.normal(0.01, 0.07, 20_000)
    fitted = fit_tail(normal, identities=100)
    assert abs(fitted.mean - 0.01) < 0.01 and abs(fitted.std - 0.07) < 0.007
    assert abs(fitted.threshold_for(1e-7) - (0.01 + 0.07 * 5.1993)) < 0.04
    heavier = rng.standard_t(5, 20_000) * 0.055 + 0.01  # a tail heavier than a normal of the same spread
    assert fit_tail(heavier, identities=100).std > heavier.std()  # so its extrapolation is stricter
    assert per_comparison_far(0.01, 10**5) == pytest.approx(1.005e-7, rel=1e-3)


def test_write_calibration_adds_the_impostor_tail(tmp_path):
    require_media()
    for name in ("angelina_jolie", "katy_perry", "scarlett_johansson", "jennifer_aniston"):
        (tmp_path / name).symlink_to(PHOTOS / name)
    out = tmp_path / "calibration.json"
    done = server("eval-duplicates", "--photos", str(tmp_path), "--distractors", "0", "--write-calibration", str(out), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    written = Calibration.load(out)
    assert written.tail is not None and written.tail.identities == 4 and written.points == calibration_for("", "").points
    assert written.threshold_for(1e-7) == max(written.tail.threshold_for(1e-7), written.points[-1].threshold)


def test_evaluate_counts_misses_and_false_positives():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 512))
    templates = {f"id{i}": [c + 0.5 * rng.standard_normal(512) / np.sqrt(512) * np.linalg.norm(c) for _ in range(3)] for i, c in enumerate(centres)}
    templates = {name: [(t / np.linalg.norm(t)).astype(np.float32) for t in found] for name, found in templates.items()}
    clean = evaluate(templates, threshold=0.5, distractors=0, model="random")
    assert clean["mated_searches"] == 8 and clean["fnir"] == 0 and clean["fpir"] == 0
    assert clean["second_photos"] == {"searched": 4, "found": 4, "other_identity_returned": 0, "lowest_mate": clean["second_photos"]["lowest_mate"]}
    loose = evaluate(templates, threshold=-1.0, distractors=0, model="random")
    assert loose["fpir"] == 1.0  # every other identity is returned at a threshold nothing stays under
    strict = evaluate(templates, threshold=0.999, distractors=0, model="random")
    assert strict["fnir"] == 1.0 and strict["second_photos"]["found"] == 0 and strict["second_photos"]["searched"] == 4


def test_bench_gallery_on_both_engines(postgres):
    for engine, extra in (("sqlite", []), ("postgresql", ["--database-url", postgres.new_database()])):
        done = server("bench-gallery", "--size", "600", "--online", "100", "--queries", "20", "--engine", engine, *extra, "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout)
        assert report["engine"] == engine and report["size"] == 600 and report["recall_at_1"] >= 0.9
        assert report["insert_per_s"] > 0 and report["search_ms"]["p99"] >= report["search_ms"]["p50"] > 0 and report["disk_mb"] > 0
