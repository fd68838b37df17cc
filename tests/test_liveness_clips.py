"""The liveness engine on the real clips in ../shared/media/videos, through the same replay the CLI uses.

What each clip shows, and when, is in ../shared/media/SOURCES.md. Directions are the person's own:
a person turning to their left shows the face turned toward image-right in these unmirrored clips.
"""

from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import pytest

from server.liveness.challenges import parse_challenges
from server.liveness.engine import Reason
from server.liveness.replay import VideoError, replay_video
from server.models.loader import landmarker_file
from server.spoof.calibration import load_thresholds
from server.spoof.pad import PadFramePolicy
from tests.support.media import ROOT, video

HEADTURN = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"
BLINK = "blink_frontal_man_phone_portrait_14s.mp4"


def replay(clip: str, challenges: str, **options):
    return replay_video(video(clip), parse_challenges(challenges), landmarker_file(), **options)


@pytest.mark.parametrize(
    "clip, challenges",
    [
        (HEADTURN, "turn_left,turn_right,look_down,look_up"),
        (BLINK, "blink,blink,blink"),
        ("lp_d12_talking_glasses_man_headturns_7s.mp4", "turn_left,turn_right,turn_left"),
        ("lp_d0_smile_greenscreen_asian_man_3s.mp4", "smile"),
        ("lp_d13_selfie_glasses_man_smile_12s.mp4", "smile,blink"),
        ("lp_d18_mouth_open_eyes_closed_man_7s.mp4", "open_mouth"),
        ("lp_d7_winks_blinks_woman_6s.mp4", "blink"),
    ],
)
def test_real_clips_pass_what_they_perform_in_that_order(clip, challenges):
    report = replay(clip, challenges)
    assert report.result.passed, report.to_dict()
    assert all(c.passed for c in report.result.challenges)
    assert report.faces, "frames for face matching were kept"


@pytest.mark.parametrize(
    "clip, challenges, reason",
    [
        (HEADTURN, "turn_right,turn_left", Reason.WRONG_ACTION),  # it turns to its left first
        (HEADTURN, "look_up,look_down", Reason.WRONG_ACTION),  # it turns before nodding
        ("lp_d12_talking_glasses_man_headturns_7s.mp4", "turn_right,turn_left", Reason.WRONG_ACTION),
    ],
)
def test_real_clips_fail_in_another_order(clip, challenges, reason):
    report = replay(clip, challenges)
    assert not report.result.passed
    assert report.result.reason == reason


@pytest.mark.parametrize(
    "clip, challenges",
    [
        (BLINK, "turn_left"),
        (BLINK, "smile"),
        ("lp_d13_selfie_glasses_man_smile_12s.mp4", "look_up"),
        ("lp_d18_mouth_open_eyes_closed_man_7s.mp4", "turn_right"),
        ("static_webcam_man_real_4s.mp4", "blink"),
    ],
)
def test_real_clips_fail_what_they_never_perform(clip, challenges):
    report = replay(clip, challenges)
    assert not report.result.passed
    assert report.result.reason in (Reason.TIMEOUT, Reason.STREAM_ENDED)
    assert not report.result.challenges[-1].passed


@pytest.mark.parametrize("clip", ["noface_crowd_walking_1080p_4s.mp4", "noface_cartoon_robot_eyes_blinking_6s.mp4"])
def test_clips_without_a_face_fail_with_no_face(clip):
    report = replay(clip, "blink")
    assert report.result.reason == Reason.NO_FACE


@pytest.fixture(scope="module")
def two_people_clip(tmp_path_factory):
    """Two real people side by side: two clips scaled into one frame (made at test time, never stored)."""
    out = tmp_path_factory.mktemp("clips") / "two_people.mp4"
    sources = [av.open(str(video(BLINK))), av.open(str(video("lp_d13_selfie_glasses_man_smile_12s.mp4")))]
    with av.open(str(out), "w") as sink:
        stream = sink.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for index, (a, b) in enumerate(zip(sources[0].decode(video=0), sources[1].decode(video=0), strict=False)):
            left = a.reformat(width=240, height=428, format="rgb24").to_ndarray()
            right = b.reformat(width=240, height=428, format="rgb24").to_ndarray()
            canvas = np.full((480, 640, 3), 90, dtype=np.uint8)
            canvas[26:454, 60:300], canvas[26:454, 340:580] = left, right
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = index
            sink.mux(stream.encode(frame))
            if index >= 100:
                break
        sink.mux(stream.encode(None))
    for source in sources:
        source.close()
    return out


def test_two_faces_fail(two_people_clip):
    report = replay_video(two_people_clip, parse_challenges("blink"), landmarker_file())
    assert report.result.reason == Reason.MULTIPLE_FACES


def test_replay_attack_of_the_same_turns_passes_active_challenges_only_in_the_recorded_order():
    """A replayed video can only pass if it happens to perform the server's random order."""
    attack = "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4"
    assert not replay(attack, "turn_right,turn_left").result.passed


