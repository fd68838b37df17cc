"""In-memory abuse limits (per process): request rates, and pauses after repeated failed live checks.
Several instances on one database count request rates there instead (server/cluster.py)."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from typing import Protocol

MAX_TRACKED = 100_000  # oldest keys are forgotten beyond this, so memory stays bounded under a flood
IPV6_SUBSCRIBER_PREFIX = 64  # what one IPv6 subscriber is given at least: its addresses are one client


def address_group(address: str) -> str:
    """The address a limit keys on: an IPv4 address, or the /64 of an IPv6 one (a client picks any
    address in its own /64 at will)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_SUBSCRIBER_PREFIX}", strict=False))
    return str(parsed)


class Limiter(Protocol):
    def check(self, key: str) -> float:
        """0 if allowed (and counted), else the seconds to wait."""
        ...


class RateLimiter:
    """Token bucket per key: `per_minute` requests, bursts up to `burst`."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, per_minute // 2))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> float:
        """0 if allowed (and counted), else the seconds to wait."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._remember(key, (tokens - 1.0, now))
            return 0.0
        self._remember(key, (tokens, now))
        return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0

    def _remember(self, key: str, value: tuple[float, float]) -> None:
        self._buckets[key] = value
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)


class FailureLimiter:
    """After `limit` failures within `window_s`, a key is paused for `pause_s` (AWS Face Liveness's advice)."""

    def __init__(self, limit: int, window_s: float, pause_s: float) -> None:
        self.limit, self.window_s, self.pause_s = limit, window_s, pause_s
        self._failures: OrderedDict[str, deque] = OrderedDict()
        self._paused_until: dict[str, float] = {}

    def record(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        times = self._failures.pop(key, deque())
        times.append(now)
        while times and now - times[0] > self.window_s:
            times.popleft()
        self._failures[key] = times
        if len(times) >= self.limit:
            self._paused_until[key] = now + self.pause_s
            times.clear()
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def paused_for(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        until = self._paused_until.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._paused_until[key]
            return 0.0
        return until - now


def network_of(address: str) -> str:
    """The key a client address is limited under: an IPv4 address itself, an IPv6 address's /64 (one
    customer line or host gets a whole /64 and can rotate through it at will)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def backoff_delay(failures: int, free: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait after `failures` failures in a row: none for the first `free`, then `base_s`,
    doubling with each further failure, at most `cap_s`."""
    if failures < free:
        return 0.0
    return min(cap_s, base_s * 2 ** min(failures - free, 40))
