"""Signed webhooks through a persisted outbox: at-least-once delivery, retried with backoff, restart-safe.

Each event is POSTed as JSON with headers
    Realname-Event-Id: evt_...            (the idempotency id: the same on every retry)
    Realname-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the webhook secret>
and the same signature in the Standard Webhooks form (standardwebhooks.com), which its libraries verify:
    webhook-id: evt_...   webhook-timestamp: <t>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<t>.<raw body>">
with the same key: the secret's bytes, written for those libraries as `whsec_` + base64 of them
(`standard_secret`). The two signed texts never coincide (one starts with digits, the other with "evt_").

Against hostile or broken endpoints: the callback host is resolved once per attempt, every address is
checked (public only, also through NAT64/6to4/Teredo/IPv4-mapped forms) and the connection goes to exactly
those addresses; only the first few KB of an answer are read; one merchant holds at most `per_merchant`
of the delivery slots.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .sessions import Session
from .storage.database import DatabaseUnavailable
from .storage.shared import SharedState, cluster_time
from .storage.store import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Realname-Signature"
EVENT_ID_HEADER = "Realname-Event-Id"
SIGNATURE_TOLERANCE_S = 300
STANDARD_SECRET_PREFIX = "whsec_"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def standard_secret(secret: bytes) -> str:
    """The webhook secret in the Standard Webhooks format: its libraries base64-decode what follows `whsec_`
    back to these bytes. Derived, not stored: a merchant holding a secret can compute it the same way."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(secret).decode("ascii")


