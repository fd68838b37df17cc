"""One customer's live check over WebRTC: receive the camera track, analyse only the newest frame.

The track is drained continuously by one task, which keeps just the latest decoded frame; a second task
hands that frame to the analysis in a worker thread and, when it is done, takes whatever frame is newest
then. Frames that arrive while analysis runs replace each other and are counted as dropped, so a slow
analysis never builds a backlog and the customer never sees a growing delay. The analysis says how many
frames a second its current step needs; frames arriving sooner than that after the last analysed one
are skipped unanalysed (counted apart from frames dropped for want of time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from ..liveness.analyzer import frame_due
from . import decoding, jitterbuffer, protocol
from .bandwidth import limit_video_bitrate
from .ice import uses_relay

log = logging.getLogger(__name__)

BUSY_WAIT_MS = 15.0  # mean wait for a free analysis worker above which a stream is paced
BUSY_HOLD_S = 2.0  # pacing lasts this long after the last such wait


@dataclass
class StepResult:
    message: dict[str, Any] | None = None  # sent to the page when not None
    done: bool = False
    needed_fps: float | None = None  # analysed frames a second the next step needs; None: every frame
    sent_fps: float | None = None  # frames a second the page is to send in the next step; None: as it does


class FrameAnalysis(Protocol):
    """The pluggable per-frame step. Blocking; called from a worker thread, never concurrently."""

    def analyse(self, frame: Any, t: float) -> StepResult: ...

    def close(self) -> None: ...


@runtime_checkable
class FrameObserver(Protocol):
    """Optionally also a FrameAnalysis's: told of EVERY received frame, on the receive loop, before any is
    skipped or dropped. Must be cheap (well under a millisecond) and must not block. True: analyse this
    frame whatever the step's rate (the eye watch saw the eyes change)."""

    def observe(self, frame: Any, t: float) -> bool | None: ...


