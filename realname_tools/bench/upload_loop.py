"""`python -m server bench --upload-loop`: do ID-photo uploads take capacity from another customer's live check?

One session streams the clip for `--seconds` alone and says bye; the same session then streams again for
`--seconds` while another customer uploads a real photo in a loop, one request after another as fast as
the server answers (the reference-photo API; a fresh session whenever one has had its
MAX_REFERENCE_UPLOADS photos). The server's own live_stats of each attempt give the analysed frame
rates; `ratio` is the second over the first. A measurement, reported; nothing here asserts a rate.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from server.flow.lifecycle import MAX_REFERENCE_UPLOADS

from .customers import Customer, api_headers, id_photo_from_clip, new_customer, wait_not_live
from .managed_server import server_for
from .options import CORES, BenchError, BenchOptions
from .report import fmt
from .sampling import Sampler, machine_cpu_s, process_cpu_s

TARGET_RATIO = 0.90  # issue 10 item 4: the live check keeps at least 90 % of its analysed frame rate
PHOTO_SIDE = 4000  # the loop's photo is the clip's frame at its native size, up to this: a phone photo's cost


@dataclass
class Uploads:
    stored: int = 0
    refused: int = 0  # 4xx: the per-session limit, mostly (then a new session is made)
    failed: int = 0  # 5xx or a broken connection
    sessions: int = 0


@dataclass
class Phase:
    analysed_fps: float | None
    received_fps: float | None
    frames_analysed: int | None
    frames_dropped: int | None
    latency_p95_ms: float | None
    server_cpu_percent: float | None  # the server process
    server_tree_cpu_percent: float | None  # with its photo-decoding child processes
    machine_cpu_percent: float
    seconds: float
    status_after_bye: str | None
    error: str | None = None


def _progress(options: BenchOptions, message: str) -> None:
    if options.progress:
        print(f"[bench] {message}", file=sys.stderr, flush=True)


async def upload_forever(base_url: str, api_key: str, photo: bytes, counts: Uploads, first_done: asyncio.Event) -> None:
    """One merchant's upload loop, until cancelled: each request waits for the previous answer."""
    import aiohttp

    headers = {**api_headers(api_key), "Content-Type": "image/jpeg"}
    async with aiohttp.ClientSession() as http:
        while True:
            body = {"reference_id": f"upload-loop-{counts.sessions}", "ttl_s": 3600}
            async with http.post(base_url + "/api/v1/sessions", json=body, headers=api_headers(api_key)) as response:
                created = await response.json()
                if response.status != 201:
                    raise BenchError(f"the upload loop could not create a session ({response.status}): {created}")
            counts.sessions += 1
            url = f"{base_url}/api/v1/sessions/{created['id']}/reference-photo"
            for _ in range(MAX_REFERENCE_UPLOADS):
                try:
                    async with http.post(url, data=photo, headers=headers) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = 599
                if status < 300:
                    counts.stored += 1
                elif status < 500:
                    counts.refused += 1
                else:
                    counts.failed += 1
                first_done.set()
                if status == 429:
                    break


async def _live_phase(
    customer: Customer, options: BenchOptions, base_url: str, api_key: str, frames, fps, packets, sampler: Sampler, server_pid: int | None
) -> Phase:
    from ..client import ClipTrack

    track = ClipTrack(frames, fps, packets=packets)
    run = await customer.flow.start_live(track)
    if run.offer_error is not None:
        return Phase(None, None, None, None, None, None, None, 0.0, 0.0, None, f"offer refused: {run.offer_error}")
    deadline = time.monotonic() + 60
    while not run.messages and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if not run.messages:
        await customer.flow.close()
        return Phase(None, None, None, None, None, None, None, 0.0, 0.0, None, "no prompt from the server within 60 s")
    await asyncio.sleep(options.warmup_s)
    start, tree_start, machine_start = sampler.sample(), tree_cpu_s(server_pid), machine_cpu_s()
    await asyncio.sleep(options.seconds)
    end, tree_end, machine_end = sampler.sample(), tree_cpu_s(server_pid), machine_cpu_s()
    await customer.flow.bye()
    data = await wait_not_live(customer.http, base_url, api_key, customer.session_id)
    await customer.flow.close()
    stats = data.get("live_stats") or {}
    between = [row for row in sampler.samples if start["t"] < row["t"] < end["t"]]
    cpu = Sampler.window(start, end, between, "server")["cpu_percent"] if server_pid else None
    ended_early = run.result is not None and data.get("failure_reason") != "abandoned"
    return Phase(
        analysed_fps=stats.get("analysed_fps"),
        received_fps=stats.get("received_fps"),
        frames_analysed=stats.get("frames_analysed"),
        frames_dropped=stats.get("frames_dropped"),
        latency_p95_ms=(stats.get("latency_ms") or {}).get("p95"),
        server_cpu_percent=cpu,
        server_tree_cpu_percent=_percent(tree_end - tree_start, end["t"] - start["t"]) if server_pid else None,
        machine_cpu_percent=round((machine_end[0] - machine_start[0]) / max(1e-9, machine_end[1] - machine_start[1]) * 100, 1),
        seconds=round(end["t"] - start["t"], 2),
        status_after_bye=data.get("status"),
        error=f"the check ended before bye: {data.get('failure_reason')}" if ended_early else None,
    )


def tree_cpu_s(pid: int | None) -> float:
    """CPU seconds of a process and every process below it (the server's photo decoders)."""
    if not pid:
        return 0.0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    parent = int(stream.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += process_cpu_s(current)
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(current, []))
    return total


