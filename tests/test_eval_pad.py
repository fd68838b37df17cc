"""`python -m server eval-pad` on the shared clips: every attack rejected, no genuine clip rejected."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from realname_tools.eval_pad import ClipsError, read_clips
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
    assert report["cost"]["frames"] > 0 and report["cost"]["pad_over_scrfd"] > 0
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
