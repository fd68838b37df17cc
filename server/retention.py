"""The clock's work: expire sessions past their lifetime, purge evidence past the retention period and
gallery faces past theirs, delete old results. Runs in the service's process every PURGE_INTERVAL_S."""

from __future__ import annotations

import asyncio
import logging
import time

from .config import Settings
from .documents.outcome import without_personal_data
from .flow.lifecycle import Lifecycle
from .storage.store import Store

log = logging.getLogger(__name__)
DAY = 86400.0


def run_once(settings: Settings, store: Store, lifecycle: Lifecycle, now: float | None = None) -> dict[str, int]:
    now = time.time() if now is None else now
    expired = lifecycle.expire_due()
    purged = store.purge_evidence_before(now - settings.retention_days * DAY)
    for session_id in purged:
        session = store.session(session_id)
        if session is not None and (session.document or session.expected):  # what the document said goes with it
            store.update_session(session_id, document=session.document and without_personal_data(session.document), expected=None)
        store.audit("system", "evidence.purged", session_id, {"retention_days": settings.retention_days})
    # The gallery keeps faces for its own period; those of sessions deleted below go first (index included).
    gallery = lifecycle.gallery.purge(now) if lifecycle.gallery is not None else 0
    deleted = store.delete_finished_sessions_before(now - settings.result_retention_days * DAY)
    return {"expired": expired, "evidence_purged": len(purged), "gallery_purged": gallery, "results_deleted": deleted}


async def run_forever(settings: Settings, store: Store, lifecycle: Lifecycle) -> None:
    while True:
        try:
            counts = run_once(settings, store, lifecycle)
            if any(counts.values()):
                log.info("retention: %s", counts)
        except Exception:
            log.exception("retention round failed")
        await asyncio.sleep(settings.maintenance_interval_s)
