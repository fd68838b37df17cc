"""`python -m server bench`: concurrent live checks on one machine, through the real API and real WebRTC.

N scripted customers (server.rtc.client) each create a session with a sandbox key, walk the hosted pages,
upload an ID photo and stream a clip, looped at its native rate, to 127.0.0.1. The sessions are asked a
challenge the clip never performs, so they stay live for the whole measurement; at its end each says
'bye' and the server stores what it measured of that stream (live_stats: frames received and analysed
per second, arrival-to-result latency, dropped frames), which the merchant API returns. Meanwhile the
server's and this process's CPU time and memory are read from /proc. One extra short session with a
challenge the clip does perform measures the time from the last challenge to the decision.

Without --url the server is started here as a subprocess (`python -m server serve`) on a temporary data
folder and a free port. `--frame-cost` measures the per-frame cost of the analysis itself, offline.
"""


from __future__ import annotations

import asyncio
import os
import statistics
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from server.liveness.rates import StepRates

from .customers import (
    Customer,
    id_photo_from_clip,
    join,
    measure_decision,
    new_customer,
    percentile,
    session_json,
    wait_not_live,
)
from .frame_cost import bare_landmarker_ms, bracketing
from .managed_server import server_capacity, server_for
from .options import (
    BACKLOG_MS,
    CORES,
    TARGET_FPS,
    TARGET_MB_PER_SESSION,
    TARGET_P95_MS,
    BenchError,
    BenchOptions,
)
from .options import progress as _progress
from .profiling import profile_server
from .report import fmt
from .sampling import Sampler, process_threads

# -- the run --------------------------------------------------------------------------------------

STEP_RATE_SLACK = 0.9


