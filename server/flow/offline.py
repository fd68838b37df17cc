"""A clip judged offline as a check would judge it (`python -m server liveness CLIP --reference PHOTO`):
the replayed check's challenges, passive anti-spoofing and stream signals (liveness/replay.py), then the
reference photo taken as an ID upload keeps it, the face match, `reference_replay`, and the decision of
flow/judgement.py. Blocking: for tools and tests, never the event loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..liveness.replay import ReplayReport
from ..matching.matcher import FaceMatcher, MatchResult
from ..reasons import Reason
from ..sessions import Status
from ..spoof.reference_replay import reference_replay_of
from ..spoof.signals import RiskSignal, SignalCode, strongest_first
from .judgement import judge
from .lifecycle import jpeg


@dataclass(frozen=True)
class ClipJudgement:
    report: ReplayReport
    status: Status  # what the session would become (`failed`: a check with attempts left would retry)
    failure_reason: str | None
    signals: list[RiskSignal]
    match: MatchResult | None = None
    attacks: tuple[str, ...] = ()
    review_because: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = self.report.to_dict()
        data.update(
            status=self.status.value,
            failure_reason=self.failure_reason,
            match=self.match.to_dict() if self.match is not None else None,
            signals=[s.to_dict() for s in self.signals],
            attacks=list(self.attacks),
            review_because=list(self.review_because),
        )
        return data


def judge_clip(
    report: ReplayReport, matcher: FaceMatcher, reference_bgr: np.ndarray, sandbox: bool = False, waived: frozenset[SignalCode] = frozenset()
) -> ClipJudgement:
    """FaceError when the reference photo would be refused as an ID upload."""
    import cv2

    signals = list(report.signals)
    result = report.result
    if not result.passed:
        return ClipJudgement(report, Status.FAILED, (result.reason or Reason.STREAM_ENDED).value, signals)
    reference = matcher.embed_photo(reference_bgr)
    portrait = cv2.imdecode(np.frombuffer(jpeg(reference.aligned), np.uint8), cv2.IMREAD_COLOR)  # as the session keeps it
    live = matcher.embed_live(report.faces)
    if not live:
        return ClipJudgement(report, Status.FAILED, Reason.NO_FACE.value, signals)
    if not matcher.same_person_throughout(live):
        return ClipJudgement(report, Status.FAILED, Reason.FACE_SWAP.value, signals)
    match = matcher.compare(reference.embedding, [f.embedding for f in live])
    found = reference_replay_of(reference.embedding, portrait, live)
    if found is not None:
        signals = strongest_first([*signals, found])
    verdict = judge(match.decision, signals, sandbox, waived)
    return ClipJudgement(report, verdict.status, verdict.failure_reason, signals, match, verdict.attacks, verdict.review_because)
