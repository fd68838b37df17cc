"""Admission of live checks by measured capacity, and the waiting line of those who arrive when it is full.

The service measures what one analysed frame costs it: CPU milliseconds of the whole process (analysis,
VP8 decoding, the WebRTC stack, the event loop) per analysed frame, kept current from live checks, and at
first from a synthetic face before any check ran (landmarker time times a typical whole-process factor).
From that, its cores and the rate every check needs, it knows how many checks it carries at once; a new
check is admitted only while there is room for it at that rate. The cost grows with the load (cores that
share caches run slower when all are busy), so the service climbs one check at a time: it admits at most
one more check than were live through a whole cost reading. Those who find it full get a place in
line and an estimated wait; their page asks again and the first in line get the places that free up.

The line never keeps a place idle (it is work-conserving): only customers whose page asks on schedule
count as present, and only those present ahead of a customer keep a free place from them; a free place
that none of them claimed within a few seconds goes to whoever asks. A page that misses about two asks
loses its place; a page that closes says so (its bye leaves the line); a new session of the same customer
(the merchant's reference or the same browser) takes over the old session's place instead of leaving it.

Several instances on one database share one line (server/storage/waiting_line.py loads it here for each
ask and stores it back): a customer is admitted where a place is free, here or on another instance
(`elsewhere`: the free places each other instance published), in arrival order across all of them.

Pure bookkeeping: no clock or I/O of its own (callers pass `now` and the CPU time they read).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median
from typing import Any

# Share of all cores the live checks may plan to use: the rest absorbs jitter, uploads and API calls.
HEADROOM = 0.85
# Whole-process CPU per analysed frame over the landmarker's time on the synthetic face, for the estimate
# made before any check ran. 1.8 admitted 9 checks where live timings then carried 7 (docs/benchmarks.md).
PROCESS_FACTOR = 2.2
COST_WINDOW_FRAMES = 60  # a new cost reading every this many analysed frames...
COST_WINDOW_MIN_S = 1.0  # ...over at least this long
COST_GAP_S = 5.0  # this long without frames, a window would measure idle time, not frames: start anew
COST_WEIGHT = 0.3  # weight of each new reading in the running cost
DEFAULT_CHECK_S = 20.0  # a live check's length before any ended (for wait estimates)
CHECK_WEIGHT = 0.2
RETRY_AFTER_S = 3.0  # how soon a waiting page asks again
SOON_RETRY_S = 1.0  # ...when a place may open any moment: next in line, or while the service climbs
# An ask may come this much later than asked for and still be on schedule: the page sets up a new offer
# (gathering ICE candidates) and the network or a busy phone delays it.
ASK_SLACK_S = 2.0
KEEP_PLACE_S = 2 * RETRY_AFTER_S + ASK_SLACK_S  # missing about two asks loses the place
HOLD_S = SOON_RETRY_S + ASK_SLACK_S  # a free place waits this long at most for those present ahead
# Next in line, an answer is held up to SOON_RETRY_S for a place to free (server/flow/attempts.py); one
# that found none asks again this soon, so the page is nearly always there when a place frees.
AFTER_HELD_RETRY_S = 0.25
# Frames that reach the receive loop later and later are a backlog the CPU cost does not show: on a fast
# host the receive path (RTP, SRTP, a decoder thread a stream, all sharing the GIL with the analysis) fell
# behind at 21-22 checks with the cores 82 % busy (docs/benchmarks.md). A reading whose analysed frames
# arrived, on median, more than this after their own stream's quickest (arrival minus capture time) does
# not prove its load, and the room stops one check below it; it climbs again one check at a time once a
# reading's median is under half of it. At 19 checks on that host the median stayed at 12-13 ms; where the
# path fell behind it rose past 100 ms within a minute.
RECEIVE_LAG_LIMIT_MS = 60.0
# Only with this many checks live: one customer's poor link is then one stream of several (each stream's lag
# is its own, from its own quickest frame), and with fewer checks the receive path is not what runs out.
RECEIVE_LAG_MIN_LOAD = 4


@dataclass
class FrameCost:
    """CPU milliseconds of the whole process per analysed frame: an estimate, then live readings."""

    ms: float | None = None
    source: str = "none"  # none | synthetic | live
    analysis_ms: float | None = None  # a frame's analysis alone, in its worker (wall time)
    _window_cpu_s: float | None = None
    _window_at: float = 0.0
    _last_frame_at: float = 0.0
    _window_frames: int = 0
    proven_load: int = 0  # the most checks that were live through a whole reading (on average, rounded)
    receive_ceiling: int | None = None  # at most this many checks while the receive path falls behind
    lag_ms: float | None = None  # the last reading's median receive lag (RECEIVE_LAG_LIMIT_MS)
    _window_spread: float = 0.0  # the sum of 1 / checks live over the current window's frames
    _window_lags: list[float] = field(default_factory=list)

    def estimate(self, landmarker_ms: float) -> None:
        """Before any live frame: the synthetic face's landmarker time, scaled to the whole process."""
        if self.source != "live":
            self.ms, self.source = landmarker_ms * PROCESS_FACTOR, "synthetic"
            self.analysis_ms = landmarker_ms

    def frame(self, analysis_ms: float, cpu_s: float | Callable[[], float], now: float, load: int = 1, lag_ms: float | None = None) -> bool:
        """One analysed frame: its analysis time, the process's CPU seconds, the time now, the checks live
        and how late it reached the receive loop (ms after its stream's quickest frame; None: not known).
        True when a reading closed that lets one more check in (the climb, or the receive path caught up).

        `cpu_s` may be the function that reads the CPU seconds: it is then called only when a reading opens
        or closes (the process's CPU clock sums every thread, ~90 with 9 checks, with the GIL held)."""
        self.analysis_ms = analysis_ms if self.analysis_ms is None else self.analysis_ms + 0.02 * (analysis_ms - self.analysis_ms)
        # From the last frame, not the window's start: a check analysed slower than a reading's frames
        # in COST_GAP_S (a busy machine) still completes readings, and so does the climb.
        gap, self._last_frame_at = now - self._last_frame_at, now
        if self._window_cpu_s is None or gap > COST_GAP_S:
            self._open_window(_read(cpu_s), now)
            return False
        self._window_frames += 1
        self._window_spread += 1 / max(1, load)
        if lag_ms is not None:
            self._window_lags.append(lag_ms)
        if self._window_frames < COST_WINDOW_FRAMES or now - self._window_at < COST_WINDOW_MIN_S:
            return False
        proven, ceiling = self.proven_load, self.receive_ceiling
        cpu_s = _read(cpu_s)
        reading = (cpu_s - self._window_cpu_s) * 1000 / self._window_frames
        self.ms = reading if self.source != "live" or self.ms is None else self.ms + COST_WEIGHT * (reading - self.ms)
        self.source = "live"
        # The checks live through the reading, on average over its time (each frame stands for 1/load of
        # the time its check's share took): checks that end and start meanwhile do not hold the climb back.
        live = math.floor(self._window_frames / self._window_spread + 0.5)
        self.lag_ms = median(self._window_lags) if self._window_lags else None
        if self.lag_ms is not None and live >= RECEIVE_LAG_MIN_LOAD and self.lag_ms > RECEIVE_LAG_LIMIT_MS:
            self.receive_ceiling = max(1, live - 1)
        else:
            self.proven_load = max(self.proven_load, live)
            if self.receive_ceiling is not None and (self.lag_ms is None or self.lag_ms < RECEIVE_LAG_LIMIT_MS / 2):
                self.receive_ceiling += 1
                if self.receive_ceiling > self.proven_load:
                    self.receive_ceiling = None
        self._open_window(cpu_s, now)
        lifted = ceiling is not None and (self.receive_ceiling is None or self.receive_ceiling > ceiling)
        return self.proven_load > proven or lifted

    def _open_window(self, cpu_s: float, now: float) -> None:
        self._window_cpu_s, self._window_at, self._window_frames, self._window_spread = cpu_s, now, 0, 0.0
        self._window_lags = []


