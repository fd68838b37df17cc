"""The verification flow without HTTP: a real SQLite store in a temp folder (or a PostgreSQL database), the real `Lifecycle` and
`Links`, wired as server/app.py wires them (no outbox task: queued webhooks are read from the store)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from server.api.auth import create_api_key
from server.cluster import instance_id
from server.config import Settings
from server.flow.lifecycle import Lifecycle
from server.flow.links import Links
from server.flow.registry import LiveRegistry
from server.flow.tokens import token_hash
from server.matching.decoding import ImageDecoder
from server.matching.matcher import FaceMatcher
from server.sessions import Session, Status
from server.storage.crypto import Cipher
from server.storage.shared import SharedState
from server.storage.store import Store

BASE_URL = "https://realname.example"


@dataclass
class Flow:
    settings: Settings
    store: Store
    live: LiveRegistry
    lifecycle: Lifecycle
    links: Links
    keys: dict[bool, int] = field(default_factory=dict)  # sandbox? -> API key id

    def create(self, sandbox: bool = True, **options) -> tuple[Session, str]:
        """A new session and its link token."""
        session, url = self.lifecycle.create(self.keys[sandbox], sandbox, "order-1", BASE_URL, **options)
        return session, url.rsplit("/", 1)[1]

    def walk_to(self, session: Session, target: Status, **fields) -> Session:
        """Through the statuses on the way to `target` (live and beyond: one attempt used)."""
        path = [Status.CONSENTED, Status.ID_UPLOADED, Status.LIVE, Status.PROCESSING]
        for status in path[: path.index(target) + 1]:
            extra = {"attempts": session.attempts + 1} if status == Status.LIVE else {}
            session = self.lifecycle.move(session, status, "test", **extra)
        return self.store.update_session(session.id, **fields) if fields else session

    def statuses_audited(self, session_id: str) -> list[str]:
        return [row["action"] for row in self.store.audit_for(session_id) if row["action"].startswith("status.")]

    def webhooks(self, session_id: str) -> list[str]:
        return [event["type"] for event in self.store.webhook_events_for(session_id)]

    def by_token(self, token: str) -> Session | None:
        return self.store.session_by_token_hash(token_hash(token))

    async def close(self) -> None:
        await self.lifecycle.decoder.close()
        self.lifecycle.uploads.shutdown(wait=True)  # type: ignore[attr-defined]
        self.store.close()


def make_flow(tmp_path: Path, matcher: FaceMatcher | None = None, **settings: object) -> Flow:
    """`database_url` among `settings` runs it on PostgreSQL, as one instance of several."""
    config = Settings(data_dir=str(tmp_path / "data"), **settings)  # type: ignore[arg-type]
    config.data_path.mkdir(parents=True, exist_ok=True)
    store = Store(config.database_location, Cipher(os.urandom(32)))
    shared = SharedState(store, instance_id(config), config.instance_heartbeat_s) if store.shared else None
    if shared is not None:
        shared.heartbeat()
    live = LiveRegistry()
    uploads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uploads")
    # The matcher embeds ID photos only: flows that never store one do without the models.
    lifecycle = Lifecycle(config, store, matcher, ImageDecoder.from_settings(config), uploads, live, shared=shared)  # type: ignore[arg-type]
    flow = Flow(config, store, live, lifecycle, Links(store, lifecycle))
    for sandbox in (True, False):
        create_api_key(store, "Test Shop", sandbox=sandbox)
    flow.keys = {key.sandbox: key.id for key in store.api_keys()}
    return flow