def at_rate(frames: list[Any], fps: float, wanted: float) -> tuple[list[Any], float]:
    """The clip as a camera asked for `wanted` frames a second would deliver it (0 or more than the clip
    has: unchanged), as the live page asks the browser for (CAPTURE_FPS in server/web/pages.py)."""
    if not wanted or wanted >= fps:
        return frames, fps
    count = int(len(frames) * wanted / fps)
    return [frames[int(i * fps / wanted)] for i in range(count)], wanted


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Drive the sessions and return the report (see docs/benchmarks.md for its fields)."""

    from server.liveness.rates import STEPS, StepRates
    from server.rtc.ice import use_loopback_candidates

    from ..client import encode_rates, load_clip

    if options.sessions < 1 or options.seconds <= 0:
        raise BenchError("--sessions must be at least 1 and --seconds above 0")
    use_loopback_candidates()  # every peer is on this machine: offer 127.0.0.1 only
    frames, fps = at_rate(*load_clip(options.video, max_side=options.max_side), options.send_fps)
    # Each sender follows the rate the server asks for (the page's `rate` message), as the page does.
    rates = StepRates()
    packets = None if options.encode_live else encode_rates(frames, fps, {rates.sent_fps(step) for step in STEPS}, options.bitrate)
    photo = Path(options.id_photo).read_bytes() if options.id_photo else id_photo_from_clip(frames, fps)
    decision_clip = (frames, fps)
    if options.decision and options.decision_video and Path(options.decision_video) != Path(options.video):
        decision_clip = load_clip(options.decision_video, max_side=options.max_side)
    decision_photo = photo if options.id_photo else id_photo_from_clip(*decision_clip)

    server, base_url, api_key, server_pid = await server_for(options, options.sessions, _progress)

    report: dict[str, Any] = {
        "sessions": options.sessions,
        "seconds": options.seconds,
        "video": Path(options.video).name,
        "stream": {
            "width": frames[0].width,
            "height": frames[0].height,
            "fps": round(fps, 2),  # as sent: the page asks the camera and encoder for --send-fps
            "sender": "an aiortc VP8 encoder per sender" if packets is None
            else f"VP8 encoded once per rate the server may ask for ({', '.join(f'{r:g}' for r in packets[0])} fps) at {options.bitrate // 1000} kbps, "
            f"a key frame every {packets[1]} frames, replayed by every sender",
        },
        "challenges": options.challenges,
        "server": {"url": base_url, "managed": server is not None, "pid": server_pid},
        "machine": {"cores": CORES, "loadavg_at_start": _loadavg()},
    }
    customers: list[Customer] = []
    try:
        # 1. The decision latency, on the otherwise idle server; it also warms the server up.
        if options.decision:
            _progress(options, "measuring the decision latency")
            report["decision"] = await measure_decision(base_url, api_key, *decision_clip, decision_photo, options.decision_challenges)
        else:
            report["decision"] = {"decision_ms": None, "error": "skipped"}
        report["decision_ms"] = report["decision"].get("decision_ms")
        # The bare per-frame cost on this machine, now, in this process (the server is idle meanwhile).
        _progress(options, "measuring the bare per-frame cost")
        report["bare_landmarker_ms"] = await asyncio.to_thread(bare_landmarker_ms, frames, fps, options.bare_frames)

        pids = {"client": os.getpid()}
        if server_pid:
            pids["server"] = server_pid
        sampler = Sampler(pids)
        await asyncio.sleep(1.0)
        idle = sampler.sample()
        idle_threads = process_threads(server_pid) if server_pid else None

        # 2. N customers, ready for the live step, then all streaming at once.
        _progress(options, f"preparing {options.sessions} sessions")
        prepared = await asyncio.gather(
            *(new_customer(i, base_url, api_key, photo, options.challenges) for i in range(options.sessions)), return_exceptions=True
        )
        for i, item in enumerate(prepared):
            if isinstance(item, BaseException):
                raise BenchError(f"session {i} could not be prepared: {item!r}")
            customers.append(item)
        sampler.start()
        from ..client import ClipTrack

        released = asyncio.Event()  # set when the bench stops asking for places
        joining = [asyncio.create_task(join(c, lambda: ClipTrack(frames, fps, rates=packets), released)) for c in customers]
        await _wait_streaming(customers, timeout_s=60.0)
        _progress(options, "waiting for the server to climb to its capacity")
        report["climb_s"] = await _wait_climbed(customers, base_url, options.status_token, timeout_s=120.0)
        streaming = [c for c in customers if c.streaming_at is not None]
        admitted = [c for c in customers if c.admitted_at is not None]
        _progress(options, f"{len(streaming)}/{len(customers)} sessions streaming, {len(customers) - len(admitted)} waiting in line; warming up {options.warmup_s} s")
        await asyncio.sleep(options.warmup_s)
        if options.quiet_wait_s > 0:
            report["machine"]["waited_for_quiet_s"] = await _wait_for_quiet(sampler, options.quiet_wait_s)

        # 3. The measurement window.
        start = sampler.sample()
        for c in customers:
            c.sent_at_window_start = c.track.sent if c.track else 0
        profile_task = None
        if options.profile and server_pid:
            profile_task = asyncio.create_task(profile_server(server_pid, min(options.seconds, 10.0), options.profile_native))
        _progress(options, f"measuring for {options.seconds} s")
        await asyncio.sleep(options.seconds)
        end = sampler.sample()
        busy_threads = process_threads(server_pid) if server_pid else None
        for c in customers:
            c.sent_at_window_end = c.track.sent if c.track else 0
        report["server_capacity"] = await server_capacity(customers[0].http, base_url, options.status_token)
        await sampler.stop()
        if profile_task is not None:
            report["profile"] = await profile_task

        # 4. Bye, and what the server measured of each stream; then those in line get the freed places.
        # A customer in line may have got a place between the window's end and now (a check that ended by
        # itself freed it): it counts with those in line, whose release is measured next.
        in_window = [c for c in customers if c.admitted_at is not None and c.sent_at_window_end > 0]
        await asyncio.gather(*(c.flow.bye() for c in in_window), return_exceptions=True)
        read = await asyncio.gather(*(wait_not_live(c.http, base_url, api_key, c.session_id) for c in in_window), return_exceptions=True)
        finals: dict[int, Any] = {c.index: data for c, data in zip(in_window, read, strict=True)}
        measured = {c.index for c in in_window}
        waiting = [c for c in customers if c.index not in measured and not c.error]
        if waiting:
            _progress(options, f"{len(in_window)} sessions said bye; waiting for the {len(waiting)} in line to be admitted")
            report["queue_release"] = await _release_queue(waiting, started=time.monotonic(), timeout_s=max(60.0, 10.0 * len(waiting)))
            for c in waiting:
                finals[c.index] = await session_json(c.http, base_url, api_key, c.session_id)
        released.set()
        await asyncio.gather(*joining, return_exceptions=True)
        # The bare cost again, now that every check has ended: with the rounds before, it brackets the window.
        await asyncio.gather(*(c.close() for c in customers), return_exceptions=True)
        if server_pid:
            await _wait_idle(server_pid, limit_s=15.0)
        _progress(options, "measuring the bare per-frame cost again")
        after = await asyncio.to_thread(bare_landmarker_ms, frames, fps, options.bare_frames)
        report["bare_landmarker_ms"] = bracketing(report["bare_landmarker_ms"], after)
        finals_in_order = [finals.get(c.index, {}) for c in customers]
        window_s = end["t"] - start["t"]
        between = [row for row in sampler.samples if start["t"] < row["t"] < end["t"]]
        server_window = Sampler.window(start, end, between, "server") if server_pid else {"cpu_percent": None, "rss_peak_mb": None}
        client_window = Sampler.window(start, end, between, "client")
        machine_cpu = (end["machine_busy_s"] - start["machine_busy_s"]) / max(1e-9, end["machine_total_s"] - start["machine_total_s"]) * 100
        idle_rss = idle["server"][1] if server_pid and idle.get("server") else None
        report["per_session"] = [_session_row(c, data, window_s) for c, data in zip(customers, finals_in_order, strict=True)]
        report["totals"] = _totals(report["per_session"], options.sessions, server_window, client_window, idle_rss, machine_cpu)
        report["totals"].update(_ratios(report))
        report["totals"]["server_threads_idle"] = idle_threads
        report["totals"]["server_threads_live"] = busy_threads
        report["cpu_series"] = _cpu_series(sampler.samples, start["t"], end["t"])
        report["targets_met"] = _targets(report)
    finally:
        await asyncio.gather(*(c.close() for c in customers), return_exceptions=True)
        if server is not None:
            if report.get("per_session") is None:
                report["server_log_tail"] = server.log_tail()
            await server.stop()
    return report


async def _wait_until(sampler: Sampler, limit_s: float, done) -> float:
    """Seconds waited, sampling a second at a time, until `done(first, second)` holds for two samples."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        a = sampler.sample()
        await asyncio.sleep(1.0)
        if done(a, sampler.sample()):
            break
    return round(time.monotonic() - started, 1)