def standard_headers(secret: bytes, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    mac = hmac.new(secret, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode("ascii"),
    }


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
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
                # The last check's risk signals, each with the action taken (see the API's RiskSignal).
                "signals": (session.liveness or {}).get("signals", []),
                # Who settled a session in review from the console, and why (null otherwise).
                "review": session.review,
                # The ID document read from the reference photo, with its checks and the expected values' matches.
                "document": session.document,
                "path": (session.liveness or {}).get("path"),
                # The signed receipt of this decision (compact JWS; verify with /.well-known/jwks.json).
                "receipt": session.receipt,
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


class UnresolvedError(DestinationError):
    """The callback host has no address right now (may be a passing DNS failure)."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_ANSWER_BYTES = 4096  # what is read of a merchant's answer: only its status matters
RESOLVE_AT_CREATION_TIMEOUT_S = 3.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # its IPv4 layout depends on the local translator
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated; never a real destination


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse callback URLs that would make us call into the operator's own network (SSRF)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number from 0 to 65535
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
    if not is_public(address):
        raise DestinationError("callback_url must not point at a private, loopback or reserved address")


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...] | None:
    """The IPv4 addresses an IPv6 transition address leads to (mapped, NAT64, 6to4, Teredo), else None."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address in _NAT64:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo  # (server, client)
    return None


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL or address in _IPV4_COMPATIBLE:
            return False
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return all(_is_global(v4) for v4 in embedded)
    return _is_global(address)


def _is_global(address: Address) -> bool:
    return address.is_global and not address.is_multicast  # Python counts multicast ranges as global


class Resolver(Protocol):
    """DNS, the true edge: tests inject their own answers."""

    async def addresses(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    async def addresses(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Destination:
    """A callback URL with the addresses it resolved to once; delivery connects to these and nothing else."""

    url: str
    host: str  # as the HTTP client sends it (IDNA-encoded, lower case)
    port: int
    addresses: tuple[str, ...]


async def resolve_destination(url: str, resolver: Resolver, allow_private: bool) -> Destination:
    check_destination(url, allow_private)
    try:
        parsed = URL(url)
        host, port = (parsed.raw_host or "").rstrip(".").lower(), parsed.port or 443
    except (ValueError, UnicodeError):
        raise DestinationError("callback_url has a host name that cannot be encoded") from None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [host]
    else:
        try:
            addresses = await resolver.addresses(host, port)
        except (OSError, UnicodeError):  # gaierror, or a label IDNA cannot encode
            raise UnresolvedError("callback host does not resolve") from None
    if not addresses:
        raise UnresolvedError("callback host does not resolve")
    if not allow_private and not all(_parses_public(a) for a in addresses):
        raise DestinationError("destination resolves to a non-public address")
    return Destination(url, host, port, tuple(addresses))


def _parses_public(text: str) -> bool:
    try:
        return is_public(ipaddress.ip_address(text))
    except ValueError:
        return False


async def check_resolved_destination(url: str, resolver: Resolver, allow_private: bool, timeout_s: float | None = None) -> None:
    """At session creation: refuse a name that resolves to a non-public address now.

    A lookup that fails or is slow is accepted: a passing DNS failure must not fail the merchant's
    customer, and every delivery resolves and checks again before connecting."""
    if allow_private:
        return
    try:
        async with asyncio.timeout(timeout_s or RESOLVE_AT_CREATION_TIMEOUT_S):
            await resolve_destination(url, resolver, allow_private)
    except (UnresolvedError, TimeoutError):
        return


class PinnedResolver(AbstractResolver):
    """Answers the HTTP client with the addresses checked before, so a second DNS answer (rebinding) is never used."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host.rstrip(".").lower() != self.destination.host:
            raise OSError("only the checked callback host may be connected to")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
            for address in self.destination.addresses
        ]

    async def close(self) -> None:
        pass


def merchant_of(event: dict) -> tuple[str, object]:
    if event.get("merchant_id") is not None:
        return ("merchant", event["merchant_id"])
    return ("key", event["api_key_id"])


def pick_fairly(due: list[dict], busy: Counter, per_merchant: int, free: int) -> list[dict]:
    """Due events to start now: round-robin across merchants, at most `per_merchant` in flight each
    (counting `busy`, those already in flight) and at most `free` in all. `due` is oldest first."""
    queues: dict[tuple[str, object], deque[dict]] = {}
    for event in due:
        queues.setdefault(merchant_of(event), deque()).append(event)
    load = Counter(busy)
    picked: list[dict] = []
    while queues and len(picked) < free:
        for merchant in list(queues):
            queue = queues[merchant]
            if len(picked) >= free:
                break
            if load[merchant] >= per_merchant or not queue:
                del queues[merchant]
                continue
            picked.append(queue.popleft())
            load[merchant] += 1
    return picked


class Outbox:
    """Background delivery of queued events, fair across merchants: one merchant's slow endpoint holds at
    most `per_merchant` of the `max_in_flight` delivery slots."""

    def __init__(
        self,
        store: Store,
        timeout_s: float = 10.0,
        max_age_s: float = 86400.0,
        retry_base_s: float = 30.0,
        retry_cap_s: float = 3600.0,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        per_merchant: int = 2,
        max_in_flight: int = 32,
        window: int = 500,
        shared: SharedState | None = None,
    ) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.allow_private = allow_private
        self.resolver: Resolver = resolver or SystemResolver()
        self.per_merchant = per_merchant
        self.max_in_flight = max_in_flight
        self.window = window  # due rows looked at per round, beyond those in flight
        # Other instances deliver from the same outbox: an event is sent by whoever claims it, for a lease
        # longer than any attempt; a crashed instance's claims are free again when their lease ends.
        self.shared = shared
        self.lease_s = 3 * timeout_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._in_flight: dict[str, tuple[str, object]] = {}  # event id -> merchant
        self._deliveries: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-outbox")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in (self._task, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                for event in self._due():
                    self._in_flight[event["id"]] = merchant_of(event)
                    task = asyncio.create_task(self._deliver(event))
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)
            except DatabaseUnavailable as down:  # a restart, a stall or a full disk: the next round asks again
                log.warning("webhook delivery round skipped: %s", down)
            except Exception:  # never let one bad row stop deliveries
                log.exception("webhook delivery round failed")
            try:
                due = self.store.next_webhook_due()
            except Exception:  # the database is down for a moment: ask again after the usual wait
                log.warning("the webhook outbox cannot read the database; retrying")
                due = None
            floor = 0.25 if self._in_flight else 0.05  # due rows still in flight need no busy polling
            wait = 5.0 if due is None else min(5.0, max(floor, due - cluster_time(self.shared)))
            self._wake.clear()
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
                # arrives as the wake-up does, and then stop() would wait for this loop forever.
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _due(self) -> list[dict]:
        free = self.max_in_flight - len(self._in_flight)
        if free <= 0:
            return []
        rows = self.store.due_webhook_events(cluster_time(self.shared), limit=len(self._in_flight) + self.window)
        waiting = [e for e in rows if e["id"] not in self._in_flight]
        picked = pick_fairly(waiting, Counter(self._in_flight.values()), self.per_merchant, free)
        if self.shared is None:
            return picked
        claimed = self.shared.claim_webhook_events([e["id"] for e in picked], self.lease_s)
        return [e for e in picked if e["id"] in claimed]

    def _retry_at(self, attempts: int, created_at: float) -> float | None:
        delay = min(self.retry_cap_s, self.retry_base_s * 2 ** max(0, attempts - 1))
        at = cluster_time(self.shared) + delay * random.uniform(0.8, 1.2)
        return at if at - created_at <= self.max_age_s else None

    async def _deliver(self, event: dict) -> None:
        try:
            await self._attempt(event)
        finally:
            self._in_flight.pop(event["id"], None)
            self._wake.set()  # a slot is free: start the next due event without waiting for the poll

    async def _attempt(self, event: dict) -> None:
        body = event["body"].encode()
        started = time.perf_counter()
        status_code, error = None, None
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole attempt, DNS included
                destination = await resolve_destination(event["url"], self.resolver, self.allow_private)
                status_code = await self._post(destination, event, body)
        except DestinationError as exc:
            error = str(exc)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            error = type(exc).__name__
        delivered = status_code is not None and 200 <= status_code < 300
        next_at = None if delivered else self._retry_at(event["attempts"] + 1, event["created_at"])
        if error is None and not delivered:
            error = f"HTTP {status_code}"
        self.store.record_webhook_attempt(event["id"], status_code, error, (time.perf_counter() - started) * 1000, delivered, next_at)
        if delivered:
            self.store.audit("system", "webhook.delivered", event["session_id"], {"event": event["id"]})
        elif next_at is None:
            self.store.audit("system", "webhook.given_up", event["session_id"], {"event": event["id"]})

    async def _post(self, destination: Destination, event: dict, body: bytes) -> int:
        """POST to the pinned addresses only (Host header, SNI and certificate still for the name); read at
        most MAX_ANSWER_BYTES of the answer, so a huge or endless answer costs nothing."""
        secret, timestamp = self.store.webhook_secret(event["api_key_id"]), int(cluster_time(self.shared))  # receivers compare it with their clocks
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event["id"],
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            **standard_headers(secret, event["id"], timestamp, body),
            "User-Agent": "Realname-Webhooks/1",
            "Accept-Encoding": "identity",
        }
        connector = aiohttp.TCPConnector(resolver=PinnedResolver(destination), use_dns_cache=False, force_close=True)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as http:
            async with http.post(destination.url, data=body, headers=headers, allow_redirects=False) as response:
                await response.content.read(MAX_ANSWER_BYTES)
                return response.status
