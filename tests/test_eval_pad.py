"""`python -m server eval-pad` on the shared clips: every attack rejected, no genuine clip rejected."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from realname_tools.eval_pad import ClipsError, read_clips
from realname_tools.pad_crossval import NOISY_ABOVE
from tests.support.media import MEDIA, ROOT, VIDEOS, pad_model_dir, require_media


def eval_pad(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "eval-pad", *args], capture_output=True, text=True, cwd=ROOT, timeout=900)


def test_shared_clips_apcer_and_bpcer_are_zero(tmp_path):
    require_media()
    clips = MEDIA / "pad_clips.csv"
    if not clips.is_file():
        pytest.skip(f"{clips} is not in the test media")
    calibration = tmp_path / "pad.json"
    done = eval_pad("--clips", str(clips), "--root", str(VIDEOS), "--pad-model-dir", str(pad_model_dir()),
                    "--every", "6", "--json", "--write-calibration", str(calibration))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["attack_clips"] >= 3 and report["genuine_clips"] >= 10
    assert report["apcer"] and all(row["apcer"] == 0 for row in report["apcer"].values())
    assert report["bpcer"] == 0
    assert report["non_response_rate"] == 0
    assert report["margins"]["genuine_frames_below_attack"] == 0
    for clip in report["per_clip"]:
        assert clip["verdict"] == ("attack" if clip["label"] == "attack" else "pass"), clip
        assert clip["frames_scored"] >= 1
    assert report["cost"]["frames"] > 0 and report["cost"]["pad_ms_per_frame"] > 0
    written = json.loads(calibration.read_text())
    assert written["thresholds"] == {"attack": report["thresholds"]["attack"], "review": report["thresholds"]["review"]}
    assert len(written["measured"]["clips"]) == report["clips"]


def test_verdicts_hold_through_vp8_at_the_bitrate_the_page_sends(tmp_path):
    """A live check's frames come through the browser's VP8; the genuine clip here lost the most margin."""
    from server.rtc.bandwidth import RECEIVE_KBPS

    require_media()
    listing = tmp_path / "clips.csv"
    listing.write_text(
        "file,label,attack_type\n"
        "attack_phone_replay_selfie_video_young_man_15s.mp4,attack,screen_replay\n"
        "lp_d18_mouth_open_eyes_closed_man_7s.mp4,genuine,\n"
    )
    done = eval_pad("--clips", str(listing), "--root", str(VIDEOS), "--pad-model-dir", str(pad_model_dir()),
                    "--every", "3", "--vp8-kbps", str(RECEIVE_KBPS), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts = {clip["file"]: clip["verdict"] for clip in json.loads(done.stdout)["per_clip"]}
    assert verdicts == {"attack_phone_replay_selfie_video_young_man_15s.mp4": "attack", "lp_d18_mouth_open_eyes_closed_man_7s.mp4": "pass"}


def test_a_bad_clip_list_is_a_clear_error(tmp_path):
    listing = tmp_path / "clips.csv"
    listing.write_text("file,label,attack_type\nx.mp4,maybe,\n")
    with pytest.raises(ClipsError, match="label"):
        read_clips(listing)
    done = eval_pad("--clips", str(listing), "--root", str(tmp_path), "--pad-model-dir", str(tmp_path), "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["code"] in ("bad_clips", "configuration")


def test_an_unreadable_clip_is_a_non_response(tmp_path):
    listing = tmp_path / "clips.csv"
    (tmp_path / "broken.mp4").write_text("not a video")
    listing.write_text("file,label,attack_type\nbroken.mp4,genuine,\n")
    done = eval_pad("--clips", str(listing), "--root", str(tmp_path), "--pad-model-dir", str(pad_model_dir()), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["non_response_rate"] == 1.0 and report["per_clip"][0]["error"]


def _scored(person: str, label: str, score: float, kind: str = ""):
    from realname_tools.pad_crossval import Scored

    return Scored(f"{person}_{label}_{score}.mp4", label, kind or ("screen_replay" if label == "attack" else ""), person, score)


def test_cross_validation_never_scores_a_person_with_thresholds_that_saw_them():
    from realname_tools.pad_crossval import MarginRule, cross_validate

    items = [
        _scored("ann", "genuine", 0.97), _scored("ann", "attack", 0.01),
        _scored("bob", "genuine", 0.92), _scored("bob", "attack", 0.30),  # the highest attack of all
        _scored("cy", "genuine", 0.99), _scored("dee", "attack", 0.002, "print"),
    ]
    seen: list[set[str]] = []

    def fit(train):
        seen.append({s.person for s in train})
        return MarginRule().fit(train)

    folds = cross_validate(items, fit)
    persons = {s.person for s in items}
    assert [f.person for f in folds] == sorted(persons)
    for fold, trained_on in zip(folds, seen, strict=True):
        assert fold.person not in trained_on and fold.trained_on == trained_on == persons - {fold.person}
        assert {s.person for s, _ in fold.verdicts} == {fold.person}
    assert sum(len(f.verdicts) for f in folds) == len(items)
    # Bob's 0.30 attack is judged by thresholds fitted on attacks no higher than 0.01: that is the point.
    bob = next(f for f in folds if f.person == "bob")
    others = next(f for f in folds if f.person == "ann")
    assert bob.thresholds.review < others.thresholds.review


def test_thresholds_fitted_on_the_clips_received_one_way_judge_them_received_another():
    """eval-pad --fit-vp8-kbps: each fold fits on the same clips as files (say), and judges the stream's."""
    from dataclasses import replace

    from realname_tools.pad_crossval import MarginRule, cross_validate

    files = [_scored("ann", "genuine", 0.97), _scored("ann", "attack", 0.01), _scored("bob", "genuine", 0.95), _scored("bob", "attack", 0.2),
             _scored("cy", "genuine", 0.99), _scored("cy", "attack", 0.05)]
    stream = [replace(s, score=0.6) if s.label == "attack" and s.person == "bob" else s for s in files]  # bob's attack scores higher as received
    folds = {f.person: f for f in cross_validate(stream, MarginRule().fit, fit_items=files)}
    assert folds["bob"].thresholds == MarginRule().fit([s for s in files if s.person != "bob"])
    assert dict((s.file, str(v)) for s, v in folds["bob"].verdicts)[stream[3].file] == "pass"  # as received, by the files' thresholds: it passes
    refitted = {f.person: f for f in cross_validate(stream, MarginRule().fit)}
    assert refitted["ann"].thresholds.review > folds["ann"].thresholds.review  # fitted on the stream, bob's 0.6 attack places it