def test_unreadable_file_is_a_clear_error(tmp_path):
    bogus = tmp_path / "not_a_video.mp4"
    bogus.write_bytes(b"this is not a video")
    with pytest.raises(VideoError):
        replay_video(bogus, parse_challenges("blink"), landmarker_file())


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_prints_one_json_object_and_exits_0_whatever_the_verdict():
    done = cli("liveness", str(video(HEADTURN)), "--challenges", "turn_left,turn_right", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["passed"] is True and data["reason"] is None
    assert [c["type"] for c in data["challenges"]] == ["turn_left", "turn_right"]
    for challenge in data["challenges"]:
        assert challenge["passed"] and challenge["asked_at_s"] < challenge["completed_at_s"]
    assert data["frames"] > 100 and data["analysed_fps"] > 0

    failed = cli("liveness", str(video(BLINK)), "--challenges", "turn_left", "--timeout-s", "3", "--json")
    assert failed.returncode == 0
    data = json.loads(failed.stdout)
    assert data["passed"] is False and data["reason"] == "timeout"
    assert data["challenges"][0]["completed_at_s"] is None


def test_cli_unreadable_file_exits_2_with_an_error_object(tmp_path):
    bogus = tmp_path / "x.mp4"
    bogus.write_text("nope")
    done = cli("liveness", str(bogus), "--challenges", "blink", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["code"] == "unreadable_video"
    done = cli("liveness", str(bogus), "--challenges", "jump", "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["error"]["code"] == "bad_challenges"


# -- passive anti-spoofing (needs ../shared/models/pad) ------------------------------------------------


@pytest.fixture(scope="module")
def pad_models():
    from server.liveness.analyzer import load_pad_models
    from tests.support.media import pad_model_dir

    return load_pad_models(str(pad_model_dir()))


@pytest.mark.parametrize(
    "clip, challenges",
    [
        # Each of these passes its challenge on movements alone: only passive anti-spoofing stops it.
        ("attack_monitor_replay_of_headturn_phone_selfie_21s.mp4", "turn_left"),
        ("attack_phone_replay_selfie_video_young_man_15s.mp4", "blink"),
        # And whatever else they are asked, they fail as attacks rather than for the movement.
        ("attack_monitor_replay_of_headturn_phone_selfie_21s.mp4", "smile"),
        ("attack_phone_replay_selfie_video_young_man_15s.mp4", "turn_right"),
        ("attack_phone_replay_same_man_as_static_webcam_3s.mp4", "blink"),
    ],
)
def test_replay_attacks_fail_as_presentation_attacks_whatever_they_are_asked(pad_models, clip, challenges):
    report = replay(clip, challenges, pad_models=pad_models)
    assert not report.result.passed
    assert report.result.reason == Reason.PRESENTATION_ATTACK
    assert report.pad.verdict == "attack" and report.pad.frames_scored >= 1
    assert report.signals[0].code == "pad_attack" and report.signals[0].action == "fail"


def test_the_replays_that_pass_their_challenges_do_so_on_movement_alone(pad_models):
    for clip, challenges in [("attack_monitor_replay_of_headturn_phone_selfie_21s.mp4", "turn_left"),
                             ("attack_phone_replay_selfie_video_young_man_15s.mp4", "blink")]:
        assert replay(clip, challenges, pad_models=pad_models).liveness.passed


def _genuine_pad_clips() -> list[str]:
    import csv

    from tests.support.media import MEDIA

    listing = MEDIA / "pad_clips.csv"
    if not listing.is_file():
        return ["pad_clips.csv missing"]
    with open(listing, newline="") as stream:
        return [row["file"] for row in csv.DictReader(stream) if row["label"] == "genuine"]


@pytest.mark.parametrize("clip", _genuine_pad_clips())
def test_genuine_clips_are_not_rejected_by_passive_anti_spoofing(pad_models, clip):
    # "blink" makes most clips run until the challenge times out: frames from the whole clip are scored.
    report = replay(clip, "blink", pad_models=pad_models)
    assert 1 <= report.pad.frames_scored <= report.pad.frames_offered <= PadFramePolicy().max_frames  # bounded, whatever the length
    assert report.pad.verdict == "pass", report.pad.to_dict()
    assert report.result.reason != Reason.PRESENTATION_ATTACK


def test_a_genuine_pass_keeps_its_verdict_and_reports_the_score(pad_models):
    report = replay(HEADTURN, "turn_left,turn_right", pad_models=pad_models)
    assert report.result.passed
    data = report.to_dict()
    assert data["pad"]["verdict"] == "pass" and data["pad"]["score"] >= load_thresholds().review
    assert [s["code"] for s in data["signals"]] == ["pad_passed"]
    for challenge in data["challenges"]:
        assert challenge["asked_at_s"] < challenge["onset_at_s"] <= challenge["completed_at_s"]


def test_cli_fails_a_replay_with_presentation_attack():
    from tests.support.media import pad_model_dir

    clip = str(video("attack_phone_replay_selfie_video_young_man_15s.mp4"))
    done = cli("liveness", clip, "--challenges", "blink", "--json", "--pad-model-dir", str(pad_model_dir()))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["passed"] is False and data["reason"] == "presentation_attack"
    assert data["pad"]["verdict"] == "attack" and data["pad"]["frames_scored"] >= 1
    assert data["signals"][0]["code"] == "pad_attack"


def test_cli_without_a_pad_model_says_so():
    done = cli("liveness", str(video(BLINK)), "--challenges", "blink", "--json")
    data = json.loads(done.stdout)
    assert data["pad"]["verdict"] == "unavailable"
    assert "pad_unavailable" in [s["code"] for s in data["signals"]]


def test_frames_made_as_the_check_goes_are_judged_as_the_same_file():
    """replay_frames (a reactive player's way in) and replay_video decide a clip alike."""
    from server.liveness.replay import replay_frames

    def decoded(engine):
        with av.open(str(video(BLINK))) as container:
            for frame in container.decode(video=0):
                yield frame, float(frame.time)

    from_file = replay(BLINK, "blink,blink")
    made = replay_frames(decoded, parse_challenges("blink,blink"), landmarker_file())
    assert made.result.passed and from_file.result.passed
    assert [(c.asked_at, c.completed_at) for c in made.result.challenges] == [(c.asked_at, c.completed_at) for c in from_file.result.challenges]
    assert made.frames == from_file.frames
