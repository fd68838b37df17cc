"""Simulated customers: scripted hosted-flow walks over real WebRTC, and the decision-latency session."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from .options import BenchError

# -- one scripted customer ------------------------------------------------------------------------


@dataclass
class Customer:
    index: int
    http: Any  # aiohttp.ClientSession with its own cookie jar: one browser each
    flow: Any  # HostedFlowClient
    session_id: str
    track: Any = None  # ClipTrack
    run: Any = None  # LiveRun
    error: str | None = None
    streaming_at: float | None = None  # the first prompt came back: frames are being analysed
    sent_at_window_start: int = 0
    sent_at_window_end: int = 0
    positions: list[int] = field(default_factory=list)  # places in line the server gave, one per refused offer
    admitted_at: float | None = None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flow.close()
        with contextlib.suppress(Exception):
            await self.http.close()


async def join(c: Customer, make_track, stop: asyncio.Event) -> None:
    """Offer until admitted, waiting in line as the page does: a full server answers 503 `busy` with a
    place in line and when to ask again."""
    while not stop.is_set():
        c.track = make_track()
        try:
            c.run = await c.flow.start_live(c.track)
        except Exception as error:  # one customer's failure is reported, not fatal
            c.error = f"could not start: {error!r}"
            return
        refused = c.run.offer_error
        if refused is None:
            c.admitted_at = time.monotonic()
            return
        queue = refused.get("queue")
        if refused.get("code") != "busy" or not queue:
            c.error = f"offer refused: {refused}"
            return
        c.positions.append(queue["position"])
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), queue["retry_after_s"])


def api_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


async def new_customer(index: int, base_url: str, api_key: str, photo: bytes, challenges: list[str]) -> Customer:
    import aiohttp

    from ..client import HostedFlowClient

    # The ID photo uploads of every customer at once take minutes on a loaded machine (aiohttp's default
    # limit, 5 minutes a request, failed one of 14 at load 22): the limit only catches a hung server.
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=1800))
    try:
        body = {"reference_id": f"bench-{index}", "fixed_challenges": challenges, "ttl_s": 3600}
        async with http.post(base_url + "/api/v1/sessions", json=body, headers=api_headers(api_key)) as response:
            created = await response.json()
            if response.status != 201:
                raise BenchError(f"creating a session failed ({response.status}): {created}")
        flow = HostedFlowClient(http, base_url)
        if (status := await flow.open(created["url"])) != 303:
            raise BenchError(f"opening the link answered {status}")
        if (status := await flow.consent()) != 303:
            raise BenchError(f"consent answered {status}")
        status, page = await flow.upload_document(photo)
        if status != 303:
            raise BenchError(f"the ID photo upload answered {status}: {page[:300]}")
    except BaseException:
        await http.close()
        raise
    return Customer(index, http, flow, created["id"])


async def session_json(http, base_url: str, api_key: str, session_id: str) -> dict[str, Any]:
    async with http.get(f"{base_url}/api/v1/sessions/{session_id}", headers=api_headers(api_key)) as response:
        return await response.json()


async def wait_not_live(http, base_url: str, api_key: str, session_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        data = await session_json(http, base_url, api_key, session_id)
        if data.get("status") not in ("live", "processing"):
            return data
        await asyncio.sleep(0.2)
    return data


def id_photo_from_clip(frames: list[Any], fps: float) -> bytes:
    """A JPEG of a frame half a second into the clip: the ID photo of the person in it."""
    import cv2

    frame = frames[min(len(frames) - 1, int(fps * 0.5))]
    ok, encoded = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise BenchError("could not encode an ID photo from the clip")
    return encoded.tobytes()


def percentile(values, q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


# -- the decision latency -------------------------------------------------------------------------


async def measure_decision(base_url: str, api_key: str, frames: list[Any], fps: float, photo: bytes, challenges: list[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """One session with challenges the clip performs: the time from its last analysed frame to the decision."""
    from ..client import ClipTrack

    customer = await new_customer(-1, base_url, api_key, photo, challenges)
    try:
        started = time.monotonic()
        run = await customer.flow.start_live(ClipTrack(frames, fps))
        if run.offer_error is not None:
            return {"decision_ms": None, "error": f"offer refused: {run.offer_error}"}
        result = await customer.flow.wait_result(run, timeout_s)
        if result is None:
            await customer.flow.bye()
        data = await wait_not_live(customer.http, base_url, api_key, customer.session_id)
        stats = data.get("live_stats") or {}
        return {
            "decision_ms": stats.get("decision_ms"),
            "decision_parts_ms": stats.get("decision_parts_ms"),
            "status": data.get("status"),
            "challenges": challenges,
            "seconds_to_result": round(time.monotonic() - started, 2) if result is not None else None,
            "error": None if result is not None else f"no decision within {timeout_s:.0f} s",
        }
    finally:
        await customer.close()


