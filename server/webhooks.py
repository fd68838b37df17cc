"""Signed webhooks through a persisted outbox: at-least-once delivery, retried with backoff, restart-safe.

Each event is POSTed as JSON with headers
    Realname-Event-Id: evt_...            (the idempotency id: the same on every retry)
    Realname-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the webhook secret>
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import aiohttp

from .sessions import Session
from .storage.store import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Realname-Signature"
EVENT_ID_HEADER = "Realname-Event-Id"
SIGNATURE_TOLERANCE_S = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: bytes, header: str, body: bytes, now: float | None = None, tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """What a merchant runs on receipt (also used by our tests): check the MAC and the timestamp's age."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def event_for(session: Session, type_: str) -> tuple[str, str]:
    """(event id, JSON body). Only what the merchant needs to act; details are fetched with the API."""
    event_id = "evt_" + secrets.token_hex(12)
    body = {
        "id": event_id,
        "type": type_,
        "created_at": iso(time.time()),
        "data": {
            "session": {
                "id": session.id,
                "reference_id": session.reference_id,
                "status": session.status.value,
                "decision": session.decision,
                "failure_reason": session.failure_reason,
                "sandbox": session.sandbox,
            }
        },
    }
    return event_id, json.dumps(body, separators=(",", ":"), sort_keys=True)


def enqueue(store: Store, session: Session, type_: str) -> str | None:
    if not session.callback_url:
        return None
    event_id, body = event_for(session, type_)
    store.add_webhook_event(event_id, session.id, session.api_key_id, type_, session.callback_url, body)
    store.audit("system", "webhook.queued", session.id, {"event": event_id, "type": type_})
    return event_id


class DestinationError(Exception):
    pass


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse callback URLs that would make us call into the operator's own network (SSRF)."""
    try:
        parts = urlsplit(url)
        parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise DestinationError("callback_url must be an absolute http(s) URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationError("callback_url must be an absolute http(s) URL")
    if allow_private:
        return
    if parts.scheme != "https":
        raise DestinationError("callback_url must use https")
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".internal"):
        raise DestinationError("callback_url must not point at a local or internal host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not _is_public(address):
        raise DestinationError("callback_url must not point at a private, loopback or reserved address")


async def _resolved_is_public(host: str, port: int) -> bool:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return all(_is_public(ipaddress.ip_address(info[4][0])) for info in infos)


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast  # Python counts multicast ranges as global


class Outbox:
    """Background delivery of queued events."""

    def __init__(
        self,
        store: Store,
        timeout_s: float = 10.0,
        max_age_s: float = 86400.0,
        retry_base_s: float = 30.0,
        retry_cap_s: float = 3600.0,
        allow_private: bool = False,
    ) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.allow_private = allow_private
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self._deliveries: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._http: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._task = asyncio.create_task(self._run(), name="webhook-outbox")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        while True:
            try:
                for event in self._due():
                    self._in_flight.add(event["id"])
                    task = asyncio.create_task(self._deliver(event))
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)
            except Exception:  # never let one bad row stop deliveries
                log.exception("webhook delivery round failed")
            due = self.store.next_webhook_due()
            floor = 0.25 if self._in_flight else 0.05  # due rows still in flight need no busy polling
            wait = 5.0 if due is None else min(5.0, max(floor, due - time.time()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    def _due(self) -> list[dict]:
        return [e for e in self.store.due_webhook_events(time.time()) if e["id"] not in self._in_flight]

    def _retry_at(self, attempts: int, created_at: float) -> float | None:
        delay = min(self.retry_cap_s, self.retry_base_s * 2 ** max(0, attempts - 1))
        at = time.time() + delay * random.uniform(0.8, 1.2)
        return at if at - created_at <= self.max_age_s else None

    async def _deliver(self, event: dict) -> None:
        try:
            await self._attempt(event)
        finally:
            self._in_flight.discard(event["id"])

    async def _attempt(self, event: dict) -> None:
        assert self._http is not None
        body = event["body"].encode()
        started = time.perf_counter()
        status_code, error = None, None
        try:
            parts = urlsplit(event["url"])
            if not self.allow_private and not await _resolved_is_public(parts.hostname or "", parts.port or 443):
                raise DestinationError("destination resolves to a non-public address")
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                EVENT_ID_HEADER: event["id"],
                SIGNATURE_HEADER: sign(self.store.webhook_secret(event["api_key_id"]), timestamp, body),
                "User-Agent": "Realname-Webhooks/1",
            }
            async with self._http.post(event["url"], data=body, headers=headers, allow_redirects=False) as response:
                status_code = response.status
                await response.read()
        except DestinationError as exc:
            error = str(exc)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:  # ValueError: e.g. a host IDNA cannot encode
            error = type(exc).__name__
        delivered = status_code is not None and 200 <= status_code < 300
        next_at = None if delivered else self._retry_at(event["attempts"] + 1, event["created_at"])
        if error is None and not delivered:
            error = f"HTTP {status_code}"
        self.store.record_webhook_attempt(
            event["id"], status_code, error, (time.perf_counter() - started) * 1000, delivered, next_at
        )
        if delivered:
            self.store.audit("system", "webhook.delivered", event["session_id"], {"event": event["id"]})
        elif next_at is None:
            self.store.audit("system", "webhook.given_up", event["session_id"], {"event": event["id"]})
