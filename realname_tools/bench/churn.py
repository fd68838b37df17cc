"""`bench --leave-fraction F`: customers who come and go, some of them leaving when told to wait.

`--sessions` customers want a check at any moment: each creates a session through the API, walks the
hosted pages, uploads an ID photo and streams the clip with challenges it performs (`--decision-challenges`,
a blink by default), so every check ends by itself; then the next customer takes its turn. A customer the
server tells to wait asks again when told (as the waiting page does), except that share F of them who
leave at once, without a word (a killed tab, a "try again" at the shop), and come back RETURN_S later, as
a reload does, with a new session: the hardest case for the line, since no beacon and no same browser or
reference tells the server they left. So `--sessions` customers want a place at every moment, whatever F:
the load offered does not drop when customers leave. Sessions are prepared ahead (`Arrivals`), so the
bench measures the line, not how fast it can upload ID photos; the session a customer left goes back to
the stock once the server has forgotten its place (AWAY_S), for a later newcomer.

It reports the checks admitted a minute over the window, and the idle place-seconds while someone was
waiting: /healthz is read every SAMPLE_S and, over each interval, the places free (`admitting_up_to` -
`live_checks`) that a waiting customer could have had (the smaller of the two) add up. A customer waits
while in line and asking (present); one who left and is coming back counts separately (`returning`):
the server cannot give a place to someone who is not asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.flow.admission import KEEP_PLACE_S

from .customers import id_photo_from_clip, new_customer
from .managed_server import server_capacity, server_for
from .options import BenchError, BenchOptions
from .report import fmt

SAMPLE_S = 0.2
RESULT_TIMEOUT_S = 60.0
PREPARING = 3  # sessions prepared at once, ahead of the customers who take them
STOCK = 4  # sessions ready before the run starts and kept ready, per customer at a time
# A customer who left comes back this soon with a new session (a reload, a "try again" at the shop).
RETURN_S = 1.0
# The session a customer left is taken again, by another newcomer, only after this long (longer than the
# server keeps a place for a page that stopped asking): the server sees a newcomer. (The bench cannot
# prepare a new session for every return that fast on a small machine.)
AWAY_S = KEEP_PLACE_S + 2.0


class Arrivals:
    """Sessions made ready for the live step ahead of time (API, link, consent, ID photo), so that a
    customer arrives, or comes back, at once: the bench measures the line, not how fast it uploads."""

    def __init__(self, make, size: int) -> None:
        self.make, self.size = make, size
        self.ready: asyncio.Queue = asyncio.Queue()
        self.made = 0
        self.starved_s = 0.0  # customers waited this long in all for a session to be ready
        self.failed: list[str] = []  # why sessions could not be prepared (a preparer that died would hang the bench)
        self.tasks = [asyncio.create_task(self._prepare()) for _ in range(PREPARING)]
        self.resting: dict[int, tuple[Any, asyncio.TimerHandle]] = {}

    async def _prepare(self) -> None:
        while True:
            if self.ready.qsize() >= self.size:
                await asyncio.sleep(0.1)
                continue
            self.made += 1
            try:
                self.ready.put_nowait(await self.make(self.made))
            except Exception as error:  # a session that could not be prepared (a busy server): try another
                self.failed.append(repr(error))
                await asyncio.sleep(1.0)

    def give_back(self, customer: Any, after_s: float) -> None:
        """A session its customer left: ready again for a newcomer after `after_s`."""
        self.resting[id(customer)] = (customer, asyncio.get_running_loop().call_later(after_s, self._rested, customer))

    def _rested(self, customer: Any) -> None:
        del self.resting[id(customer)]
        customer.positions.clear()
        self.ready.put_nowait(customer)

    async def take(self) -> Any:
        started = time.monotonic()
        customer = await self.ready.get()
        self.starved_s += time.monotonic() - started
        return customer

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for customer, handle in self.resting.values():
            handle.cancel()
            await customer.close()
        while not self.ready.empty():
            await self.ready.get_nowait().close()


@dataclass
class Churn:
    """What the customers did, as the bench saw it."""

    leave_fraction: float
    told_to_wait: int = 0  # customers refused at least once (a leaver coming back counts again)
    left: int = 0
    waiting: set[int] = field(default_factory=set)  # people (slot numbers) in line and asking (present)
    returning: set[int] = field(default_factory=set)  # people who left and are coming back with a new session
    admitted_at: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    waited_s: list[float] = field(default_factory=list)  # first refusal to admission, per person
    first_refused: dict[int, float] = field(default_factory=dict)

    def leaves(self) -> bool:
        """Whether the customer just told to wait leaves: exactly F of them, spread evenly."""
        self.told_to_wait += 1
        n = self.told_to_wait
        return math.floor(n * self.leave_fraction) > math.floor((n - 1) * self.leave_fraction)


async def run_churn(options: BenchOptions, progress) -> dict[str, Any]:
    from server.rtc.ice import use_loopback_candidates

    from ..client import ClipTrack, encode_clip, load_clip
    from .run import at_rate

    fraction = options.leave_fraction
    if fraction is None or not 0 <= fraction <= 1 or options.sessions < 1 or options.seconds <= 0:
        raise BenchError("--leave-fraction must be within 0..1, --sessions at least 1 and --seconds above 0")
    use_loopback_candidates()
    video = options.decision_video or options.video
    frames, fps = at_rate(*load_clip(video, max_side=options.max_side), options.send_fps)
    packets = None if options.encode_live else encode_clip(frames, fps, options.bitrate)
    photo = Path(options.id_photo).read_bytes() if options.id_photo else id_photo_from_clip(frames, fps)
    server, base_url, api_key, _ = await server_for(options, options.sessions, progress)
    churn = Churn(fraction)
    stop = asyncio.Event()
    samples: list[dict[str, Any]] = []
    arrivals = Arrivals(lambda n: new_customer(n, base_url, api_key, photo, options.decision_challenges), size=STOCK * options.sessions)
    try:
        import aiohttp

        progress(options, f"preparing {arrivals.size} sessions")
        while arrivals.ready.qsize() < arrivals.size:
            await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as health:
            started = time.monotonic()
            window_start = started + options.warmup_s
            window_end = window_start + options.seconds
            progress(options, f"{options.sessions} customers at a time, {fraction:g} of those told to wait leave; "
                              f"warming up {options.warmup_s:g} s, then measuring {options.seconds:g} s")

            def track() -> Any:
                return ClipTrack(frames, fps, packets=packets)

            slots = [asyncio.create_task(_person(i, arrivals, track, churn, stop)) for i in range(options.sessions)]
            sampler = asyncio.create_task(_sample(health, base_url, options.status_token, churn, samples, stop))
            await asyncio.sleep(window_end - time.monotonic())
            stop.set()
            await sampler
            for slot in slots:
                slot.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
    finally:
        await arrivals.close()
        if server is not None:
            await server.stop()
    in_window = [t for t in churn.admitted_at if window_start <= t < window_end]
    idle, free_s, waited_s, returning_s, places_s = _idle(samples, window_start, window_end)
    capacity = next((s["capacity"] for s in reversed(samples) if s.get("capacity")), {})
    return {
        "mode": "churn",
        "sessions": options.sessions,
        "leave_fraction": fraction,
        "seconds": options.seconds,
        "warmup_s": options.warmup_s,
        "video": Path(video).name,
        "challenges": options.decision_challenges,
        "admitted_in_window": len(in_window),
        "admitted_per_minute": round(len(in_window) * 60 / options.seconds, 1),
        "idle_place_s_while_waiting": round(idle, 1),
        "free_place_s": round(free_s, 1),
        "idle_place_s_while_returning": round(returning_s, 1),
        # The share of the place-seconds a check held: what the line decides, whatever a check's length
        # (admitted checks a minute also follow how fast the machine runs each check).
        "places_in_use": round(1 - free_s / places_s, 3) if places_s else None,
        "someone_waiting_s": round(waited_s, 1),
        "told_to_wait": churn.told_to_wait,
        "left_and_came_back": churn.left,
        "outcomes": churn.outcomes,
        "waited_s_p50": _median(churn.waited_s),
        "waited_s_max": round(max(churn.waited_s), 1) if churn.waited_s else None,
        "capacity_sessions": capacity.get("capacity_sessions"),
        "admitting_up_to": capacity.get("admitting_up_to"),
        "mean_check_s": capacity.get("mean_check_s"),  # the server's running mean of a live check's length
        "sessions_prepared": arrivals.made,
        "waited_for_a_prepared_session_s": round(arrivals.starved_s, 1),
        "errors": (churn.errors + [f"preparing a session: {e}" for e in arrivals.failed])[:10],
    }


async def _person(slot: int, arrivals: Arrivals, track, churn: Churn, stop: asyncio.Event) -> None:
    """One person after another in this slot: each wants a check; those who leave come back as a new session."""
    while not stop.is_set():
        try:
            await _one_customer(slot, await arrivals.take(), arrivals, track, churn, stop)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # one customer's failure is counted, not fatal
            churn.errors.append(f"slot {slot}: {error!r}")
            churn.waiting.discard(slot)
            churn.returning.discard(slot)
            await asyncio.sleep(1.0)


async def _one_customer(slot: int, customer: Any, arrivals: Arrivals, track, churn: Churn, stop: asyncio.Event) -> None:
    given_back = False
    try:
        while not stop.is_set():
            run = await customer.flow.start_live(track())
            churn.returning.discard(slot)
            refused = run.offer_error
            if refused is None:
                churn.admitted_at.append(time.monotonic())
                churn.waiting.discard(slot)
                if slot in churn.first_refused:
                    churn.waited_s.append(time.monotonic() - churn.first_refused.pop(slot))
                result = await customer.flow.wait_result(run, RESULT_TIMEOUT_S)
                status = (result or {}).get("status", "no_result")
                churn.outcomes[status] = churn.outcomes.get(status, 0) + 1
                return
            queue = refused.get("queue")
            if refused.get("code") != "busy" or not queue:
                raise BenchError(f"offer refused: {refused.get('code')}")
            churn.first_refused.setdefault(slot, time.monotonic())
            if not customer.positions and churn.leaves():
                # Silently (no beacon), and back at once with a new session, as after a reload.
                churn.left += 1
                churn.waiting.discard(slot)
                churn.returning.add(slot)
                await customer.flow.close()
                arrivals.give_back(customer, AWAY_S)
                given_back = True
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETURN_S)
                return
            churn.waiting.add(slot)
            customer.positions.append(queue["position"])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), queue["retry_after_s"])
    finally:
        if not given_back:
            await customer.close()


async def _sample(http, base_url: str, status_token: str | None, churn: Churn, samples: list[dict[str, Any]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        capacity = await server_capacity(http, base_url, status_token) or {}  # a sample missed: counted with the next
        samples.append({"t": time.monotonic(), "capacity": capacity, "waiting": len(churn.waiting), "returning": len(churn.returning)})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


def _idle(samples: list[dict[str, Any]], start: float, end: float) -> tuple[float, float, float, float, float]:
    """(idle place-seconds while someone waited, free place-seconds, seconds someone waited, idle
    place-seconds while someone who left was coming back and nobody waited, place-seconds) in the window."""
    idle = free_s = waited = returning = places_s = 0.0
    for a, b in zip(samples, samples[1:], strict=False):
        if a["t"] < start or b["t"] > end or not a["capacity"]:
            continue
        dt = b["t"] - a["t"]
        free = max(0, a["capacity"].get("admitting_up_to", 0) - a["capacity"].get("live_checks", 0))
        free_s += free * dt
        places_s += a["capacity"].get("admitting_up_to", 0) * dt
        if a["waiting"]:
            waited += dt
            idle += min(free, a["waiting"]) * dt
        returning += min(max(0, free - a["waiting"]), a.get("returning", 0)) * dt
    return idle, free_s, waited, returning, places_s


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 1) if ordered else None


def render_churn(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Realname bench, customers coming and going: {report['sessions']} at a time, {report['leave_fraction']:g} of those "
            f"told to wait leave and come back as newcomers; {report['video']}, challenges {','.join(report['challenges'])}",
            f"window {report['seconds']:g} s after {report['warmup_s']:g} s: admitted {report['admitted_in_window']} "
            f"({fmt(report['admitted_per_minute'])} a minute); outcomes {report['outcomes']}",
            f"idle place-seconds while someone was waiting: {fmt(report['idle_place_s_while_waiting'])} "
            f"(free place-seconds {fmt(report['free_place_s'])}, someone waiting {fmt(report['someone_waiting_s'])} s; "
            f"while only someone who left was coming back {fmt(report['idle_place_s_while_returning'])}); "
            f"places in use {fmt(report['places_in_use'], 3)}",
            f"told to wait {report['told_to_wait']}, left and came back {report['left_and_came_back']} (each back {RETURN_S:g} s later with a new session); waited p50 "
            f"{fmt(report['waited_s_p50'])} s, max {fmt(report['waited_s_max'])} s",
            f"sessions prepared ahead {report['sessions_prepared']}; customers waited {fmt(report['waited_for_a_prepared_session_s'])} s "
            "in all for one to be ready (the bench's own limit, not the server's line)",
            f"server capacity {fmt(report['capacity_sessions'])}, admitting up to {fmt(report['admitting_up_to'])}",
            *(f"error: {e}" for e in report["errors"]),
        ]
    )
