"""replayed_check at the decision: a passed check's movement fingerprint against the merchant's recent
checks (spoof/replay_fingerprint.py, storage/check_fingerprints.py), then kept for the next ones."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from ..sessions import Session
from ..spoof.replay_fingerprint import EarlierCheck, Fingerprint, replayed_check_signal
from ..spoof.signals import RiskSignal
from ..storage.check_fingerprints import CheckFingerprints
from ..storage.store import Store


async def replayed_check(store: Store, executor: Executor, session: Session, fingerprint: Fingerprint | None) -> list[RiskSignal]:
    """The signal when the check moves as one of the merchant's earlier checks on the same kind of key did
    (compared in `executor`: about 0.6 ms per earlier check); this check's fingerprint is then kept."""
    if fingerprint is None:
        return []
    records = CheckFingerprints(store)
    earlier = [EarlierCheck(other, found) for other, data in records.earlier(session.id, session.sandbox) if (found := Fingerprint.from_bytes(data))]
    records.keep(session.id, session.sandbox, fingerprint.to_bytes())
    signal = await asyncio.get_running_loop().run_in_executor(executor, replayed_check_signal, fingerprint, earlier)
    return [signal] if signal is not None else []
