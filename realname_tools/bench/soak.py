"""`python -m server soak --minutes N`: a managed server held at 80 % of its measured capacity for a long
while, with a realistic mix of customers, to see whether anything grows.

The server is the bench's own (`ManagedServer`, with the service's real timeouts); its capacity is what it
measures itself (/healthz/details). `round(0.8 x capacity)` customer slots each run one customer after
another, their arrivals paced (a pause of PAUSE_S between two, and the slots' first arrivals spread over
the first minute). The kinds of customer come round in MIX's proportions:

- approved: the blink clip, with the blink challenge it performs (the check decides by itself);
- failed: the same clip asked to smile, which it never does (the challenge times out);
- abandoned: streams a few seconds, then the tab is closed (no bye: the server notices the silence);
- recorded: the recorded fallback, a WebM of the clip uploaded on the plan's timetable;
- uploads: only the ID photo, never reaching the live step.

Every SAMPLE_S the server's RSS, open files, threads and database size (with its WAL) are read, with the
p95 decision time and the p95 wait in line of the checks ended since the last sample. The report gives
the slope per hour of RSS and open files after WARMUP_SHARE of the run (least squares), the checks that
failed for load (an approved-kind check that did not pass, an offer refused with anything but `busy`),
and the p95 decision time of the first and the last ten minutes (of the first and last third when the run
is shorter than thirty minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .customers import id_photo_from_clip, new_customer, percentile, wait_not_live
from .managed_server import ManagedServer, server_capacity
from .options import PROJECT, BenchError
from .sampling import process_rss_mb, process_threads

LOAD_SHARE = 0.8
MIX = {"approved": 4, "failed": 2, "abandoned": 2, "recorded": 1, "uploads": 1}
PAUSE_S = (1.0, 4.0)  # between two customers of one slot, uniformly
SAMPLE_S = 15.0
WARMUP_SHARE = 0.2  # of the run, before the slopes are measured (at least the first minute)
COMPARE_S = 600.0  # the first and last ten minutes' p95 decision time
ABANDON_AFTER_S = 3.0
RESULT_TIMEOUT_S = 90.0
PASSED = ("approved", "review")
CLIP = "blink_frontal_man_phone_portrait_14s.mp4"

# The service's own timeouts (the bench's server keeps its sessions live for hours; a soak must not).
SOAK_ENV = {
    "REALNAME_CHALLENGE_TIMEOUT_S": "8",
    "REALNAME_START_TIMEOUT_S": "20",
    "REALNAME_CONNECT_TIMEOUT_S": "15",
    "REALNAME_NO_FRAMES_TIMEOUT_S": "4",
    "REALNAME_LIVE_FRAME_RATE_CUT": "1",
    "REALNAME_MAX_LIVE_SESSIONS": "0",  # the measured capacity alone decides
}


@dataclass
class Ended:
    kind: str
    at: float
    status: str | None
    reason: str | None = None
    decision_ms: float | None = None
    waited_s: float | None = None  # in line before admission
    error: str | None = None


@dataclass
class Soak:
    ended: list[Ended] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    turn: int = 0

    def next_kind(self) -> str:
        kinds = [k for k, n in MIX.items() for _ in range(n)]
        self.turn += 1
        return kinds[self.turn % len(kinds)]


# -- /proc and the data folder ----------------------------------------------------------------------


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def database_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.glob("realname.sqlite3*") if p.is_file()) / 1e6, 2)


def loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var <= 0:
        return None
    return round(sum((t - mean_t) * (v - mean_v) for t, v in points) / var * 3600, 2)


# -- customers --------------------------------------------------------------------------------------


class Customers:
    def __init__(self, base_url: str, api_key: str, frames: list[Any], fps: float, photo: bytes, recording: bytes) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.frames, self.fps, self.photo, self.recording = frames, fps, photo, recording
        self.made = 0

    async def run(self, kind: str) -> Ended:
        from ..client import ClipTrack

        self.made += 1
        challenges = ["blink"] if kind in ("approved", "recorded") else ["smile"]  # the clip never smiles
        customer = await new_customer(self.made, self.base_url, self.api_key, self.photo, challenges)
        waited = None
        try:
            if kind == "uploads":
                return Ended(kind, time.monotonic(), "id_uploaded")
            if kind == "recorded":
                return await self._recorded(customer)
            first_refused = None
            while True:
                run = await customer.flow.start_live(ClipTrack(self.frames, self.fps))
                refused = run.offer_error
                if refused is None:
                    break
                queue = refused.get("queue")
                if refused.get("code") != "busy" or not queue:
                    return Ended(kind, time.monotonic(), None, error=f"offer refused: {refused.get('code')}")
                first_refused = first_refused or time.monotonic()
                await asyncio.sleep(queue["retry_after_s"])
            if first_refused is not None:
                waited = round(time.monotonic() - first_refused, 1)
            if kind == "abandoned":
                await asyncio.sleep(ABANDON_AFTER_S)
                await customer.flow.close()  # the tab is closed: no bye
            else:
                await customer.flow.wait_result(run, RESULT_TIMEOUT_S)
                await customer.flow.close()
            data = await wait_not_live(customer.http, self.base_url, self.api_key, customer.session_id, timeout_s=60.0)
            stats = data.get("live_stats") or {}
            return Ended(kind, time.monotonic(), data.get("status"), data.get("failure_reason"), stats.get("decision_ms"), waited)
        finally:
            await customer.close()

    async def _recorded(self, customer) -> Ended:
        """The recorded fallback: the plan, each prompt when due, the clip once it could have been recorded."""
        from server.web.pages import NONCE_HEADER

        http, flow = customer.http, customer.flow
        config, status, _ = await flow.live_page()
        if config is None:
            return Ended("recorded", time.monotonic(), None, error=f"no live page ({status})")
        headers = {config["csrfHeader"]: config["csrf"]}
        async with http.post(self.base_url + config["planUrl"], json={}, headers=headers) as response:
            plan = await response.json()
            if response.status != 200:
                return Ended("recorded", time.monotonic(), None, error=f"plan refused: {plan.get('error', {}).get('code')}")
        issued = time.monotonic()
        headers = {**headers, NONCE_HEADER: plan["nonce"]}
        for index, at in enumerate(plan.get("prompts_at_s", [])):
            await asyncio.sleep(max(0.0, issued + at - time.monotonic()))
            async with http.post(self.base_url + config["promptUrl"], json={"index": index}, headers=headers) as response:
                await response.read()
        await asyncio.sleep(max(0.0, issued + plan["duration_s"] - time.monotonic()))
        async with http.post(self.base_url + config["recordUrl"], data=self.recording, headers={**headers, "Content-Type": "video/webm"}) as response:
            answer = await response.json()
        return Ended("recorded", time.monotonic(), answer.get("status"), answer.get("reason"), error=None if response.status == 200 else answer.get("error", {}).get("code"))


def webm_of(frames: list[Any], fps: float, seconds: float) -> bytes:
    import fractions
    import io

    import av

    chosen = (list(frames) * 3)[: round(seconds * fps)]
    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=fractions.Fraction(round(fps * 1000), 1000))
        stream.width, stream.height, stream.pix_fmt = chosen[0].width, chosen[0].height, "yuv420p"
        stream.bit_rate = 1_000_000
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        for source in chosen:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(source.to_ndarray(format="yuv420p"), format="yuv420p")))
        container.mux(stream.encode(None))
    return out.getvalue()


# -- the run ----------------------------------------------------------------------------------------


async def _slot(index: int, customers: Customers, soak: Soak, stop: asyncio.Event, first_at_s: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), first_at_s)
    while not stop.is_set():
        kind = soak.next_kind()
        try:
            soak.ended.append(await customers.run(kind))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # one customer's failure is counted, not fatal
            soak.ended.append(Ended(kind, time.monotonic(), None, error=repr(error)[:200]))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), random.uniform(*PAUSE_S))


def _sample(server: ManagedServer, soak: Soak, started: float, since: float, capacity: dict[str, Any]) -> dict[str, Any]:
    pid = server.pid or 0
    recent = [e for e in soak.ended if e.at > since]
    return {
        "t_s": round(time.monotonic() - started, 1),
        "rss_mb": round(process_rss_mb(pid), 1) if pid else None,
        "open_files": open_files(pid),
        "threads": process_threads(pid),
        "database_mb": database_mb(server.folder / "data"),
        "decision_ms_p95": percentile([e.decision_ms for e in recent if e.decision_ms is not None], 0.95),
        "queue_wait_s_p95": percentile([e.waited_s or 0.0 for e in recent if e.kind not in ("uploads", "recorded")], 0.95),
        "ended": len(recent),
        "live_checks": capacity.get("live_checks"),
        "waiting": capacity.get("waiting"),
        "loadavg_1m": (loadavg() or [None])[0],
    }


async def run_soak(minutes: float, video: str | None = None, progress=lambda message: None) -> dict[str, Any]:
    import aiohttp

    from server.rtc.ice import use_loopback_candidates

    from ..client import load_clip

    if minutes <= 0:
        raise BenchError("--minutes must be above 0")
    use_loopback_candidates()
    clip = Path(video) if video else PROJECT.parent / "shared" / "media" / "videos" / CLIP
    frames, fps = load_clip(clip, max_seconds=14)
    photo = id_photo_from_clip(frames, fps)
    server = ManagedServer(sessions=4, extra_env=SOAK_ENV)
    progress(f"starting a server on {server.url}")
    await server.start()
    soak = Soak()
    report: dict[str, Any] = {"minutes": minutes, "video": clip.name, "mix": MIX, "loadavg_at_start": loadavg()}
    try:
        assert server.api_key is not None
        async with aiohttp.ClientSession() as health:
            capacity = await _measured_capacity(health, server.url)
            slots = max(1, round(LOAD_SHARE * (capacity.get("capacity_sessions") or 1)))
            report.update({"capacity_sessions": capacity.get("capacity_sessions"), "slots": slots})
            progress(f"capacity {capacity.get('capacity_sessions')}: {slots} customers at a time for {minutes:g} min")
            plan = await _recorded_duration(server.url, server.api_key, photo)
            customers = Customers(server.url, server.api_key, frames, fps, photo, webm_of(frames, fps, plan))
            stop = asyncio.Event()
            started = time.monotonic()
            spread = min(60.0, minutes * 60 / 4)
            tasks = [asyncio.create_task(_slot(i, customers, soak, stop, spread * i / slots)) for i in range(slots)]
            end = started + minutes * 60
            last = started
            while time.monotonic() < end:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(SAMPLE_S, max(0.0, end - time.monotonic())))
                capacity = await server_capacity(health, server.url, None) or {}
                soak.samples.append(_sample(server, soak, started, last, capacity))
                last = time.monotonic()
                progress(json.dumps(soak.samples[-1]))
            stop.set()
            await asyncio.wait(tasks, timeout=RESULT_TIMEOUT_S + 60)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            report["ended_at_s"] = round(time.monotonic() - started, 1)
    finally:
        report["server_log_tail"] = server.log_tail(10)
        await server.stop()
    report.update(summarise(soak, started, minutes * 60))
    report["loadavg_at_end"] = loadavg()
    return report


async def _measured_capacity(http, base_url: str, timeout_s: float = 300.0) -> dict[str, Any]:
    """The capacity once the server has timed its per-frame cost (before, only the bound counts)."""
    deadline = time.monotonic() + timeout_s
    capacity: dict[str, Any] = {}
    while time.monotonic() < deadline:
        capacity = await server_capacity(http, base_url, None) or {}
        if capacity.get("cpu_ms_per_frame") is not None:
            return capacity
        await asyncio.sleep(1.0)
    raise BenchError(f"the server measured no per-frame cost within {timeout_s:.0f} s: {capacity}")


async def _recorded_duration(base_url: str, api_key: str, photo: bytes) -> float:
    """The length a recorded check's clip must have (the plan's timetable), read once from a plan."""
    customer = await new_customer(0, base_url, api_key, photo, ["blink"])
    try:
        config, status, _ = await customer.flow.live_page()
        if config is None:
            raise BenchError(f"the live page answered {status}")
        async with customer.http.post(base_url + config["planUrl"], json={}, headers={config["csrfHeader"]: config["csrf"]}) as response:
            plan = await response.json()
        return float(plan.get("duration_s") or 10.0)
    finally:
        await customer.close()


def summarise(soak: Soak, started: float, seconds: float) -> dict[str, Any]:
    samples = soak.samples
    warm = max(60.0, WARMUP_SHARE * seconds)
    after = [s for s in samples if s["t_s"] >= warm]
    compare = COMPARE_S if seconds >= 3 * COMPARE_S else seconds / 3
    first = [e.decision_ms for e in soak.ended if e.decision_ms is not None and e.at - started <= compare]
    last = [e.decision_ms for e in soak.ended if e.decision_ms is not None and e.at - started >= seconds - compare]
    by_kind: dict[str, dict[str, int]] = {}
    for e in soak.ended:
        outcome = f"{e.status}:{e.reason}" if e.reason else (e.status or "error")
        by_kind.setdefault(e.kind, {})
        by_kind[e.kind][outcome] = by_kind[e.kind].get(outcome, 0) + 1
    for_load = [e for e in soak.ended if (e.kind == "approved" and e.status not in PASSED) or (e.error or "").startswith("offer refused")]
    return {
        "samples": samples,
        "customers": len(soak.ended),
        "outcomes": by_kind,
        "warmup_s": warm,
        "rss_mb_per_hour": slope_per_hour([(s["t_s"], s["rss_mb"]) for s in after if s["rss_mb"] is not None]),
        "open_files_per_hour": slope_per_hour([(s["t_s"], s["open_files"]) for s in after]),
        "threads_per_hour": slope_per_hour([(s["t_s"], s["threads"]) for s in after]),
        "database_mb_per_hour": slope_per_hour([(s["t_s"], s["database_mb"]) for s in after]),
        "failed_for_load": len(for_load),
        "failed_for_load_examples": [{"status": e.status, "reason": e.reason, "error": e.error} for e in for_load[:10]],
        "errors": [e.error for e in soak.ended if e.error][:10],
        "compare_s": compare,
        "decision_ms_p95_first": percentile(first, 0.95),
        "decision_ms_p95_last": percentile(last, 0.95),
        "decisions_first": len(first),
        "decisions_last": len(last),
    }


def plot_soak(report: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = report["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    series = [("rss_mb", "RSS (MB)"), ("open_files", "open files"), ("threads", "threads"), ("database_mb", "database (MB)"),
              ("decision_ms_p95", "p95 decision (ms)"), ("queue_wait_s_p95", "p95 wait in line (s)")]
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 2 * len(series)), sharex=True)
    for ax, (key, label) in zip(axes, series, strict=True):
        ax.plot(minutes, [s.get(key) if s.get(key) is not None else float("nan") for s in samples], marker=".")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("minutes")
    fig.suptitle(f"soak: {report['slots']} customers at a time (capacity {report['capacity_sessions']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_soak(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"soak {report['minutes']:g} min, {report['slots']} customers at a time (capacity {report['capacity_sessions']}), {report['customers']} customers",
            f"outcomes: {report['outcomes']}",
            f"after {report['warmup_s']:g} s: RSS {report['rss_mb_per_hour']} MB/h, open files {report['open_files_per_hour']}/h, "
            f"threads {report['threads_per_hour']}/h, database {report['database_mb_per_hour']} MB/h",
            f"failed for load: {report['failed_for_load']}; p95 decision {report['decision_ms_p95_first']} ms first vs "
            f"{report['decision_ms_p95_last']} ms last {report['compare_s'] / 60:g} min",
            f"load average {report['loadavg_at_start']} -> {report['loadavg_at_end']}",
        ]
    )


def add_parser(sub) -> None:
    soak = sub.add_parser("soak", help="a managed server at 80 % of its capacity for a long while: what grows")
    soak.add_argument("--minutes", type=float, default=60.0)
    soak.add_argument("--video", help=f"the clip customers stream (default: ../shared/media/videos/{CLIP})")
    soak.add_argument("--out", help="write the report as JSON here (and a plot beside it, .png)")
    soak.add_argument("--json", action="store_true")
    soak.set_defaults(func=run)


def run(args) -> int:
    import sys

    def progress(message: str) -> None:
        print(f"[soak] {message}", file=sys.stderr, flush=True)

    try:
        report = asyncio.run(run_soak(args.minutes, args.video, progress))
    except BenchError as error:
        print(json.dumps({"error": {"code": "soak_failed", "message": str(error)}}) if args.json else f"error (soak_failed): {error}")
        return 2
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
        with contextlib.suppress(Exception):
            plot_soak(report, Path(args.out).with_suffix(".png"))
    print(json.dumps(report) if args.json else render_soak(report))
    return 0
