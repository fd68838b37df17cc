"""Replays found at the decision of a passed check: of the ID portrait (`reference_replay`), and of an
earlier check (`replayed_check`: its movement fingerprint against the merchant's recent checks,
spoof/replay_fingerprint.py, storage/check_fingerprints.py, then kept for the next ones)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor

import numpy as np

from ..sessions import Session
from ..spoof.reference_replay import reference_replay_of
from ..spoof.replay_fingerprint import EarlierCheck, Fingerprint, replayed_check_signal
from ..spoof.signals import RiskSignal
from ..storage.check_fingerprints import CheckFingerprints
from ..storage.store import Store
from .decision_time import DecisionParts


def reference_replay(store: Store, session: Session, reference: np.ndarray, live_faces: list) -> list[RiskSignal]:
    """reference_replay: a live face that is the stored ID portrait itself (spoof/reference_replay.py)."""
    import cv2

    stored = store.evidence(session.id, "reference_face")
    portrait = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR) if stored else None
    if portrait is None:
        return []
    found = reference_replay_of(reference, portrait, live_faces)
    return [found] if found is not None else []


async def replayed_check(
    store: Store, executor: Executor, session: Session, fingerprint: Fingerprint | None, parts: DecisionParts | None = None
) -> list[RiskSignal]:
    """The signal when the check moves as one of the merchant's earlier checks on the same kind of key did
    (compared in `executor`: about 0.4 ms per earlier check, up to RECENT_CHECKS of them: `replayed_check`
    in `parts`); this check's fingerprint is then kept."""
    if fingerprint is None:
        return []
    started = time.monotonic()
    records = CheckFingerprints(store)
    earlier = [EarlierCheck(other, found) for other, data in records.earlier(session.id, session.sandbox) if (found := Fingerprint.from_bytes(data))]
    records.keep(session.id, session.sandbox, fingerprint.to_bytes())
    signal = await asyncio.get_running_loop().run_in_executor(executor, replayed_check_signal, fingerprint, earlier)
    if parts is not None:
        parts.mark("replayed_check", started, time.monotonic())
    return [signal] if signal is not None else []