def _percent(cpu_s: float, seconds: float) -> float | None:
    return round(cpu_s / seconds / CORES * 100, 1) if seconds > 0 else None


def native_photo(video: str) -> bytes:
    from ..client import load_clip

    frames, fps = load_clip(video, max_side=PHOTO_SIDE, max_seconds=1.0)
    return id_photo_from_clip(frames, fps)


async def run_upload_loop(options: BenchOptions) -> dict[str, Any]:
    """The two phases on one server; the report's `ratio` is with_uploads_fps / alone_fps."""
    from server.rtc.ice import use_loopback_candidates

    from ..client import encode_clip, load_clip

    if options.seconds <= 0:
        raise BenchError("--seconds must be above 0")
    use_loopback_candidates()
    frames, fps = load_clip(options.video, max_side=options.max_side)
    packets = None if options.encode_live else encode_clip(frames, fps, options.bitrate)
    live_photo = Path(options.id_photo).read_bytes() if options.id_photo else id_photo_from_clip(frames, fps)
    loop_source = options.upload_photo or options.id_photo
    loop_photo = Path(loop_source).read_bytes() if loop_source else native_photo(options.video)

    server, base_url, api_key, server_pid = await server_for(options, 1, _progress)

    pids = {"client": os.getpid(), **({"server": server_pid} if server_pid else {})}
    sampler = Sampler(pids)
    counts = Uploads()
    customer: Customer | None = None
    uploader: asyncio.Task | None = None
    try:
        customer = await new_customer(0, base_url, api_key, live_photo, options.challenges)
        _progress(options, f"live check alone: {options.seconds:g} s")
        alone = await _live_phase(customer, options, base_url, api_key, frames, fps, packets, sampler, server_pid)

        _progress(options, "starting the upload loop")
        first_done = asyncio.Event()
        uploader = asyncio.create_task(upload_forever(base_url, api_key, loop_photo, counts, first_done))
        await asyncio.wait([uploader, asyncio.ensure_future(first_done.wait())], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if uploader.done():
            uploader.result()  # the loop's own error
        if not first_done.is_set():
            raise BenchError("the upload loop got no answer within 60 s")
        stored_before = counts.stored + counts.refused + counts.failed
        started = time.monotonic()
        _progress(options, f"live check with the upload loop: {options.seconds:g} s")
        loaded = await _live_phase(customer, options, base_url, api_key, frames, fps, packets, sampler, server_pid)
        upload_seconds = time.monotonic() - started
        uploads_during = counts.stored + counts.refused + counts.failed - stored_before
    finally:
        if uploader is not None:
            uploader.cancel()
            await asyncio.gather(uploader, return_exceptions=True)
        if customer is not None:
            await customer.close()
        if server is not None:
            await server.stop()

    ratio = round(loaded.analysed_fps / alone.analysed_fps, 3) if alone.analysed_fps and loaded.analysed_fps is not None else None
    return {
        "mode": "upload_loop",
        "video": Path(options.video).name,
        "seconds": options.seconds,
        "stream": {"width": frames[0].width, "height": frames[0].height, "fps": round(fps, 2)},
        "upload_photo_bytes": len(loop_photo),
        "machine": {"cores": CORES},
        "alone_fps": alone.analysed_fps,
        "with_uploads_fps": loaded.analysed_fps,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio is not None and ratio >= TARGET_RATIO,
        "uploads_done": counts.stored,
        "uploads_during_live_check": uploads_during,
        "uploads_per_second": round(uploads_during / upload_seconds, 2) if upload_seconds > 0 else None,
        "uploads": asdict(counts),
        "alone": asdict(alone),
        "with_uploads": asdict(loaded),
        "server_cpu_percent": {
            "alone": alone.server_tree_cpu_percent,
            "with_uploads": loaded.server_tree_cpu_percent,
            "base": f"100 = all {CORES} cores busy; the server with its photo-decoding processes",
        },
    }


def render_upload_loop(report: dict[str, Any]) -> str:
    lines = [
        f"Realname bench --upload-loop: {report['video']} ({report['stream']['width']}x{report['stream']['height']} @ "
        f"{report['stream']['fps']:g} fps), {report['seconds']:g} s per phase, {report['machine']['cores']} cores",
        f"{'phase':<14} {'analysed fps':>13} {'received fps':>13} {'dropped':>8} {'p95 ms':>7} {'server CPU %':>13} {'machine %':>10}  note",
    ]
    for name in ("alone", "with_uploads"):
        p = report[name]
        lines.append(
            f"{name:<14} {fmt(p['analysed_fps']):>13} {fmt(p['received_fps']):>13} {fmt(p['frames_dropped']):>8} "
            f"{fmt(p['latency_p95_ms']):>7} {fmt(p['server_tree_cpu_percent']):>13} {fmt(p['machine_cpu_percent']):>10}  {p['error'] or ''}"
        )
    u = report["uploads"]
    lines += [
        f"uploads: {u['stored']} stored ({fmt(report['uploads_per_second'], 2)}/s during the loaded check, {report['upload_photo_bytes'] // 1024} KB "
        f"photo), {u['refused']} refused, {u['failed']} failed, over {u['sessions']} session(s)",
        f"(CPU %: 100 = all {report['machine']['cores']} cores; the server with its photo-decoding processes)",
        f"ratio with/alone: {fmt(report['ratio'], 3)} (target >= {report['target_ratio']:.2f}: {'met' if report['target_met'] else 'NOT met'})",
    ]
    return "\n".join(lines)