def test_the_margin_rule_keeps_room_on_both_sides_and_never_passes_a_known_attack():
    from realname_tools.pad_crossval import MarginRule

    apart = MarginRule().fit([_scored("a", "attack", 0.05), _scored("b", "genuine", 0.95)])
    assert 0.05 < apart.attack < apart.review < 0.95
    assert apart.decide(0.05).value == "attack" and apart.decide(0.95).value == "pass"
    overlap = MarginRule().fit([_scored("a", "attack", 0.6), _scored("b", "genuine", 0.4), _scored("c", "genuine", 0.9)])
    assert overlap.decide(0.6).value != "pass"  # the known attack goes to review at worst
    assert overlap.decide(0.4).value != "attack"  # the known genuine clip is not rejected


def test_wilson_interval():
    from realname_tools.pad_crossval import summarise_folds, wilson

    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-3)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-3)
    assert wilson(0, 0) is None
    assert summarise_folds([])["apcer"]["ci95"] is None


def test_the_generator_writes_labelled_clips_outside_the_repository(tmp_path):
    import av

    from realname_tools.pad_attacks import GeneratorError, generate

    require_media()
    with pytest.raises(GeneratorError, match="inside the repository"):
        generate(MEDIA, ROOT / "generated", seconds=0.5)
    made = generate(MEDIA, tmp_path, seconds=0.6, only={"lp_d7_woman", "george_clooney"})
    labels = {(g.label, g.attack_type, g.person) for g in made}
    assert ("attack", "print", "lp_d7_woman") in labels and ("attack", "screen_replay", "lp_d7_woman") in labels
    assert ("genuine", "", "lp_d7_woman") in labels and ("attack", "print", "george_clooney") in labels
    assert ("attack", "print", "lp_d7_woman", "print_close_dim") in {(g.label, g.attack_type, g.person, g.recipe) for g in made}
    assert read_clips(tmp_path / "pad_clips.csv")[0].person in {"lp_d7_woman", "george_clooney"}
    only = generate(MEDIA, tmp_path / "dim", seconds=0.6, only={"lp_d7_woman"}, recipes={"monitor_replay_dim"})
    assert [(g.file, g.attack_type) for g in only] == [("gen_monitor_replay_dim_lp_d7_woman.mp4", "screen_replay")]
    for g in made:
        with av.open(str(tmp_path / g.file)) as container:
            assert sum(1 for _ in container.decode(video=0)) >= 9, g.file


def test_cross_validated_eval_pad_on_a_small_set(tmp_path):
    """The command end to end: three clips of three persons, every fold has both classes to fit on."""
    require_media()
    listing = tmp_path / "clips.csv"
    listing.write_text(
        "file,label,attack_type,person\n"
        "attack_phone_replay_same_man_as_static_webcam_3s.mp4,attack,screen_replay,lestari\n"
        "static_webcam_man_real_4s.mp4,genuine,,lestari\n"
        "lp_d0_smile_greenscreen_asian_man_3s.mp4,genuine,,lp_d0\n"
        "attack_phone_replay_selfie_video_young_man_15s.mp4,attack,screen_replay,manikantha\n"
    )
    calibration = tmp_path / "pad.json"
    done = eval_pad("--clips", str(listing), "--root", str(VIDEOS), "--pad-model-dir", str(pad_model_dir()), "--every", "8",
                    "--cross-validate", "person", "--json", "--write-calibration", str(calibration))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    cv = report["cross_validation"]
    assert cv["folds"] == 3 and {row["person"] for row in cv["per_person"]} == {"lestari", "lp_d0", "manikantha"}
    assert cv["apcer"]["of"] == 2 and cv["bpcer"]["of"] == 2 and cv["apcer"]["ci95"] is not None
    assert cv["apcer"]["count"] == 0 and cv["bpcer"]["count"] == 0
    written = json.loads(calibration.read_text())
    assert written["thresholds"] == {k: report["fitted_on_all"][k] for k in ("attack", "review", "flat_below", "noisy_above", "noisy_review", "detail_below")}
    assert "--cross-validate person" in written["measured"]["command"]
    # the darker-skinned man on his real webcam, in ordinary light: a clean face, judged as any other
    webcam = next(c for c in report["clip_scores"] if c["file"] == "static_webcam_man_real_4s.mp4")
    assert webcam["face_luma"] < 60 and webcam["face_noise"] < NOISY_ABOVE
    assert webcam["face_detail"] >= written["thresholds"]["detail_below"] > 0  # a genuine clip is never held by the detail cue
