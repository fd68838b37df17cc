"""The pieces every fault uses: a tally of what happened, a webhook receiver (a real local HTTP server)
and customers walking the hosted pages of a cluster. The cluster itself and PostgreSQL are the test
suite's own (tests/support/instances.py, tests/support/postgres.py), so they are started one way only."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

FINAL = ("approved", "rejected", "review", "failed", "expired")
BLINK_CLIP = "blink_frontal_man_phone_portrait_14s.mp4"


@dataclass
class Tally:
    fault: str
    sessions_started: int = 0
    sessions_decided: int = 0
    sessions_lost: int = 0  # left live or processing (not decided, not open to a retry): must be 0
    decided_twice: int = 0  # more than one final status move, or final webhooks of two kinds: must be 0
    webhooks_expected: int = 0
    webhooks_delivered: int = 0
    customer_errors: Counter = field(default_factory=Counter)  # what customers were told, by code
    recover_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["customer_errors"] = dict(self.customer_errors)
        return data


class Receiver:
    """A merchant's webhook endpoint on 127.0.0.1: records the event ids it accepts. `down` makes it
    answer 503 (dead), `delay_s` makes it slow."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (event id, session id) accepted
        self.skews_s: list[float] = []  # how far each signature's time `t` was from this receiver's clock
        self.refused = 0
        self.down = False
        self.delay_s = 0.0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _receive(self, request: web.Request) -> web.Response:
        import json

        body = await request.read()
        stamp = request.headers.get("Realname-Signature", "").partition("t=")[2].partition(",")[0]
        if stamp.isdigit():
            self.skews_s.append(abs(time.time() - int(stamp)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.down:
            self.refused += 1
            return web.Response(status=503, text="down")
        data = json.loads(body)
        self.received.append((data["id"], data["data"]["session"]["id"]))
        return web.Response(text="ok")

    async def start(self) -> Receiver:
        from tests.support.instances import free_port

        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def delivered_events(self) -> Counter:
        return Counter(event_id for event_id, _ in self.received)


def final_moves(store, session_id: str) -> int:
    return sum(1 for row in store.audit_for(session_id) if row["action"] in {f"status.{s}" for s in FINAL})


def settle(tally: Tally, store, session_ids: list[str], receiver: Receiver | None) -> None:
    """Decided, lost and decided twice from the database; webhooks from what the receiver accepted."""
    tally.sessions_started = len(session_ids)
    for session_id in session_ids:
        status = store.session(session_id).status.value
        moves = final_moves(store, session_id)
        tally.sessions_decided += status in FINAL
        tally.sessions_lost += status in ("live", "processing")  # stuck: neither decided nor open to a retry
        tally.notes["attempts_failed"] = tally.notes.get("attempts_failed", 0) + (status == "id_uploaded")
        tally.decided_twice += moves > 1
    if receiver is not None:
        events = {e["id"] for s in session_ids for e in store.webhook_events_for(s)}
        tally.webhooks_expected = len(events)
        delivered = receiver.delivered_events()
        tally.webhooks_delivered = len(events & set(delivered))
        tally.notes["webhooks_delivered_more_than_once"] = sum(1 for e in events if delivered[e] > 1)


class Stalls:
    """How long each instance's event loop stood still: a static file (no database, no model) asked of each
    instance every `every_s`; the slowest answer is the longest stall a customer's page or the API saw."""

    def __init__(self, urls: list[str], every_s: float = 0.1) -> None:
        self.urls = urls
        self.every_s = every_s
        self.longest_s = {url: 0.0 for url in urls}
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _probe(self, http, url: str) -> None:
        import aiohttp

        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                async with http.get(f"{url}/static/realname.css") as response:
                    await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            self.longest_s[url] = max(self.longest_s[url], time.monotonic() - sent)
            await asyncio.sleep(self.every_s)

    async def _run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
            await asyncio.gather(*(self._probe(http, url) for url in self.urls))

    def start(self) -> Stalls:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> float:
        """The longest stall of any instance, in seconds."""
        self._stop.set()
        if self._task is not None:
            await self._task
        return round(max(self.longest_s.values(), default=0.0), 2)


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """A file system of its own at `path` (a tmpfs of `size_mb`; mounting needs root), unmounted after."""
    if os.geteuid() != 0:
        raise PermissionError("a small disk is a tmpfs mount: run as root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False, capture_output=True)


def fill(folder: Path) -> Path:
    """A file that takes every free byte of the file system `folder` is on: delete it to free them."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(descriptor)
    return filler


async def clean_up(cluster, receivers=(), browsers=()) -> None:
    """What a fault started, stopped, each part even if stopping one before it failed. `cluster`: a
    Cluster, or one Instance (killed)."""
    try:
        for http in browsers:
            await http.close()
    finally:
        try:
            if cluster is not None:
                await asyncio.to_thread(getattr(cluster, "stop", None) or cluster.kill)
        finally:
            for receiver in receivers:
                await receiver.stop()


async def eventually(condition, timeout: float, step: float = 0.2) -> bool:
    """Until `condition()` holds; a database down for the moment (the harness's own view) counts as not yet."""
    from server.storage.database import DatabaseUnavailable

    deadline = time.monotonic() + timeout
    while True:
        try:
            if await asyncio.to_thread(condition):
                return True
        except DatabaseUnavailable:
            pass
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step)


async def prepared_customer(http, base_url: str, api_key: str, photo: bytes, reference: str, callback_url: str | None = None):
    """A session created through the API and walked to the live step (link, consent, ID photo): its id and
    the customer's HostedFlowClient. `http` must have its own cookie jar (one browser)."""
    from ..client import HostedFlowClient

    body: dict[str, Any] = {"reference_id": reference, "fixed_challenges": ["blink"]}
    if callback_url:
        body["callback_url"] = callback_url
    async with http.post(f"{base_url}/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {api_key}"}) as response:
        created = await response.json()
        if response.status != 201:
            raise RuntimeError(f"creating a session answered {response.status}: {created}")
    customer = HostedFlowClient(http, base_url)
    if await customer.open(created["url"]) != 303 or await customer.consent() != 303:
        raise RuntimeError("the hosted pages refused the customer")
    status, _page = await customer.upload_document(photo)
    if status != 303:
        raise RuntimeError(f"the ID photo upload answered {status}")
    return created["id"], customer
