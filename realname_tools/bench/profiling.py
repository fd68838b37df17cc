"""Where the server's time goes: py-spy samples and per-thread CPU."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .options import CLOCK_TICKS, CORES

# -- profiling the server -------------------------------------------------------------------------

# Where a py-spy sample's time goes, by the innermost frame that names a stage (checked in this order).
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("landmarks: MediaPipe graph (C++)", ("dispatch_and_free (", "_run_graph (", "MpFaceLandmarker", "mediapipe::", "tflite::", "xnn_")),
    ("landmarks: Python around the call (image, result)", ("from_ctypes (", "landmarker.py:", "mediapipe/tasks/python")),
    ("colour conversion", ("frame_to_rgb (", "to_ndarray (", "sws_", "reformat (")),
    ("signals + engine", ("frame_signals (", "engine.py:", "face_crop (", "prompt_message (", "signals.py:", "analyzer.py:")),
    ("video decode (VP8)", ("vpx.py:", "vp8_", "vpx_", "decoder_worker (")),
    ("video receive: RTP, SRTP, jitter buffer", ("rtcrtpreceiver.py", "rtcdtlstransport.py", "jitterbuffer.py", "rtp.py", "srtp")),
    ("network: ICE, SCTP, UDP", ("aioice", "selector_events.py", "rtcsctptransport.py", "rtcdatachannel.py")),
    ("live connection loops", ("connection.py:",)),
    ("thread hand-offs (futures, queues)", ("concurrent/futures", "threading.py", "queue.py", "futures.py")),
    ("asyncio event loop", ("asyncio/",)),
]
# A sample whose innermost frame is one of these is a thread waiting, not working (py-spy's own idle
# detection does not work in every VM, so samples are taken with --idle and sorted here).
WAITING = ("Condition.wait (", "Event.wait (", "Queue.get (", "EpollSelector.select (", "select (selectors.py", "_worker (concurrent/futures/thread.py",
           "Future.result (", "result (concurrent/futures/_base.py", "wait (threading.py", "get (queue.py", "_wait_for_tstate_lock (", "sleep (")


def stage_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for stage, markers in STAGES:
            if any(marker in frame for marker in markers):
                return stage
    return "other Python"


def thread_kind(name: str) -> str:
    """'analysis_1' -> 'analysis', 'ThreadPoolExecutor-3_0' -> 'ThreadPoolExecutor'."""
    kind = name.split("-", 1)[0] if name.startswith("ThreadPoolExecutor") else name
    return kind.rstrip("0123456789").rstrip("_") or name


def summarise_py_spy(raw: str, seconds: float, rate: int) -> dict[str, Any]:
    """Working samples per stage, and the thread names by id, from py-spy's raw (collapsed) output."""
    stages: dict[str, int] = {}
    names: dict[int, str] = {}
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        head, _, rest = stack.partition(";")
        if head.startswith("thread ("):  # 'thread (1234): MainThread'
            tid, _, name = head[len("thread (") :].partition("):")
            with contextlib.suppress(ValueError):
                names[int(tid, 0)] = name.strip()
            stack = rest
        leaf = stack.rsplit(";", 1)[-1]
        if any(marker in leaf for marker in WAITING):
            waiting += n
            continue
        total += n
        stage = stage_of(stack)
        stages[stage] = stages.get(stage, 0) + n
    expected = max(1.0, seconds * rate)
    return {
        "samples_working": total,
        "samples_waiting": waiting,
        "seconds": seconds,
        "rate_hz": rate,
        "stages": [
            {"name": name, "percent_of_working": round(100 * n / max(1, total), 1), "cores": round(n / expected, 2)}
            for name, n in sorted(stages.items(), key=lambda item: -item[1])
        ],
        "thread_names": names,
    }


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process, by thread id."""
    out = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{pid}/task/{tid}/stat") as stream:
                    fields = stream.read().rsplit(")", 1)[1].split()
                out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def cpu_by_thread_kind(before: dict[int, float], after: dict[int, float], names: dict[int, str], seconds: float) -> list[dict[str, Any]]:
    """Exact CPU per kind of thread over the window; threads Python does not know are native workers."""
    kinds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for tid, cpu in after.items():
        used = cpu - before.get(tid, 0.0)
        kind = thread_kind(names[tid]) if tid in names else "native threads (MediaPipe/TFLite, ONNX Runtime, codecs)"
        kinds[kind] = kinds.get(kind, 0.0) + used
        counts[kind] = counts.get(kind, 0) + 1
    return [
        {"name": kind, "threads": counts[kind], "cores": round(used / seconds, 2), "percent_of_all_cores": round(used / seconds / CORES * 100, 1)}
        for kind, used in sorted(kinds.items(), key=lambda item: -item[1])
    ]


async def _py_spy(executable: str, pid: int, seconds: int, rate: int, *flags: str) -> tuple[str, str | None]:
    """py-spy's raw (collapsed-stack) samples of a process, or an error."""
    handle, name = tempfile.mkstemp(prefix="realname-pyspy-", suffix=".txt")
    os.close(handle)
    output = Path(name)
    command = [executable, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
               "--format", "raw", "--output", str(output), "--threads", "--nonblocking", *flags]
    try:
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        text, _ = await process.communicate()
        raw = output.read_text(errors="replace") if output.exists() else ""
    finally:
        output.unlink(missing_ok=True)
    if process.returncode != 0 or not raw:
        return "", f"py-spy failed ({process.returncode}): {text.decode(errors='replace')[-500:]}"
    return raw, None


def gil_holders(raw: str, seconds: float, rate: int) -> dict[str, Any]:
    """From samples taken with --gil: how much of the time some thread held the GIL, and which kind."""
    kinds: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        head = stack.split(";", 1)[0]
        kind = thread_kind(head.partition("):")[2].strip()) if head.startswith("thread (") else "?"
        kinds[kind] = kinds.get(kind, 0) + int(count)
        total += int(count)
    expected = max(1.0, seconds * rate)
    return {
        "gil_held_percent": round(100 * total / expected, 1),
        "by_thread": [{"name": k, "percent_of_time": round(100 * n / expected, 1)} for k, n in sorted(kinds.items(), key=lambda item: -item[1])],
    }


async def profile_server(pid: int, seconds: float, native: bool, rate: int = 100) -> dict[str, Any]:
    """py-spy samples (where the Python-visible time goes; who holds the GIL) and exact per-thread CPU."""
    executable = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    seconds = max(1, int(seconds))
    before, started = thread_cpu(pid), time.monotonic()
    names: dict[int, str] = {}
    if not Path(executable).exists():
        await asyncio.sleep(seconds)
        summary: dict[str, Any] = {"error": "py-spy is not installed (pip install py-spy): per-thread CPU only; see --frame-cost for per-stage costs"}
    else:
        (raw, error), (gil_raw, gil_error) = await asyncio.gather(
            _py_spy(executable, pid, seconds, rate, "--idle", *(["--native"] if native else [])),
            _py_spy(executable, pid, seconds, rate, "--gil"),
        )
        if error:
            summary = {"error": error}
        else:
            summary = summarise_py_spy(raw, seconds, rate)
            names = summary.pop("thread_names")
        summary["gil"] = gil_holders(gil_raw, seconds, rate) if not gil_error else {"error": gil_error}
    elapsed = time.monotonic() - started
    summary["native"] = native
    summary["threads"] = cpu_by_thread_kind(before, thread_cpu(pid), names, elapsed)
    return summary


