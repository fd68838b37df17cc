"""Spliced footage played on prompt: the reactive player of a scripted peer or a virtual camera (issue 24).

A splice file has a fixed timeline: its cuts fall wherever its author put them, and its movements answer
the prompts only if the check asks at the right moments. The attacker of the issue does better: a
scripted peer (or a virtual camera in a real browser) loops footage of the person at rest and, when a
prompt arrives, plays the piece of footage that performs it, then goes back to rest. Every switch is
then a cut between the prompt and the movement's onset, and the reaction looks human (the player's
latency plus the piece's own lead-in).

`ReactivePlayer` is that player, driven by the engine itself (what it asked, and when), judged offline
through `server.liveness.replay.replay_frames` with every frame analysed, as `replay_video` judges a
file. The frames go through VP8 at the scripted client's bit rate on the way, as they would on the wire.
`ReactiveTrack` is the same player as a scripted peer's track, hearing the live check's prompts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from realname_tools.client import VIDEO_CLOCK, Vp8Link
from realname_tools.splices import FPS, piece_frames

CLIENT_KBPS = 1000  # realname_tools/client.py's default bit rate
LATENCY_S = 0.3  # from the engine's ask to the switch: the prompt's way to the page, the script's reaction
MAX_S = 40.0  # the player gives up (the engine's own timeouts come first)
RETRY_S = 2.0  # a piece played again when its challenge is still asked this long after it ended


@dataclass(frozen=True)
class ReactivePlayer:
    """`rest`: BGR frames of the person at rest (looped forth and back: no cut at the loop); `moves`: one
    piece per challenge, in the order asked, each from rest to rest."""

    rest: list[np.ndarray]
    moves: list[list[np.ndarray]]
    fps: float = FPS
    latency_s: float = LATENCY_S
    kbps: int = CLIENT_KBPS  # 0: the frames as they are, no codec on the way

    @classmethod
    def of(cls, pieces: list[tuple[Path, float, float]], latency_s: float = LATENCY_S, kbps: int = CLIENT_KBPS) -> ReactivePlayer:
        """The first piece is the rest, the others the challenges' pieces (a `--splice` spec's pieces)."""
        rest = piece_frames(*pieces[0], None)
        size = (rest[0].shape[1], rest[0].shape[0])
        return cls(rest, [piece_frames(path, start, end, size) for path, start, end in pieces[1:]], FPS, latency_s, kbps)

    def bgr_frames(self, engine) -> Iterator[tuple[np.ndarray, float]]:
        """(BGR frame, seconds) as the check goes: rest until `latency_s` after each ask, then its piece; the
        piece again `RETRY_S` after it ended while its challenge is still asked (the check missed it)."""
        rest_index, step, played, piece, at, ended = 0, 1, 0, None, 0, 0.0
        for n in range(int(MAX_S * self.fps)):
            t = n / self.fps
            if engine.result is not None:
                return
            if piece is None and played < len(self.moves) and played < len(engine.records):
                asked = engine.records[played].asked_at
                if asked is not None and t >= asked + self.latency_s:
                    piece, at, played = self.moves[played], 0, played + 1
            if piece is None and played and engine.records[played - 1].completed_at is None and t >= ended + RETRY_S:
                piece, at = self.moves[played - 1], 0
            if piece is not None:
                yield piece[at], t
                at += 1
                if at == len(piece):
                    piece, ended = None, t
                continue
            yield self.rest[rest_index], t
            if len(self.rest) > 1:
                if not 0 <= rest_index + step < len(self.rest):
                    step = -step
                rest_index += step

    def frames(self, engine) -> Iterator[tuple[object, float]]:
        """(av.VideoFrame, seconds): `bgr_frames` as the server receives them."""
        import av

        link = Vp8Link(self.kbps * 1000) if self.kbps else None
        for n, (bgr, t) in enumerate(self.bgr_frames(engine)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24").reformat(format="yuv420p")
            if link is not None:
                frame = link.received(frame, t)
                if frame is None:
                    continue
            frame.pts, frame.time_base = n, Fraction(1, int(round(self.fps)))
            yield frame, t


class PromptLog:
    """What a live check's prompts said, on the player's clock: the part of an engine `ReactivePlayer` reads."""

    def __init__(self, challenges: int) -> None:
        self.records = [SimpleNamespace(asked_at=None, completed_at=None) for _ in range(challenges)]
        self.result: dict | None = None

    def heard(self, message: dict, t: float) -> None:
        """A data channel message (server/rtc/protocol.py) heard `t` seconds into the stream: a prompt's
        `step` is the challenges done so far."""
        if message.get("type") == "result":
            self.result = message
            return
        step = message.get("step")
        if message.get("type") != "prompt" or not isinstance(step, int):
            return
        for record in self.records[:step]:
            if record.completed_at is None:
                record.completed_at = t
        if message.get("phase") == "challenge" and 0 <= step < len(self.records) and self.records[step].asked_at is None:
            self.records[step].asked_at = t


class ReactiveTrack(MediaStreamTrack):
    """The player as a scripted peer's camera track: it hears the prompts (realname_tools/client.py hands it
    every message) and plays each piece as its challenge is asked; aiortc encodes it as it sends it."""

    kind = "video"

    def __init__(self, player: ReactivePlayer, challenges: int) -> None:
        super().__init__()
        self.player = player
        self.log = PromptLog(challenges)
        self._frames = player.bgr_frames(self.log)
        self._start: float | None = None
        self._sent = 0

    def heard(self, message: dict) -> None:
        self.log.heard(message, time.monotonic() - self._start if self._start is not None else 0.0)

    async def recv(self):
        import av

        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._sent / self.player.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            bgr, _ = next(self._frames)
        except StopIteration:
            self.stop()
            raise MediaStreamError from None
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = int(self._sent * VIDEO_CLOCK / self.player.fps), Fraction(1, VIDEO_CLOCK)
        self._sent += 1
        return frame