def _read(cpu_s: float | Callable[[], float]) -> float:
    return cpu_s() if callable(cpu_s) else cpu_s


def capacity_sessions(cost_ms: float | None, cores: int, fps: float, bound: int = 0, analysis_ms: float | None = None, workers: int = 0) -> int:
    """Checks the machine carries at `fps` analysed frames a second each: what its cores have time for
    and, with fewer analysis workers than cores, what the workers have time for; at least one, at most
    `bound` (0: no bound). Without a measured cost only the bound counts."""
    if cost_ms is None or cost_ms <= 0 or fps <= 0:
        room = bound or 1
    else:
        room = math.floor(cores * 1000 * HEADROOM / (cost_ms * fps))
        if workers and analysis_ms and workers < cores:
            room = min(room, math.floor(workers * 1000 * HEADROOM / (analysis_ms * fps)))
        room = max(1, room)
    return min(room, bound) if bound else room


@dataclass
class Place:
    session_id: str
    joined_at: float
    asked_at: float
    retry_s: float = RETRY_AFTER_S  # when its page was told to ask again
    keys: tuple[str, ...] = ()  # who the customer is beyond this session (see `Admission.ask`)
    asks: int = 1

    def present(self, now: float) -> bool:
        """Its page asks on schedule: it has missed no ask."""
        return now - self.asked_at <= self.retry_s + ASK_SLACK_S

    def holds(self, now: float) -> bool:
        """It may keep a free place from those behind it: present, and it has asked again since it joined
        (one who asked once and left, as a closed tab or a "try again" does, is not waited for)."""
        return self.asks > 1 and self.present(now)