def _cpu_percent(a: dict[str, Any], b: dict[str, Any], name: str) -> float:
    """A process's CPU between two samples, in % of all cores (0 when it could not be read)."""
    if not a.get(name) or not b.get(name):
        return 0.0
    return (b[name][0] - a[name][0]) / (b["t"] - a["t"]) / CORES * 100


async def _wait_for_quiet(sampler: Sampler, limit_s: float, other_below: float = 10.0) -> float:
    """Seconds waited until processes other than the server and this one used < other_below % of the CPU."""

    def quiet(a: dict[str, Any], b: dict[str, Any]) -> bool:
        machine = (b["machine_busy_s"] - a["machine_busy_s"]) / max(1e-9, b["machine_total_s"] - a["machine_total_s"]) * 100
        return machine - sum(_cpu_percent(a, b, k) for k in ("server", "client")) < other_below

    return await _wait_until(sampler, limit_s, quiet)


async def _wait_idle(pid: int, limit_s: float, below: float = 10.0) -> float:
    """Seconds waited until a process used < below % of the cores over a second (its checks have ended)."""
    return await _wait_until(Sampler({"server": pid}), limit_s, lambda a, b: _cpu_percent(a, b, "server") < below)


async def _wait_streaming(customers: list[Customer], timeout_s: float, queued_ok: bool = True) -> None:
    """Until each customer streams (a first prompt came back), waits in line, or failed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in customers:
            if c.streaming_at is None and c.admitted_at is not None and c.run is not None and c.run.messages:
                c.streaming_at = time.monotonic()
        if all(c.streaming_at is not None or c.error or (queued_ok and c.positions and c.admitted_at is None) for c in customers):
            return
        await asyncio.sleep(0.05)
    for c in customers:
        if c.streaming_at is None and not c.error and (c.admitted_at is not None or not queued_ok):
            c.error = f"no prompt from the server within {timeout_s:.0f} s"


async def _wait_climbed(customers: list[Customer], base_url: str, status_token: str | None, timeout_s: float, steady_s: float = 4.0) -> float:
    """Seconds until the server admits no more (it climbs to its capacity one check at a time, as cost
    readings come in): its room has reached its capacity and no one was admitted for `steady_s`."""
    started = time.monotonic()
    last_change, admitted = started, -1
    while time.monotonic() - started < timeout_s:
        await _wait_streaming(customers, timeout_s=30.0)
        now_admitted = sum(c.admitted_at is not None for c in customers)
        if now_admitted != admitted:
            last_change, admitted = time.monotonic(), now_admitted
        capacity = await server_capacity(customers[0].http, base_url, status_token) or {}
        # Climbed to its capacity, or held below it while its receive path falls behind (flow/admission.py).
        climbed = capacity.get("admitting_up_to", 0) >= capacity.get("capacity_sessions", 0) or capacity.get("receive_ceiling") is not None
        if admitted == len(customers) or (climbed and time.monotonic() - last_change >= steady_s):
            break
        await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 1)


async def _release_queue(waiting: list[Customer], started: float, timeout_s: float) -> dict[str, Any]:
    """The customers in line, once the measured sessions said bye: each says bye as soon as it streams,
    so places keep freeing up for the next in line."""
    deadline = time.monotonic() + timeout_s
    gone: set[int] = set()
    while time.monotonic() < deadline and len(gone) < len(waiting):
        for c in waiting:
            if c.index not in gone and (c.error or (c.admitted_at is not None and c.run is not None and c.run.messages)):
                c.streaming_at = c.streaming_at or time.monotonic()
                gone.add(c.index)
                if not c.error:
                    await c.flow.bye()
        await asyncio.sleep(0.05)
    admitted = [c for c in waiting if c.streaming_at is not None and not c.error]
    await asyncio.sleep(1.0)  # the byes reach the server and are stored
    return {
        "waiting": len(waiting),
        "admitted": len(admitted),
        "seconds_to_admit_all": round(max(c.admitted_at - started for c in admitted), 1) if admitted else None,
        "never_admitted": [c.index for c in waiting if c.streaming_at is None],
    }


def _ratios(report: dict[str, Any]) -> dict[str, Any]:
    """Efficiency: analysed frames a second in all over what the cores would analyse running nothing but
    the bare landmarker (timed on every core at once, in the same run); the capacity the server measured;
    admitted and queued checks apart.

    `efficiency` counts the cores the bench's own customers leave the server: in production the phones
    send the video, here the bench's senders (measured: `client_cpu_percent`) share the machine.
    `efficiency_all_cores` counts every core."""
    rows = report["per_session"]
    totals = report["totals"]
    admitted = [r for r in rows if r.get("admitted_in_window")]
    analysed = sum(r["analysed_fps"] for r in admitted if r.get("analysed_fps") is not None)
    bare = report.get("bare_landmarker_ms") or {}
    per_core = bare.get("per_core_ms")
    customers_cores = CORES * (totals.get("client_cpu_percent") or 0.0) / 100

    def bound(cores: float, ms: float | None = per_core) -> float | None:
        return cores * 1000 / ms if ms else None

    def ratio(cores: float, ms: float | None = per_core) -> float | None:
        b = bound(cores, ms)
        return round(analysed / b, 3) if b and analysed else None

    capacity = report.get("server_capacity") or {}
    return {
        "admitted": len(admitted),
        "queued": len(rows) - len(admitted),
        # Those not streaming through the whole window that were admitted later: when the window closed
        # (a place freed by the climb) or from the line once the measured sessions said bye.
        "queued_admitted_later": sum(1 for r in rows if not r.get("admitted_in_window") and r.get("admitted")),
        "min_admitted_analysed_fps": min((r["analysed_fps"] for r in admitted if r.get("analysed_fps") is not None), default=None),
        "bare_landmarker_ms": per_core,
        "bare_landmarker_one_core_ms": bare.get("one_core_ms"),
        "bare_bound_fps": round(bound(CORES - customers_cores) or 0, 1) or None,
        "efficiency": ratio(CORES - customers_cores),
        "efficiency_all_cores": ratio(CORES),
        # Against MediaPipe's graph alone, without the Python of its public call (frame_cost.bare_call).
        "bare_graph_ms": bare.get("graph_per_core_ms"),
        "efficiency_graph_only": ratio(CORES - customers_cores, bare.get("graph_per_core_ms")),
        "capacity_sessions": capacity.get("capacity_sessions"),
        # Below the capacity while the frames reach the receive loop later and later (flow/admission.py).
        "receive_ceiling": capacity.get("receive_ceiling"),
        "receive_lag_ms": capacity.get("receive_lag_ms"),
        "server_cpu_ms_per_frame": capacity.get("cpu_ms_per_frame"),
        # What a check is admitted at (its steps' rates on average) and what the measured checks' step needs.
        "planned_fps_per_check": capacity.get("required_fps"),
        "step_fps_needed": _step_need(report),
        "step_rates": capacity.get("step_rates"),  # each step's rate, the margin below it, its share of a check
        # The bound of the issue: checks analysed at 10 fps on the bare graph, every core (80 % of it).
        "capacity_bound": _capacity_bound(bare.get("graph_per_core_ms")),
        "capacity_vs_bound": _vs(capacity.get("capacity_sessions"), _capacity_bound(bare.get("graph_per_core_ms"))),
    }


BOUND_FPS = 10.0  # frames a second a check is analysed at, for the bound
BOUND_SHARE = 0.8  # of the bare graph's checks the capacity must reach


def _capacity_bound(graph_ms: float | None) -> float | None:
    """0.8 x cores x 1000 / bare_graph_ms / 10: the checks at 10 analysed fps the bare graph carries, 80 % of it."""
    return round(BOUND_SHARE * CORES * 1000 / graph_ms / BOUND_FPS, 2) if graph_ms else None


def _vs(capacity: float | None, bound: float | None) -> float | None:
    return round(capacity / bound, 3) if capacity and bound else None


def _step_need(report: dict[str, Any]) -> float | None:
    """Analysed frames a second the measured checks' step needs: their first challenge, awaited (the
    server's rate for it, 0 meaning every frame sent), as the server takes it from the frames the page
    sends in it (every n-th frame: a step at 8 of 20 sent is analysed at 6.67, of 10 sent at 5: the rates
    its verdicts were measured at)."""
    rates = (report.get("server_capacity") or {}).get("step_rates") or {}
    challenges = report.get("challenges") or []
    step = (rates.get(challenges[0]) or {}) if challenges else {}
    if not step.get("fps"):
        return None
    return step.get("analysed_fps") or StepRates({challenges[0]: step["fps"]}, send_fps=report["stream"]["fps"]).on_full_stream(challenges[0])


def _session_row(c: Customer, data: Any, window_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "index": c.index,
        "session_id": c.session_id,
        "admitted_in_window": c.admitted_at is not None and c.sent_at_window_end > 0,
        "admitted": c.admitted_at is not None,  # at any time: in the window, after it, or from the line
        "queue_positions": [c.positions[0], c.positions[-1]] if c.positions else None,
    }
    if isinstance(data, BaseException):
        row["error"] = f"reading the session failed: {data!r}"
        return row
    stats = (data or {}).get("live_stats") or {}
    row.update(
        {
            "error": c.error,
            "status_after_bye": data.get("status"),
            "failure_reason": data.get("failure_reason"),
            "ended_before_bye": bool(c.run is not None and c.run.result is not None and not _ended_by_bye(data)),
            "received_fps": stats.get("received_fps"),
            "received_fps_by_asked": stats.get("received_fps_by_asked"),
            "received_kbps": stats.get("received_kbps"),
            "decision_ms": stats.get("decision_ms"),  # None: the session ended by bye, undecided
            "analysed_fps": stats.get("analysed_fps"),
            "latency_ms": stats.get("latency_ms"),
            "latency_p50_ms_by_third": stats.get("latency_p50_ms_by_third"),
            "analysis_ms": stats.get("analysis_ms"),
            "queue_wait_ms": stats.get("queue_wait_ms"),
            "frames_paced": stats.get("frames_paced"),
            "frames_not_needed": stats.get("frames_not_needed"),
            "arrival_lag_ms": stats.get("arrival_lag_ms"),
            "arrival_lag_p50_ms_by_third": stats.get("arrival_lag_p50_ms_by_third"),
            "frames_received": stats.get("frames_received"),
            "frames_analysed": stats.get("frames_analysed"),
            "frames_dropped": stats.get("frames_dropped"),
            "stream_seconds": stats.get("duration_s"),
            "resolution": stats.get("resolution"),
            "sent_fps": round((c.sent_at_window_end - c.sent_at_window_start) / window_s, 2) if window_s > 0 else None,
            "send_late_ms": {"p50": percentile(c.track.late_ms, 0.5), "p95": percentile(c.track.late_ms, 0.95)} if c.track else None,
        }
    )
    return row


def _ended_by_bye(data: dict[str, Any]) -> bool:
    return data.get("failure_reason") == "abandoned"


def _totals(rows: list[dict[str, Any]], sessions: int, server: dict, client: dict, idle_rss: float | None, machine_cpu: float) -> dict[str, Any]:
    in_window = [r for r in rows if r.get("admitted_in_window")]
    measured = [r for r in in_window if r.get("analysed_fps") is not None]
    analysed = [r["analysed_fps"] for r in measured]
    p95s = [r["latency_ms"]["p95"] for r in measured if r.get("latency_ms") and r["latency_ms"].get("p95") is not None]
    peak = server.get("rss_peak_mb")
    return {
        "sessions_measured": len(measured),
        "sessions_failed": len(in_window) - len(measured) + sum(1 for r in rows if r.get("error")),
        "analysed_fps_sum": round(sum(analysed), 1),
        "min_session_analysed_fps": min(analysed) if analysed else None,
        "mean_session_analysed_fps": round(statistics.fmean(analysed), 2) if analysed else None,
        "received_fps_sum": round(sum(r.get("received_fps") or 0 for r in measured), 1),
        "p95_latency_ms_max": max(p95s) if p95s else None,
        "p95_latency_ms_median": round(statistics.median(p95s), 1) if p95s else None,
        "max_latency_ms": max((r["latency_ms"]["max"] or 0) for r in measured) if measured else None,
        "frames_dropped_sum": sum(r.get("frames_dropped") or 0 for r in measured),
        "server_cpu_percent": server.get("cpu_percent"),
        "server_rss_idle_mb": round(idle_rss, 1) if idle_rss is not None else None,
        "server_rss_peak_mb": peak,
        "rss_per_session_mb": round((peak - idle_rss) / max(1, len(in_window)), 1) if peak is not None and idle_rss is not None else None,
        "client_cpu_percent": client.get("cpu_percent"),
        "client_rss_peak_mb": client.get("rss_peak_mb"),
        "machine_cpu_percent": round(machine_cpu, 1),
        # Anything else on the machine during the window (another test run, say): the figures are then low.
        "other_cpu_percent": round(max(0.0, machine_cpu - (server.get("cpu_percent") or 0) - (client.get("cpu_percent") or 0)), 1),
        "cpu_percent_base": f"100 = all {CORES} cores busy",
    }


def _cpu_series(samples: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    """Per-interval CPU % of the server and the client over the window (for spotting a trend)."""
    rows = [s for s in samples if start <= s["t"] <= end]
    series = []
    for a, b in pairwise(rows):
        dt = b["t"] - a["t"]
        if dt <= 0:
            continue
        item: dict[str, Any] = {"t": round(b["t"] - start, 2)}
        for name in ("server", "client"):
            if a.get(name) and b.get(name):
                item[f"{name}_cpu_percent"] = round((b[name][0] - a[name][0]) / dt / CORES * 100, 1)
                item[f"{name}_rss_mb"] = round(b[name][1], 1)
        series.append(item)
    return series


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    admitted = [r for r in report["per_session"] if r.get("admitted_in_window")]
    rows = [r for r in admitted if r.get("analysed_fps") is not None]
    totals = report["totals"]
    complete = bool(rows) and len(rows) == len(admitted) and not any(r.get("ended_before_bye") or r.get("error") for r in report["per_session"])

    def backlog(r: dict[str, Any]) -> bool:
        thirds = r.get("latency_p50_ms_by_third") or []
        lag = r.get("arrival_lag_p50_ms_by_third") or []
        grows = len(thirds) == 3 and None not in thirds and thirds[2] - thirds[0] > BACKLOG_MS
        lags = len(lag) == 3 and None not in lag and lag[2] - lag[0] > BACKLOG_MS
        return grows or lags

    # Each admitted check keeps the rate its step needs (10 % slack: a frame arriving a little early is
    # skipped); a server without step rates is held to TARGET_FPS.
    need = totals.get("step_fps_needed")
    wanted = STEP_RATE_SLACK * need if need else TARGET_FPS
    fps_ok = complete and all(r["analysed_fps"] >= wanted for r in rows)
    p95_ok = complete and totals["p95_latency_ms_max"] is not None and totals["p95_latency_ms_max"] < TARGET_P95_MS
    per_session = totals.get("rss_per_session_mb")
    memory_ok = per_session is not None and per_session < TARGET_MB_PER_SESSION
    backlog_ok = complete and not any(backlog(r) for r in rows)
    release = report.get("queue_release")
    return {
        "queue_released": None if release is None else release["admitted"] == release["waiting"],
        "analysed_fps_at_least": round(wanted, 2),
        "p95_latency_below_ms": TARGET_P95_MS,
        "rss_per_session_below_mb": TARGET_MB_PER_SESSION,
        "backlog_growth_below_ms": BACKLOG_MS,
        "fps": fps_ok,
        "latency": p95_ok,
        "memory": memory_ok if per_session is not None else None,
        "no_growing_backlog": backlog_ok,
        "all": bool(fps_ok and p95_ok and backlog_ok and memory_ok is not False and (release is None or release["admitted"] == release["waiting"])),
    }


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


# -- a sweep over session counts ------------------------------------------------------------------


async def run_sweep(options: BenchOptions, counts: list[int]) -> dict[str, Any]:
    """One run per session count (each on a fresh server); the knee is the largest count meeting every
    target with every smaller count meeting them too."""
    runs = []
    for count in counts:
        _progress(options, f"--- {count} session(s) ---")
        run = await run_bench(BenchOptions(**{**options.__dict__, "sessions": count}))
        runs.append(run)
    knee = None
    for run in sorted(runs, key=lambda r: r["sessions"]):
        if not run["targets_met"]["all"]:
            break
        knee = run["sessions"]
    return {"sweep": counts, "knee": knee, "runs": runs}


def sweep_rows(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for run in sweep["runs"]:
        t = run["totals"]
        rows.append(
            {
                "sessions": run["sessions"],
                "min_fps": t["min_session_analysed_fps"],
                "mean_fps": t["mean_session_analysed_fps"],
                "sum_fps": t["analysed_fps_sum"],
                "p50_ms": _median([(r.get("latency_ms") or {}).get("p50") for r in run["per_session"]]),
                "p95_ms_worst": t["p95_latency_ms_max"],
                "max_ms": t["max_latency_ms"],
                "dropped_share": _share(t["frames_dropped_sum"], sum(r.get("frames_received") or 0 for r in run["per_session"])),
                "server_cpu": t["server_cpu_percent"],
                "client_cpu": t["client_cpu_percent"],
                "other_cpu": t["other_cpu_percent"],
                "rss_peak_mb": t["server_rss_peak_mb"],
                "mb_per_session": t["rss_per_session_mb"],
                "decision_ms": run.get("decision_ms"),
                "all_targets": run["targets_met"]["all"],
            }
        )
    return rows


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 3) if whole else None


def render_sweep(sweep: dict[str, Any]) -> str:
    first = sweep["runs"][0]
    lines = [
        f"Realname bench sweep: {first['video']} ({first['stream']['width']}x{first['stream']['height']} @ {first['stream']['fps']:g} fps), "
        f"{first['seconds']:g} s per run, {first['machine']['cores']} cores",
        "",
        f"{'N':>3} {'min fps':>8} {'mean':>6} {'sum':>6} {'p50 ms':>7} {'p95 worst':>10} {'max':>6} {'dropped':>8} "
        f"{'srv CPU%':>9} {'client%':>8} {'other%':>7} {'RSS MB':>7} {'MB/sess':>8} {'decision':>9}  targets",
    ]
    for r in sweep_rows(sweep):
        lines.append(
            f"{r['sessions']:>3} {fmt(r['min_fps']):>8} {fmt(r['mean_fps']):>6} {fmt(r['sum_fps']):>6} {fmt(r['p50_ms']):>7} "
            f"{fmt(r['p95_ms_worst']):>10} {fmt(r['max_ms'], 0):>6} {fmt(r['dropped_share'], 2):>8} {fmt(r['server_cpu']):>9} "
            f"{fmt(r['client_cpu']):>8} {fmt(r['other_cpu']):>7} {fmt(r['rss_peak_mb'], 0):>7} {fmt(r['mb_per_session']):>8} "
            f"{fmt(r['decision_ms']):>9}  {'all met' if r['all_targets'] else 'not met'}"
        )
    lines += ["", f"knee: {sweep['knee'] if sweep['knee'] is not None else 'none'} (largest N meeting every target, all smaller N too)"]
    return "\n".join(lines)


