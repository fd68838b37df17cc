"""Passive anti-spoofing scored while a live check goes on, on scoring threads, never on the event loop.

The analysis offers frames to a `RunningPad`; after each analysed frame the event loop starts a scoring
job when a frame waits and none is running (one job per check at a time, so a slow machine scores fewer
frames instead of queueing them). The scoring threads run at a lower priority than the analysis: on a
saturated machine the challenges keep their frame rate and PAD scores fewer frames (its CPU time still
counts as live work for admission). When the check ends the verdict is read at once: it waits
for the frames already on their way (at most two: one being scored, one waiting) only while none is
scored yet, or, for an attempt that failed its challenges, while an attack verdict rests on too few
frames to end it as an attack.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor

from ..liveness.analyzer import PadFrame, PadModels, score_next
from ..spoof.pad import PadFramePolicy, PadResult, PadVerdict
from ..spoof.running import CONFIDENT_FRAMES, RunningPad

log = logging.getLogger(__name__)

SETTLE_WAIT_S = 1.0  # at the end, for the frames on their way (see verdict)
SCORING_NICENESS = 5  # below the analysis threads (0)


def scoring_thread() -> None:
    """Executor initializer: this thread yields to the liveness analysis when the cores are all busy."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SCORING_NICENESS)  # Linux: per-thread niceness
    except (AttributeError, OSError):
        pass


def scoring_executor(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pad", initializer=scoring_thread)


class PadScoring:
    def __init__(self, models: PadModels, executor: Executor, policy: PadFramePolicy | None = None) -> None:
        self.models = models
        self.executor = executor
        self.policy = policy or PadFramePolicy()
        self.running: RunningPad[PadFrame] = RunningPad(self.policy, models.thresholds)
        self._job: asyncio.Future | None = None

    def kick(self) -> None:
        """On the event loop: score the waiting frame, unless a job is already scoring one."""
        if self._job is not None or not self.running.waiting:
            return
        try:
            self._job = asyncio.get_running_loop().run_in_executor(self.executor, score_next, self.running, self.models)
        except RuntimeError:  # the executor is shutting down with the service
            return
        self._job.add_done_callback(self._finished)

    def _finished(self, job: asyncio.Future) -> None:
        self._job = None
        if not job.cancelled() and job.exception() is not None:
            log.warning("a frame could not be scored for anti-spoofing (%s)", type(job.exception()).__name__)
        self.kick()  # a frame chosen meanwhile

    async def verdict(self, failed: bool = False, deformation: float | None = None) -> PadResult:
        """The running verdict, with the check's `deformation` (flatness.py); scoring stops. Waits (at most SETTLE_WAIT_S) only while a frame is on its
        way and nothing is scored yet or, for a `failed` attempt, an attack verdict is not yet confident."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_WAIT_S
        while self._unsettled(failed):
            self.kick()
            left = deadline - loop.time()
            if self._job is None or left <= 0:
                break
            await asyncio.wait({self._job}, timeout=left)  # never cancels the job
        self.running.close()
        return self.running.result(deformation)

    def _unsettled(self, failed: bool) -> bool:
        now = self.running.result()
        return now.frames_scored == 0 or (failed and now.verdict == PadVerdict.ATTACK and now.frames_scored < CONFIDENT_FRAMES)