@dataclass
class StreamStats:
    started_at: float = field(default_factory=time.monotonic)
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    frames_received: int = 0
    frames_analysed: int = 0
    frames_dropped: int = 0
    width: int = 0
    height: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))  # arrival -> analysis result
    analysis_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    first_analysed_at: float | None = None
    last_analysed_at: float | None = None
    # Arrival time minus the frame's own (RTP) timestamp: constant plus any delay before the frame reached
    # the receive loop (network, decoder queue, a starved event loop). Its rise is a backlog the analysis
    # latencies cannot see.
    transit_s: deque = field(default_factory=lambda: deque(maxlen=2000))
    least_transit_s: float | None = None  # the stream's quickest frame: its transit, all constant delay
    queue_ms: deque = field(default_factory=lambda: deque(maxlen=2000))  # waiting for a free analysis worker
    frames_paced: int = 0  # analyses held back to the busy rate (see LiveConnection.busy_analysis_fps)
    frames_not_needed: int = 0  # skipped: sooner after the last analysed frame than the step needs
    # For the stream's risk signals (server/spoof/signals.py): each received frame's own timestamp, its
    # arrival, and its size when that changes.
    capture_s: deque = field(default_factory=lambda: deque(maxlen=2000))
    arrival_s: deque = field(default_factory=lambda: deque(maxlen=2000))
    sizes: deque = field(default_factory=lambda: deque(maxlen=2000))
    bytes_received: int | None = None  # over the connection's transport, read when it ends
    # The rate the page was asked to send at (protocol.rate_message) when each frame with a timestamp
    # arrived (aligned with capture_s), and the frames and seconds received under each asked rate.
    asked_fps: deque = field(default_factory=lambda: deque(maxlen=2000))
    by_asked: dict[float, list[float]] = field(default_factory=dict)  # asked fps -> [frames, seconds]

    def lag_ms(self) -> float | None:
        """How late the newest frame reached the receive loop, after the stream's quickest (None: no timestamps)."""
        if not self.transit_s or self.least_transit_s is None:
            return None
        return (self.transit_s[-1] - self.least_transit_s) * 1000

    def elapsed(self) -> float:
        """Seconds from the connection's start to the newest frame (the liveness engine's clock)."""
        return (self.last_frame_at or time.monotonic()) - self.started_at

    def summary(self) -> dict[str, Any]:
        def rate(count: int, start: float | None, end: float | None) -> float:
            return round(count / (end - start), 2) if start is not None and end is not None and end > start else 0.0

        def pct(values: deque, q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

        def thirds(values) -> list[float | None]:
            # Median of the first, middle and last third (in arrival order): a backlog shows as a rise.
            items = list(values)
            n = len(items)
            return [pct(deque(items[i * n // 3 : (i + 1) * n // 3]), 0.5) for i in range(3)] if n >= 3 else []

        least = min(self.transit_s, default=0.0)
        span = (self.last_frame_at or 0.0) - self.started_at
        lag_ms = deque((t - least) * 1000 for t in self.transit_s)
        return {
            "frames_received": self.frames_received,
            "frames_analysed": self.frames_analysed,
            "frames_dropped": self.frames_dropped,
            "duration_s": round(self.last_frame_at - self.first_frame_at, 2) if self.first_frame_at and self.last_frame_at else 0.0,
            "received_fps": rate(self.frames_received - 1, self.first_frame_at, self.last_frame_at),
            "analysed_fps": rate(self.frames_analysed - 1, self.first_analysed_at, self.last_analysed_at),
            "latency_ms": {"p50": pct(self.latencies_ms, 0.5), "p95": pct(self.latencies_ms, 0.95), "max": pct(self.latencies_ms, 1.0)},
            "latency_p50_ms_by_third": thirds(self.latencies_ms),
            "analysis_ms": {"p50": pct(self.analysis_ms, 0.5), "p95": pct(self.analysis_ms, 0.95)},
            "queue_wait_ms": {"p50": pct(self.queue_ms, 0.5), "p95": pct(self.queue_ms, 0.95)},
            "frames_paced": self.frames_paced,
            "frames_not_needed": self.frames_not_needed,
            "arrival_lag_ms": {"p50": pct(lag_ms, 0.5), "p95": pct(lag_ms, 0.95), "max": pct(lag_ms, 1.0)},
            "arrival_lag_p50_ms_by_third": thirds(lag_ms),
            "resolution": f"{self.width}x{self.height}" if self.width else None,
            # From the connection's start: the media with its RTP, RTCP and the data channel.
            "received_kbps": round(self.bytes_received * 8 / 1000 / span) if self.bytes_received is not None and span > 0 else None,
            # Frames received a second while the page was asked for each rate (from the ask, so the
            # page's and its encoder's reaction time is in it).
            "received_fps_by_asked": {f"{fps:g}": round(n / s, 2) for fps, (n, s) in sorted(self.by_asked.items()) if s > 0},
        }


class LiveConnection:
    def __init__(
        self,
        analysis: FrameAnalysis,
        executor: Executor,
        configuration: RTCConfiguration,
        on_end: Callable[[str], Awaitable[None]],
        connect_timeout_s: float = 15.0,
        no_frames_timeout_s: float = 4.0,
        busy_analysis_fps: float = 20.0,
        on_frame: Callable[[float], None] | None = None,
        first_sent_fps: float | None = None,
    ) -> None:
        # When analyses wait for a free worker (on average over the last few frames more than
        # BUSY_WAIT_MS: every worker is busy, the machine is saturated), this stream is analysed at most
        # busy_analysis_fps times a second until BUSY_HOLD_S after the wait last exceeded that. Every
        # stream keeps a fair, steady rate, frames stop queueing behind other streams' frames, and the
        # receive loops and decoders keep CPU to spare. The liveness engine works on frame timestamps and
        # tolerates the lower rate. With workers free, every frame that can be analysed is. 0 turns it off.
        self.busy_analysis_fps = busy_analysis_fps or None
        self.on_frame = on_frame  # told each analysed frame's analysis time (ms), for the capacity model
        self.analysis = analysis
        self._observe = analysis.observe if isinstance(analysis, FrameObserver) else None
        self.executor = executor
        self.on_end = on_end
        self.connect_timeout_s = connect_timeout_s
        self.no_frames_timeout_s = no_frames_timeout_s
        self.stats = StreamStats()
        decoding.install()  # each decoded frame handed to the event loop with one callback (decoding.py)
        jitterbuffer.install()  # a frame decoded at its last packet, not one frame interval later (jitterbuffer.py)
        self.pc = RTCPeerConnection(configuration=configuration)
        self.end_reason: str | None = None
        self.closed = asyncio.Event()
        self._latest: tuple[Any, float] | None = None
        self._latest_wanted = False  # the observer asked for it to be analysed whatever the step's rate
        self._frame_ready = asyncio.Event()
        self._channel = None
        self._pending: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self._in_flight: asyncio.Future | None = None
        self._connected = False
        self._busy_until = 0.0
        self._queue_avg_ms = 0.0
        self._needed_fps: float | None = None
        self._last_analysed_t: float | None = None  # stream time of the last analysed frame
        # What the page was last asked to send: at first what it sends unasked (None: not known, so the
        # first step's rate is asked for).
        self._asked_fps: float | None = first_sent_fps
        self._asked_at: float | None = None  # since when (monotonic)

    # -- setup ------------------------------------------------------------------------------------

    @property
    def ever_connected(self) -> bool:
        return self._connected

    def relayed(self) -> bool | None:
        """Whether the media went through a TURN relay (None: no candidate pair was chosen)."""
        return uses_relay(self.pc)

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        pc = self.pc

        @pc.on("datachannel")
        def on_datachannel(channel) -> None:
            self._channel = channel
            for message in self._pending:
                channel.send(message)
            self._pending.clear()

            @channel.on("message")
            def on_message(message) -> None:
                if protocol.message_type(message) == "bye":
                    self._spawn(self.end("bye"))

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video" and not self._tasks_named("receive"):
                self._spawn(self._receive(track), "receive")
                self._spawn(self._analyse(), "analyse")

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected":
                self._connected = True
            elif state in ("failed", "closed") and self.end_reason is None:
                self._spawn(self.end("connection_" + state))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        await pc.setLocalDescription(await pc.createAnswer())
        self._spawn(self._watchdog(), "watchdog")
        local = pc.localDescription
        return RTCSessionDescription(sdp=limit_video_bitrate(local.sdp), type=local.type)

    def send(self, message: dict[str, Any]) -> None:
        text = protocol.encode(message)
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(text)
        elif self._channel is None:
            self._pending.append(text)

    # -- the two loops ----------------------------------------------------------------------------

    async def _receive(self, track) -> None:
        stats = self.stats
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if stats.first_frame_at is None:
                    stats.first_frame_at = now
                    stats.width, stats.height = frame.width, frame.height
                stats.last_frame_at = now
                stats.frames_received += 1
                self._count_asked(now, 1)
                if frame.time is not None:
                    stats.asked_fps.append(self._asked_fps)
                    stats.capture_s.append(float(frame.time))
                    stats.arrival_s.append(now)
                    stats.sizes.append((float(frame.time), frame.width, frame.height))
                    transit = now - frame.time
                    wrap = float(2**32 * frame.time_base)  # RTP timestamps are 32 bits
                    if stats.transit_s and transit - stats.transit_s[-1] > wrap / 2:
                        transit -= wrap
                    stats.transit_s.append(transit)
                    if stats.least_transit_s is None or transit < stats.least_transit_s:
                        stats.least_transit_s = transit
                wanted = False
                if self._observe is not None:
                    try:
                        wanted = self._observe(frame, now - stats.started_at) is True
                    except Exception:  # a frame it cannot read costs the observation, not the check
                        log.exception("frame observer failed")
                        self._observe = None
                if self._latest is not None:
                    stats.frames_dropped += 1
                # A frame the observer asked for waits for the analysis rather than give way to a newer one
                # it did not ask for (a blink's closed eyes while a frame is still being analysed).
                if not self._latest_wanted or wanted:
                    self._latest, self._latest_wanted = (frame, now), wanted
                self._frame_ready.set()
        except MediaStreamError:
            if self.end_reason is None:
                self._spawn(self.end("stream_ended"))

    async def _analyse(self) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats
        next_start = 0.0
        while self.end_reason is None:
            await self._frame_ready.wait()
            self._frame_ready.clear()
            if self._latest is None:
                continue
            if not self._latest_wanted and not frame_due(self._latest[1] - stats.started_at, self._last_analysed_t, self._needed_fps):
                self._latest, self._latest_wanted = None, False
                stats.frames_not_needed += 1
                continue
            if self.busy_analysis_fps and time.monotonic() < self._busy_until:
                pause = next_start - time.monotonic()
                if pause > 0:
                    stats.frames_paced += 1
                    await asyncio.sleep(pause)  # newer frames replace the waiting one meanwhile
            frame, arrived = self._latest
            self._latest, self._latest_wanted = None, False
            self._last_analysed_t = arrived - stats.started_at
            started = time.monotonic()
            next_start = started + 1 / self.busy_analysis_fps if self.busy_analysis_fps else 0.0
            self._in_flight = loop.run_in_executor(self.executor, _timed, self.analysis.analyse, frame, arrived - stats.started_at)
            try:
                # Shielded: when end() cancels this loop, the running analysis must not be cancelled with it
                # (end() waits for it before it reports and closes the model; a cancelled future would abort
                # end() itself and leave the session live).
                began, result = await asyncio.shield(self._in_flight)
            except Exception:
                log.exception("frame analysis failed")
                self._spawn(self.end("analysis_error"))
                return
            finally:
                self._in_flight = None
            done_at = time.monotonic()
            queued_ms = (began - started) * 1000
            stats.queue_ms.append(queued_ms)
            self._queue_avg_ms += 0.2 * (queued_ms - self._queue_avg_ms)
            if self._queue_avg_ms > BUSY_WAIT_MS:
                self._busy_until = began + BUSY_HOLD_S
            stats.frames_analysed += 1
            stats.first_analysed_at = stats.first_analysed_at or done_at
            stats.last_analysed_at = done_at
            stats.latencies_ms.append((done_at - arrived) * 1000)
            stats.analysis_ms.append((done_at - started) * 1000)
            self._needed_fps = result.needed_fps
            if result.sent_fps is not None and result.sent_fps != self._asked_fps:
                self._ask(result.sent_fps)
            if self.on_frame is not None:
                self.on_frame((done_at - began) * 1000)
            if result.message is not None:
                self.send(result.message)
            if result.done:
                self._spawn(self.end("completed"))
                return

    def _ask(self, fps: float) -> None:
        """Ask the page for another frame rate; the frames received count under it from now."""
        now = time.monotonic()
        self._count_asked(now, 0)
        self._asked_fps, self._asked_at = fps, now
        self.send(protocol.rate_message(fps))

    def _count_asked(self, now: float, frames: int) -> None:
        if self._asked_fps is None:  # before the first ask (the first analysed frame's): not counted
            return
        row = self.stats.by_asked.setdefault(self._asked_fps, [0, 0.0])
        row[0] += frames
        row[1] += now - (self._asked_at or now)
        self._asked_at = now

    async def _watchdog(self) -> None:
        while self.end_reason is None:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if not self._connected and self.stats.first_frame_at is None:
                if now - self.stats.started_at > self.connect_timeout_s:
                    self._spawn(self.end("connect_timeout"))
                    return
                continue
            last = self.stats.last_frame_at or self.stats.started_at
            if now - last > self.no_frames_timeout_s:
                self._spawn(self.end("no_frames"))
                return

    # -- ending -----------------------------------------------------------------------------------

    async def end(self, reason: str) -> None:
        """Stop analysing, let the owner react (it may still send messages), then free everything."""
        if self.end_reason is not None:
            return
        self.end_reason = reason
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task.get_name() in ("receive", "analyse", "watchdog"):
                task.cancel()
        if self._in_flight is not None:
            try:
                await asyncio.shield(self._in_flight)
            except Exception:
                pass
        await self._read_bytes_received()
        try:
            await self.on_end(reason)
        except Exception:
            log.exception("live check end handler failed")
        finally:
            # Shielded: even a cancelled end must free the peer and close the model (MediaPipe must not
            # be left to the garbage collector, whose close from __del__ can deadlock).
            await asyncio.shield(self._release())

    async def _read_bytes_received(self) -> None:
        try:
            for receiver in self.pc.getReceivers():
                report = await asyncio.wait_for(receiver.getStats(), timeout=1)
                for item in report.values():
                    if item.type == "transport":
                        self.stats.bytes_received = item.bytesReceived
                        return
        except Exception:  # statistics only: a closing transport may have none
            return

    async def _release(self) -> None:
        try:
            await asyncio.wait_for(self.pc.close(), timeout=5)
        except Exception:
            log.warning("peer connection did not close cleanly")
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.analysis.close)
        finally:
            self.closed.set()

    def _spawn(self, coroutine, name: str = "end") -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _tasks_named(self, name: str) -> list[asyncio.Task]:
        return [t for t in self._tasks if t.get_name() == name]


def _timed(analyse: Callable[[Any, float], StepResult], frame: Any, t: float) -> tuple[float, StepResult]:
    """In the worker: when the analysis began (after any wait for a free worker), and its result."""
    return time.monotonic(), analyse(frame, t)