@dataclass(frozen=True)
class Admit:
    """The answer to one offer: in, or a place in line (1 = next) with an estimated wait."""

    admitted: bool
    position: int = 0
    wait_s: float = 0.0
    retry_after_s: float = RETRY_AFTER_S
    joined: bool = False  # it has just joined the line (the session's timeline says so once)
    waited_s: float | None = None  # admitted after waiting this long in line
    instance: str | None = None  # admitted on this other instance (the shared line), None: here

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "wait_s": round(self.wait_s), "retry_after_s": self.retry_after_s}


@dataclass
class Admission:
    cores: int
    workers: int = 0  # analysis threads (0: unknown, the cores alone bound the capacity)
    cost: FrameCost = field(default_factory=FrameCost)
    check_s: float = DEFAULT_CHECK_S
    line: list[Place] = field(default_factory=list)
    _free_since: float | None = None  # since when a place has been free while someone asked

    def capacity(self, fps: float, bound: int = 0) -> int:
        return capacity_sessions(self.cost.ms, self.cores, fps, bound, self.cost.analysis_ms, self.workers)

    def room(self, fps: float, bound: int = 0) -> int:
        """Checks that may be live now: the capacity, climbed to one check at a time, and fewer while the
        receive path falls behind (RECEIVE_LAG_LIMIT_MS)."""
        room = min(self.capacity(fps, bound), self.cost.proven_load + 1)
        return room if self.cost.receive_ceiling is None else min(room, self.cost.receive_ceiling)

    def ask(
        self, session_id: str, live: int, now: float, fps: float, bound: int = 0, keys: tuple[str, ...] = (), elsewhere: dict[str, int] | None = None
    ) -> Admit:
        """Synchronous, so the caller can reserve the place before anyone else asks.

        `keys` name the customer beyond this session (the merchant's reference, the browser): a new
        session of the same customer takes over the place of the old one, which has left. `elsewhere`:
        the free places of the other instances sharing the line; a place here is taken first."""
        self._forget_stale(now)
        room = self.room(fps, bound)
        capacity = self.capacity(fps, bound)
        free = room - live
        there = {name: n for name, n in (elsewhere or {}).items() if n > 0}
        self._free_since = (self._free_since if self._free_since is not None else now) if free > 0 else None
        index = self._place_of(session_id, keys)
        ahead = self.line[:index] if index is not None else self.line
        present_ahead = sum(p.present(now) for p in ahead)
        holding = sum(p.holds(now) for p in ahead)
        # Work-conserving: only those present ahead may keep a free place, and not for long.
        if free > 0 and (holding < free + sum(there.values()) or now - self._free_since >= HOLD_S):
            place = self.line.pop(index) if index is not None else None
            if free == 1:
                self._free_since = None
            return Admit(True, waited_s=round(now - place.joined_at, 1) if place is not None else None)
        if there and holding < sum(there.values()):
            place = self.line.pop(index) if index is not None else None
            return Admit(True, waited_s=round(now - place.joined_at, 1) if place is not None else None, instance=max(there, key=there.__getitem__))
        position = present_ahead + 1
        retry_s = SOON_RETRY_S if room < capacity or position <= capacity else RETRY_AFTER_S
        joined = index is None
        if joined:
            self.line.append(Place(session_id, now, now, retry_s, keys))
        else:
            place = self.line[index]
            place.session_id, place.asked_at, place.retry_s, place.keys = session_id, now, retry_s, keys or place.keys
            place.asks += 1
        # Places free up at about capacity / check length a second; those ahead take the first ones.
        rate = max(1, capacity) / max(1.0, self.check_s)
        return Admit(False, position=position, wait_s=max(retry_s, (position - max(0, free)) / rate), retry_after_s=retry_s, joined=joined)

    def leave(self, session_id: str) -> None:
        self.line = [p for p in self.line if p.session_id != session_id]

    def in_line(self, session_id: str) -> bool:
        return any(p.session_id == session_id for p in self.line)

    def _place_of(self, session_id: str, keys: tuple[str, ...]) -> int | None:
        """The index of the place of this session or of the same customer under another session: the
        first of them (one customer, one place: the others are dropped)."""
        mine = [i for i, p in enumerate(self.line) if p.session_id == session_id or set(keys) & set(p.keys)]
        if not mine:
            return None
        self.line = [p for i, p in enumerate(self.line) if i == mine[0] or i not in mine]
        return mine[0]

    def check_ended(self, seconds: float) -> None:
        if seconds > 0:
            self.check_s += CHECK_WEIGHT * (seconds - self.check_s)

    def snapshot(self, live: int, now: float, fps: float, bound: int = 0) -> dict[str, Any]:
        self._forget_stale(now)
        cost = self.cost
        return {
            "capacity_sessions": self.capacity(fps, bound),
            "admitting_up_to": self.room(fps, bound),
            "live_checks": live,
            "waiting": len(self.line),
            "waiting_present": sum(p.present(now) for p in self.line),
            "required_fps": fps,  # a check's planned mean: its steps' rates by their share of its time
            "max_live_sessions": bound or None,
            "cores": self.cores,
            "analysis_workers": self.workers or self.cores,
            "cpu_ms_per_frame": round(cost.ms, 2) if cost.ms is not None else None,
            "analysis_ms_per_frame": round(cost.analysis_ms, 2) if cost.analysis_ms is not None else None,
            "cost_source": cost.source,
            "receive_lag_ms": round(cost.lag_ms, 1) if cost.lag_ms is not None else None,
            "receive_ceiling": cost.receive_ceiling,
            "mean_check_s": round(self.check_s, 1),
        }

    def _forget_stale(self, now: float) -> None:
        self.line = [p for p in self.line if now - p.asked_at <= KEEP_PLACE_S]
