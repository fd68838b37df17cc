"""The kept faces of a live check, embedded while the check goes on: the decision does not wait for them.

The analyzer keeps the best face crop of each calm moment (`start`, then `after_N` between challenges:
the crops the match and the same-person check use). A slot is final once the engine has left the phase
that keeps it. After each analysed frame (no analysis of the check runs then) the event loop hands each
newly final crop, once, to the analysis executor, which embeds it as the decision would have. The
decision then embeds only what it was not handed: the faces compared are always the very crops the check
kept, so a crop that changed after it was handed over is embedded again.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import numpy as np

from ..liveness.analyzer import LivenessAnalyzer
from ..liveness.engine import LivenessEngine, Phase
from ..matching.matcher import EmbeddedFace, FaceMatcher


def open_slot(engine: LivenessEngine) -> str | None:
    """The slot whose crop the engine may still replace (None: every kept crop is final)."""
    if engine.phase == Phase.START:
        return "start"
    if engine.phase == Phase.RETURN:
        return f"after_{engine.index}"
    return None


class LiveFaces:
    def __init__(self, matcher: FaceMatcher, executor: Executor) -> None:
        self.matcher = matcher
        self.executor = executor
        self._handed: dict[str, tuple[np.ndarray, asyncio.Future]] = {}  # slot -> (crop, its embedding job)

    def kick(self, analyzer: LivenessAnalyzer) -> None:
        """On the event loop, between two analysed frames: embed the crops that became final."""
        still_open = open_slot(analyzer.engine)
        for slot, crop in list(analyzer.kept_faces.items()):
            if slot == still_open or slot in self._handed:
                continue
            try:
                job = asyncio.get_running_loop().run_in_executor(self.executor, self.matcher.embed_live, [crop])
            except RuntimeError:  # the executor is shutting down with the service
                return
            job.add_done_callback(_quiet)
            self._handed[slot] = (crop, job)

    async def faces(self, slots: tuple[str, ...], analyzer: LivenessAnalyzer) -> list[EmbeddedFace]:
        """The embedded faces of the check's kept crops in `slots` (time order), as `embed_live` gives them."""
        loop = asyncio.get_running_loop()
        faces: list[EmbeddedFace] = []
        for slot in slots:
            crop = analyzer.kept_faces.get(slot)
            if crop is None:
                continue
            handed = self._handed.get(slot)
            found: list[EmbeddedFace] | None = None
            if handed is not None and handed[0] is crop:
                try:
                    found = await asyncio.shield(handed[1])
                except Exception:  # embedded again below: the decision sees the error, as before
                    found = None
            if found is None:
                found = await loop.run_in_executor(self.executor, self.matcher.embed_live, [crop])
            faces.extend(found)
        return faces


def _quiet(job: asyncio.Future) -> None:
    """A job nobody awaits (the check failed) must not log 'exception never retrieved'."""
    if not job.cancelled():
        job.exception()
