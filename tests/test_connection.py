"""The live connection's analysis loop and ending (server/rtc/connection.py)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from server.rtc.connection import LiveConnection, StepResult
from tests.support.waiting import eventually


class SlowAnalysis:
    def __init__(self) -> None:
        self.running = threading.Event()
        self.log: list[str] = []

    def analyse(self, frame, t: float) -> StepResult:
        self.log.append("analyse")
        self.running.set()
        time.sleep(0.3)
        self.log.append("analysed")
        return StepResult()

    def close(self) -> None:
        self.log.append("close")


async def test_bye_while_a_frame_is_being_analysed_still_ends_the_check():
    """Found by the bench: under load a frame is always in analysis when 'bye' comes. Ending must wait for
    it, report the end and close the model after it, not be aborted by the cancelled analysis loop."""
    from aiortc import RTCConfiguration

    analysis, ended = SlowAnalysis(), []

    async def on_end(reason: str) -> None:
        ended.append(reason)

    with ThreadPoolExecutor(max_workers=1) as executor:
        connection = LiveConnection(analysis, executor, RTCConfiguration(), on_end=on_end)
        connection._spawn(connection._analyse(), "analyse")
        connection._latest = (object(), time.monotonic())
        connection._frame_ready.set()
        await asyncio.get_running_loop().run_in_executor(None, analysis.running.wait, 30)
        await asyncio.wait_for(connection.end("bye"), timeout=30)
        await asyncio.wait_for(connection.closed.wait(), timeout=30)
    assert ended == ["bye"]
    assert analysis.log == ["analyse", "analysed", "close"]


class PacedAnalysis:
    """Says it needs `fps` frames a second, and records the stream times it analysed."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.times: list[float] = []

    def analyse(self, frame, t: float) -> StepResult:
        self.times.append(t)
        return StepResult(needed_fps=self.fps)

    def close(self) -> None:
        pass


async def test_frames_sooner_than_the_step_needs_are_skipped_and_each_analysis_is_reported():
    from aiortc import RTCConfiguration

    analysis, costs = PacedAnalysis(10.0), []

    async def on_end(reason: str) -> None:
        pass

    with ThreadPoolExecutor(max_workers=1) as executor:
        connection = LiveConnection(analysis, executor, RTCConfiguration(), on_end=on_end, on_frame=costs.append)
        connection._spawn(connection._analyse(), "analyse")
        start = connection.stats.started_at
        for index in range(31):  # one second of a 30 fps camera, each frame handled before the next
            connection._latest = (object(), start + index / 30)
            connection._frame_ready.set()
            assert await eventually(lambda: connection._latest is None and connection._in_flight is None, step=0.002)
        await asyncio.wait_for(connection.end("bye"), timeout=30)
    assert len(analysis.times) == 11  # the first frame, then one every 0.1 s
    assert connection.stats.frames_not_needed == 20 and connection.stats.frames_dropped == 0
    assert len(costs) == 11 and all(ms >= 0 for ms in costs)


class ObservedAnalysis(SlowAnalysis):
    """A slow analysis that is also told of every received frame (the continuity of the stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.observed: list[float] = []

    def observe(self, frame, t: float) -> None:
        self.observed.append(frame.time)


class FakeTrack:
    def __init__(self, frames: int) -> None:
        self.left = frames

    async def recv(self):
        from fractions import Fraction
        from types import SimpleNamespace

        from aiortc.mediastreams import MediaStreamError

        await asyncio.sleep(0.005)
        if self.left == 0:
            raise MediaStreamError
        self.left -= 1
        return SimpleNamespace(time=(40 - self.left) / 20, time_base=Fraction(1, 90000), width=64, height=48)


async def test_every_received_frame_is_observed_while_the_analysis_takes_only_some():
    from aiortc import RTCConfiguration

    analysis, ended = ObservedAnalysis(), []

    async def on_end(reason: str) -> None:
        ended.append(reason)

    with ThreadPoolExecutor(max_workers=1) as executor:
        connection = LiveConnection(analysis, executor, RTCConfiguration(), on_end=on_end)
        connection._spawn(connection._receive(FakeTrack(40)), "receive")
        connection._spawn(connection._analyse(), "analyse")
        await asyncio.wait_for(connection.closed.wait(), timeout=30)
    assert ended == ["stream_ended"]
    assert analysis.observed == [i / 20 for i in range(1, 41)]
    assert analysis.log.count("analyse") < 40 and connection.stats.frames_dropped > 0


class SteppedAnalysis:
    """Each analysed frame's step asks the page for the rate in `sent` (one entry per frame, the last kept)."""

    def __init__(self, sent: list[float]) -> None:
        self.sent = sent
        self.index = 0

    def analyse(self, frame, t: float) -> StepResult:
        rate = self.sent[min(self.index, len(self.sent) - 1)]
        self.index += 1
        return StepResult(sent_fps=rate)

    def close(self) -> None:
        pass


async def test_the_page_is_asked_for_another_rate_only_when_the_step_changes_it():
    from aiortc import RTCConfiguration

    async def on_end(reason: str) -> None:
        pass

    analysis = SteppedAnalysis([20.0, 20.0, 12.0, 12.0, 12.0, 20.0])
    with ThreadPoolExecutor(max_workers=1) as executor:
        connection = LiveConnection(analysis, executor, RTCConfiguration(), on_end=on_end, first_sent_fps=20.0)
        connection._spawn(connection._receive(FakeTrack(40)), "receive")
        connection._spawn(connection._analyse(), "analyse")
        await asyncio.wait_for(connection.closed.wait(), timeout=30)
    sent = [json.loads(text) for text in connection._pending]  # no data channel: what would have gone out
    assert [m for m in sent if m["type"] == "rate"] == [{"type": "rate", "fps": 12.0}, {"type": "rate", "fps": 20.0}]
    by_asked = connection.stats.summary()["received_fps_by_asked"]
    assert set(by_asked) == {"20", "12"}
    assert len(connection.stats.asked_fps) == len(connection.stats.capture_s)  # each frame's asked rate, for the signals


class LaggingTrack(FakeTrack):
    """Frames captured 1 ms apart but delivered at least 5 ms apart: each reaches the loop later than the last."""

    async def recv(self):
        frame = await super().recv()
        frame.time = (40 - self.left) / 1000
        return frame


async def test_the_receive_lag_is_each_frames_delay_beyond_the_streams_quickest():
    from aiortc import RTCConfiguration

    async def on_end(reason: str) -> None:
        pass

    with ThreadPoolExecutor(max_workers=1) as executor:
        connection = LiveConnection(ObservedAnalysis(), executor, RTCConfiguration(), on_end=on_end)
        assert connection.stats.lag_ms() is None  # nothing received yet
        connection._spawn(connection._receive(LaggingTrack(40)), "receive")
        await asyncio.wait_for(connection.closed.wait(), timeout=30)
    stats = connection.stats
    transits = list(stats.transit_s)
    assert all(later > earlier for earlier, later in zip(transits, transits[1:], strict=False))  # each frame later than the last
    assert stats.least_transit_s == transits[0]  # the quickest: the stream's constant delay
    assert stats.lag_ms() == (transits[-1] - transits[0]) * 1000 > 0  # the newest frame's delay beyond it
