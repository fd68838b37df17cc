"""The reactive splice player (realname_tools/reactive_splices.py): footage played on prompt."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from realname_tools.reactive_splices import PromptLog, ReactivePlayer
from server.liveness.challenges import parse_challenges
from server.liveness.replay import replay_frames
from server.models.loader import landmarker_file
from server.spoof.signals import Action, SignalCode
from tests.support.media import video

BLINK = "blink_frontal_man_phone_portrait_14s.mp4"


def labelled(*labels: int) -> list[np.ndarray]:
    return [np.full((2, 2, 3), label, np.uint8) for label in labels]


class AskingEngine:
    """Asks its challenges at the given seconds, as the engine would on its frames."""

    def __init__(self, asks: list[float]) -> None:
        self.asks = asks
        self.records = [SimpleNamespace(asked_at=None, completed_at=None) for _ in asks]
        self.result = None

    def at(self, t: float) -> None:
        for index, (record, asked) in enumerate(zip(self.records, self.asks, strict=True)):
            if record.asked_at is None and t >= asked:
                record.asked_at = asked
                if index:
                    self.records[index - 1].completed_at = asked


def played(player: ReactivePlayer, engine: AskingEngine, seconds: float) -> list[int]:
    out = []
    for frame, t in player.bgr_frames(engine):
        if t >= seconds:
            break
        out.append(int(frame[0, 0, 0]))
        engine.at(t)
    return out


def test_the_player_rests_until_a_prompt_then_plays_its_piece_and_rests_again():
    player = ReactivePlayer(rest=labelled(1, 2, 3), moves=[labelled(10, 11), labelled(20, 21, 22)], fps=10, latency_s=0.2, kbps=0)
    frames = played(player, AskingEngine([0.3, 1.0]), 1.6)
    # Rest forth and back (no jump at its loop); the first piece 0.2 s after its ask, then rest from where it
    # was; the second only after its own ask.
    assert frames == [1, 2, 3, 2, 1, 10, 11, 2, 3, 2, 1, 2, 20, 21, 22, 3]


def test_the_player_plays_a_piece_again_while_its_challenge_is_still_asked():
    player = ReactivePlayer(rest=labelled(1), moves=[labelled(10, 11)], fps=10, latency_s=0.0, kbps=0)
    frames = played(player, AskingEngine([0.0]), 2.6)
    assert frames == [1, 10, 11] + [1] * 19 + [10, 11, 1, 1], "2 s after the piece ended, its challenge still asked"


def test_the_prompts_heard_say_what_was_asked_and_done():
    log = PromptLog(2)
    log.heard({"type": "prompt", "phase": "start", "step": 0}, 0.5)
    log.heard({"type": "prompt", "phase": "challenge", "challenge": "blink", "step": 0}, 1.0)
    log.heard({"type": "prompt", "phase": "challenge", "challenge": "blink", "step": 0, "hint": "look_straight"}, 1.2)
    log.heard({"type": "prompt", "phase": "return", "step": 1}, 2.0)
    log.heard({"type": "prompt", "phase": "challenge", "challenge": "smile", "step": 1}, 2.5)
    assert [(r.asked_at, r.completed_at) for r in log.records] == [(1.0, 2.0), (2.5, None)]
    log.heard({"type": "result", "status": "failed"}, 3.0)
    assert log.result == {"type": "result", "status": "failed"}


def test_the_player_stops_when_the_check_is_decided():
    engine = AskingEngine([0.1])
    engine.result = "decided"
    assert played(ReactivePlayer(labelled(1), [labelled(2)], fps=10, kbps=0), engine, 1.0) == []


def test_footage_played_on_prompt_cuts_where_the_check_sees_it():
    """The blink clip's pieces (eval_injection's design splice): rest, then each blink as it is asked, through
    VP8 as a scripted peer sends it. Every switch is a cut in the prompt's reaction window."""
    player = ReactivePlayer.of([(video(BLINK), 0.6, 1.6), (video(BLINK), 9.0, 9.8), (video(BLINK), 3.2, 4.0)])
    report = replay_frames(player.frames, parse_challenges("blink,blink"), landmarker_file())
    assert [c.passed for c in report.result.challenges] == [True, True], "the pieces perform what they are played for"
    discontinuity = [s for s in report.signals if s.code == SignalCode.STREAM_DISCONTINUITY]
    assert discontinuity and discontinuity[0].action == Action.FAIL, report.to_dict()
