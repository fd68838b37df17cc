"""The frames the landmarker skips (issue 28 items 1 and 3), against the real server on a live key.

The neutral stretch runs the landmarker at 10 frames a second (a blink awaited may run lower, the test
was first made at 5); the frames between are watched only for a change in the eyes or the face
(server/liveness/change_watch.py). An
attacker who knows it holds a still picture of the ID's owner (which never blinks) to the camera and, in
short bursts between, the face of an accomplice who blinks, hoping the bursts fall between analysed frames
and the blink is counted for the still. The bursts change the eyes in the watched boxes, so they are
analysed like every other frame; but the engine's own continuity is the face's place and size, and the
accomplice's face sits where the owner's does: with every frame analysed (the rates before) the engine
counted the accomplice's blink just the same (measured: 2 of 2 passed the engine, as with the watch).
What stands against it is the stream cue fed every frame received, analysed or skipped: each burst is a
cut (and here reference_replay, the ID photo being a frame of the owner's footage).
"""

from __future__ import annotations

import pytest

from realname_tools.client import load_clip
from tests.attacks.test_injection_attacks import JitteredTrack, disguised_as_chrome, scripted_check, signal
from tests.support.media import video
from tests.test_live_flow import BLINK_CLIP

ACCOMPLICE_CLIP = "lp_d7_winks_blinks_woman_6s.mp4"  # blinks several times in 6 s
STILL_FROM_S = 0.9  # the owner's face from here on: one still frame, eyes open
# The bursts begin once the check has started on the still: the light gate judges the stream from its
# first second on (server/liveness/light.py), and the bursts keep a neutral face from holding steady.
BURSTS_FROM_S = 2.5
BURST, EVERY = 2, 6  # frames of the accomplice in every 6 (a third of the time: 84 ms bursts at 24 fps)


@pytest.fixture(scope="module")
def spliced_clip() -> tuple[list, float]:
    owner, fps = load_clip(video(BLINK_CLIP), max_seconds=10.0)
    accomplice, _ = load_clip(video(ACCOMPLICE_CLIP))
    width, height = owner[0].width, owner[0].height
    accomplice = [f.reformat(width=width, height=height, format="yuv420p") for f in accomplice]
    still, bursts = int(STILL_FROM_S * fps), int(BURSTS_FROM_S * fps)
    frames = owner[:still]
    for i in range(still, len(owner)):
        frames.append(accomplice[i % len(accomplice)] if i >= bursts and (i // BURST) % (EVERY // BURST) == 0 else owner[still])
    return frames, fps


async def test_an_accomplices_blink_in_bursts_between_analysed_frames_fails_the_check(server, services, live_key, spliced_clip):
    track = JitteredTrack(*spliced_clip, jitter_s=0.002)
    track.loop = False
    data = await scripted_check(server, services, live_key, track, disguised_as_chrome, challenges=("blink",))
    seen = {k: data.get(k) for k in ("status", "failure_reason")} | {"signals": (data.get("liveness") or {}).get("signals")}
    assert data["status"] != "approved" and data["decision"] != "approved", seen
    assert data["failure_reason"] == "presentation_attack", seen
    # The bursts are cuts in the stream, seen whether or not their frames were analysed: one sends the
    # check to review, two or more fail it (how many fall in the challenge depends on how soon it ends).
    cut = signal(data, "stream_discontinuity")
    assert cut is not None and cut["action"] in ("review", "fail") and cut["detail"]["during_challenges"] >= 1, seen
