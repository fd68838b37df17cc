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
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
CORES = os.cpu_count() or 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# What "the machine copes" means (see docs/benchmarks.md).
TARGET_SESSIONS = 8
TARGET_FPS = 15.0  # analysed frames per second, every session
TARGET_P95_MS = 150.0  # frame arrival -> analysis result, 95th percentile
TARGET_MB_PER_SESSION = 150.0  # server resident memory beyond idle, per live session
BACKLOG_MS = 50.0  # a session's latency median in its last third may exceed its first third's by this much
TARGET_ENGINE_OVERHEAD = 0.20  # the whole per-frame analysis over the bare MediaPipe call

DEFAULT_CHALLENGES = ["smile"]  # none of the sample clips smiles: the sessions stay live
DEFAULT_DECISION_CHALLENGES = ["blink"]
SAMPLE_EVERY_S = 0.5
VIDEO_TIME_BASE = Fraction(1, 90000)


class BenchError(Exception):
    pass


@dataclass
class BenchOptions:
    sessions: int
    seconds: float
    video: str
    url: str | None = None
    api_key: str | None = None
    server_pid: int | None = None  # with --url: the server's process, to read its CPU and memory
    id_photo: str | None = None  # default: a frame of the clip
    challenges: list[str] = field(default_factory=lambda: list(DEFAULT_CHALLENGES))
    decision: bool = True
    decision_video: str | None = None  # default: the clip
    decision_challenges: list[str] = field(default_factory=lambda: list(DEFAULT_DECISION_CHALLENGES))
    profile: bool = False
    profile_native: bool = False
    warmup_s: float = 2.0
    encode_live: bool = False  # each sender runs its own VP8 encoder (default: packets encoded once, replayed)
    bitrate: int = 1_000_000  # of the packets encoded once
    quiet_wait_s: float = 0.0  # wait up to this long for other processes to leave the CPU before measuring
    max_side: int = 640
    server_env: dict[str, str] = field(default_factory=dict)  # extra REALNAME_* settings for a started server
    progress: bool = False


# -- /proc readings -------------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def process_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def process_threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores."""
    with open("/proc/stat") as stream:
        values = [int(v) for v in stream.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class Sampler:
    """Samples the CPU time and resident memory of some processes every half second."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: list[dict[str, Any]] = []
        self._task: asyncio.Task | None = None

    def sample(self) -> dict[str, Any]:
        busy, total = machine_cpu_s()
        row: dict[str, Any] = {"t": time.monotonic(), "machine_busy_s": busy, "machine_total_s": total}
        for name, pid in self.pids.items():
            try:
                row[name] = (process_cpu_s(pid), process_rss_mb(pid))
            except (OSError, IndexError, ValueError):
                row[name] = None
        self.samples.append(row)
        return row

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @staticmethod
    def window(start: dict[str, Any], end: dict[str, Any], between: list[dict[str, Any]], name: str) -> dict[str, Any]:
        """Mean CPU (% of all cores) and peak memory of one process between two samples."""
        if start.get(name) is None or end.get(name) is None:
            return {"cpu_percent": None, "rss_peak_mb": None}
        seconds = end["t"] - start["t"]
        cpu = (end[name][0] - start[name][0]) / seconds / CORES * 100 if seconds > 0 else 0.0
        peaks = [row[name][1] for row in [start, *between, end] if row.get(name) is not None]
        return {"cpu_percent": round(cpu, 1), "rss_peak_mb": round(max(peaks), 1)}


# -- a server of our own --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManagedServer:
    """`python -m server serve` on a temporary data folder, with settings that keep bench sessions live."""

    def __init__(self, sessions: int, extra_env: dict[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="realname-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "REALNAME_DATA_DIR": str(self.folder / "data"),
            "REALNAME_HOST": "127.0.0.1",
            "REALNAME_PORT": str(self.port),
            "REALNAME_PUBLIC_URL": "",
            "REALNAME_ICE_LOOPBACK": "1",
            "REALNAME_ICE_SERVERS": "[]",
            "REALNAME_WEBHOOK_ALLOW_PRIVATE": "1",
            "REALNAME_MAX_LIVE_SESSIONS": str(max(64, 4 * sessions)),
            # Sessions must stay live for the whole measurement, however long it is.
            "REALNAME_CHALLENGE_TIMEOUT_S": "36000",
            "REALNAME_START_TIMEOUT_S": "36000",
            "REALNAME_CONNECT_TIMEOUT_S": "60",
            "REALNAME_NO_FRAMES_TIMEOUT_S": "10",
            # Every bench customer comes from 127.0.0.1 and each ends with 'bye' (a failed attempt).
            "REALNAME_API_RATE_PER_MINUTE": "1000000",
            "REALNAME_PAGE_RATE_PER_MINUTE": "1000000",
            "REALNAME_FAILURES_PER_WINDOW": "1000000",
            "REALNAME_LOG_LEVEL": "WARNING",
            "GLOG_minloglevel": "2",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **(extra_env or {}),
        }
        self.log_path = self.folder / "server.log"
        self.process: subprocess.Popen | None = None
        self.api_key: str | None = None

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "server", *args]

    async def start(self, timeout_s: float = 180.0) -> None:
        created = await asyncio.to_thread(
            subprocess.run,
            self._command("keys", "create", "bench", "--sandbox", "--json"),
            env=self.env,
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if created.returncode != 0:
            raise BenchError(f"could not create an API key: {created.stderr.strip() or created.stdout.strip()}")
        self.api_key = json.loads(created.stdout.strip().splitlines()[-1])["api_key"]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self._command("serve"), env=self.env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        await wait_healthy(self.url, timeout_s, self.process, self.log_path)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        shutil.rmtree(self.folder, ignore_errors=True)


async def wait_healthy(url: str, timeout_s: float, process: subprocess.Popen | None = None, log_path: Path | None = None) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
                raise BenchError(f"the server exited with code {process.returncode}:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(url.rstrip("/") + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.25)
    raise BenchError(f"{url} did not become healthy within {timeout_s:.0f} s")


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

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flow.close()
        with contextlib.suppress(Exception):
            await self.http.close()


def api_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


async def new_customer(index: int, base_url: str, api_key: str, photo: bytes, challenges: list[str]) -> Customer:
    import aiohttp

    from .rtc.client import HostedFlowClient

    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
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


def _pct(values, q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


# -- the decision latency -------------------------------------------------------------------------


async def measure_decision(base_url: str, api_key: str, frames: list[Any], fps: float, photo: bytes, challenges: list[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """One session with challenges the clip performs: the time from its last analysed frame to the decision."""
    from .rtc.client import ClipTrack

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
            "status": data.get("status"),
            "challenges": challenges,
            "seconds_to_result": round(time.monotonic() - started, 2) if result is not None else None,
            "error": None if result is not None else f"no decision within {timeout_s:.0f} s",
        }
    finally:
        await customer.close()


# -- profiling the server -------------------------------------------------------------------------

# Where a py-spy sample's time goes, by the innermost frame that names a stage (checked in this order).
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("landmarks: MediaPipe graph (C++)", ("dispatch_and_free (", "_run_graph (", "MpFaceLandmarker", "mediapipe::", "tflite::", "xnn_")),
    ("landmarks: Python around the call (image, result)", ("from_ctypes (", "landmarker.py:", "mediapipe/tasks/python")),
    ("colour conversion", ("frame_to_arrays (", "_luma (", "to_ndarray (", "sws_", "reformat (")),
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


# -- the run --------------------------------------------------------------------------------------


def _progress(options: BenchOptions, message: str) -> None:
    if options.progress:
        print(f"[bench] {message}", file=sys.stderr, flush=True)


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Drive the sessions and return the report (see docs/benchmarks.md for its fields)."""

    from .rtc.client import encode_clip, load_clip
    from .rtc.ice import use_loopback_candidates

    if options.sessions < 1 or options.seconds <= 0:
        raise BenchError("--sessions must be at least 1 and --seconds above 0")
    use_loopback_candidates()  # every peer is on this machine: offer 127.0.0.1 only
    frames, fps = load_clip(options.video, max_side=options.max_side)
    packets = None if options.encode_live else encode_clip(frames, fps, options.bitrate)
    photo = Path(options.id_photo).read_bytes() if options.id_photo else id_photo_from_clip(frames, fps)
    decision_clip = (frames, fps)
    if options.decision and options.decision_video and Path(options.decision_video) != Path(options.video):
        decision_clip = load_clip(options.decision_video, max_side=options.max_side)
    decision_photo = photo if options.id_photo else id_photo_from_clip(*decision_clip)

    server: ManagedServer | None = None
    if options.url:
        base_url, api_key, server_pid = options.url.rstrip("/"), options.api_key, options.server_pid
        if not api_key:
            raise BenchError("--url needs --api-key (a sandbox key of that server)")
        await wait_healthy(base_url, 10)
    else:
        server = ManagedServer(options.sessions, options.server_env)
        _progress(options, f"starting a server on {server.url}")
        try:
            await server.start()
        except BaseException:
            await server.stop()
            raise
        base_url, api_key, server_pid = server.url, server.api_key, server.pid
    assert api_key is not None

    report: dict[str, Any] = {
        "sessions": options.sessions,
        "seconds": options.seconds,
        "video": Path(options.video).name,
        "stream": {
            "width": frames[0].width,
            "height": frames[0].height,
            "fps": round(fps, 2),
            "sender": "an aiortc VP8 encoder per sender" if packets is None else f"VP8 encoded once at {options.bitrate // 1000} kbps, replayed by every sender",
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
                raise BenchError(f"session {i} could not be prepared: {item}")
            customers.append(item)
        sampler.start()
        await _start_streams(customers, frames, fps, packets)
        await _wait_streaming(customers, timeout_s=60.0)
        streaming = [c for c in customers if c.streaming_at is not None]
        _progress(options, f"{len(streaming)}/{len(customers)} sessions streaming; warming up {options.warmup_s} s")
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
        await sampler.stop()
        if profile_task is not None:
            report["profile"] = await profile_task

        # 4. Bye, and what the server measured of each stream.
        await asyncio.gather(*(c.flow.bye() for c in customers if c.run is not None), return_exceptions=True)
        finals = await asyncio.gather(*(wait_not_live(c.http, base_url, api_key, c.session_id) for c in customers), return_exceptions=True)
        window_s = end["t"] - start["t"]
        between = [row for row in sampler.samples if start["t"] < row["t"] < end["t"]]
        server_window = Sampler.window(start, end, between, "server") if server_pid else {"cpu_percent": None, "rss_peak_mb": None}
        client_window = Sampler.window(start, end, between, "client")
        machine_cpu = (end["machine_busy_s"] - start["machine_busy_s"]) / max(1e-9, end["machine_total_s"] - start["machine_total_s"]) * 100
        idle_rss = idle["server"][1] if server_pid and idle.get("server") else None
        report["per_session"] = [_session_row(c, data, window_s) for c, data in zip(customers, finals)]
        report["totals"] = _totals(report["per_session"], options.sessions, server_window, client_window, idle_rss, machine_cpu)
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


async def _wait_for_quiet(sampler: Sampler, limit_s: float, other_below: float = 10.0) -> float:
    """Seconds waited until processes other than the server and this one used < other_below % of the CPU."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        a = sampler.sample()
        await asyncio.sleep(1.0)
        b = sampler.sample()
        machine = (b["machine_busy_s"] - a["machine_busy_s"]) / max(1e-9, b["machine_total_s"] - a["machine_total_s"]) * 100
        ours = sum((b[k][0] - a[k][0]) / (b["t"] - a["t"]) / CORES * 100 for k in ("server", "client") if a.get(k) and b.get(k))
        if machine - ours < other_below:
            break
    return round(time.monotonic() - started, 1)


async def _start_streams(customers: list[Customer], frames: list[Any], fps: float, packets: list[bytes] | None) -> None:
    from .rtc.client import ClipTrack

    async def start(c: Customer) -> None:
        c.track = ClipTrack(frames, fps, packets=packets)
        try:
            c.run = await c.flow.start_live(c.track)
            if c.run.offer_error is not None:
                c.error = f"offer refused: {c.run.offer_error}"
        except Exception as error:  # one customer's failure is reported, not fatal
            c.error = f"could not start: {error!r}"

    await asyncio.gather(*(start(c) for c in customers))


async def _wait_streaming(customers: list[Customer], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in customers:
            if c.streaming_at is None and c.run is not None and c.run.messages:
                c.streaming_at = time.monotonic()
        if all(c.streaming_at is not None or c.error for c in customers):
            return
        await asyncio.sleep(0.05)
    for c in customers:
        if c.streaming_at is None and not c.error:
            c.error = f"no prompt from the server within {timeout_s:.0f} s"


def _session_row(c: Customer, data: Any, window_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {"index": c.index, "session_id": c.session_id}
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
            "analysed_fps": stats.get("analysed_fps"),
            "latency_ms": stats.get("latency_ms"),
            "latency_p50_ms_by_third": stats.get("latency_p50_ms_by_third"),
            "analysis_ms": stats.get("analysis_ms"),
            "queue_wait_ms": stats.get("queue_wait_ms"),
            "frames_paced": stats.get("frames_paced"),
            "arrival_lag_ms": stats.get("arrival_lag_ms"),
            "arrival_lag_p50_ms_by_third": stats.get("arrival_lag_p50_ms_by_third"),
            "frames_received": stats.get("frames_received"),
            "frames_analysed": stats.get("frames_analysed"),
            "frames_dropped": stats.get("frames_dropped"),
            "stream_seconds": stats.get("duration_s"),
            "resolution": stats.get("resolution"),
            "sent_fps": round((c.sent_at_window_end - c.sent_at_window_start) / window_s, 2) if window_s > 0 else None,
            "send_late_ms": {"p50": _pct(c.track.late_ms, 0.5), "p95": _pct(c.track.late_ms, 0.95)} if c.track else None,
        }
    )
    return row


def _ended_by_bye(data: dict[str, Any]) -> bool:
    return data.get("failure_reason") == "abandoned"


def _totals(rows: list[dict[str, Any]], sessions: int, server: dict, client: dict, idle_rss: float | None, machine_cpu: float) -> dict[str, Any]:
    measured = [r for r in rows if r.get("analysed_fps") is not None]
    analysed = [r["analysed_fps"] for r in measured]
    p95s = [r["latency_ms"]["p95"] for r in measured if r.get("latency_ms") and r["latency_ms"].get("p95") is not None]
    peak = server.get("rss_peak_mb")
    return {
        "sessions_measured": len(measured),
        "sessions_failed": sessions - len(measured),
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
        "rss_per_session_mb": round((peak - idle_rss) / sessions, 1) if peak is not None and idle_rss is not None else None,
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
    for a, b in zip(rows, rows[1:]):
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
    rows = [r for r in report["per_session"] if r.get("analysed_fps") is not None]
    totals = report["totals"]
    complete = len(rows) == report["sessions"] and not any(r.get("ended_before_bye") or r.get("error") for r in report["per_session"])

    def backlog(r: dict[str, Any]) -> bool:
        thirds = r.get("latency_p50_ms_by_third") or []
        lag = r.get("arrival_lag_p50_ms_by_third") or []
        grows = len(thirds) == 3 and None not in thirds and thirds[2] - thirds[0] > BACKLOG_MS
        lags = len(lag) == 3 and None not in lag and lag[2] - lag[0] > BACKLOG_MS
        return grows or lags

    fps_ok = complete and all(r["analysed_fps"] >= TARGET_FPS for r in rows)
    p95_ok = complete and totals["p95_latency_ms_max"] is not None and totals["p95_latency_ms_max"] < TARGET_P95_MS
    per_session = totals.get("rss_per_session_mb")
    memory_ok = per_session is not None and per_session < TARGET_MB_PER_SESSION
    backlog_ok = complete and not any(backlog(r) for r in rows)
    return {
        "analysed_fps_at_least": TARGET_FPS,
        "p95_latency_below_ms": TARGET_P95_MS,
        "rss_per_session_below_mb": TARGET_MB_PER_SESSION,
        "backlog_growth_below_ms": BACKLOG_MS,
        "fps": fps_ok,
        "latency": p95_ok,
        "memory": memory_ok if per_session is not None else None,
        "no_growing_backlog": backlog_ok,
        "all": bool(fps_ok and p95_ok and backlog_ok and memory_ok is not False),
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
            f"{r['sessions']:>3} {_fmt(r['min_fps']):>8} {_fmt(r['mean_fps']):>6} {_fmt(r['sum_fps']):>6} {_fmt(r['p50_ms']):>7} "
            f"{_fmt(r['p95_ms_worst']):>10} {_fmt(r['max_ms'], 0):>6} {_fmt(r['dropped_share'], 2):>8} {_fmt(r['server_cpu']):>9} "
            f"{_fmt(r['client_cpu']):>8} {_fmt(r['other_cpu']):>7} {_fmt(r['rss_peak_mb'], 0):>7} {_fmt(r['mb_per_session']):>8} "
            f"{_fmt(r['decision_ms']):>9}  {'all met' if r['all_targets'] else 'not met'}"
        )
    lines += ["", f"knee: {sweep['knee'] if sweep['knee'] is not None else 'none'} (largest N meeting every target, all smaller N too)"]
    return "\n".join(lines)


# -- rendering ------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_report(report: dict[str, Any]) -> str:
    stream = report["stream"]
    totals = report["totals"]
    lines = [
        f"Realname bench: {report['sessions']} session(s) x {report['seconds']:g} s, {report['video']} "
        f"({stream['width']}x{stream['height']} @ {stream['fps']:g} fps), challenges {','.join(report['challenges'])}",
        f"sender: {stream['sender']}",
        f"server {report['server']['url']} ({'started by the bench' if report['server']['managed'] else 'external'}), "
        f"{report['machine']['cores']} cores, load average at start {report['machine']['loadavg_at_start']}",
        "",
        f"{'#':>3} {'recv':>6} {'anal':>6} {'lat p50':>8} {'p95':>6} {'max':>6} {'thirds p50':>16} {'dropped':>8} "
        f"{'lag p95':>8} {'sent':>6} {'late95':>7}  note",
    ]
    for r in report["per_session"]:
        lat = r.get("latency_ms") or {}
        lag = r.get("arrival_lag_ms") or {}
        late = r.get("send_late_ms") or {}
        thirds = "/".join(_fmt(v, 0) for v in (r.get("latency_p50_ms_by_third") or []))
        note = r.get("error") or ("ended before bye: " + str(r.get("failure_reason")) if r.get("ended_before_bye") else "")
        lines.append(
            f"{r['index']:>3} {_fmt(r.get('received_fps')):>6} {_fmt(r.get('analysed_fps')):>6} {_fmt(lat.get('p50')):>8} "
            f"{_fmt(lat.get('p95')):>6} {_fmt(lat.get('max'), 0):>6} {thirds:>16} {_fmt(r.get('frames_dropped')):>8} "
            f"{_fmt(lag.get('p95')):>8} {_fmt(r.get('sent_fps')):>6} {_fmt(late.get('p95')):>7}  {note}"
        )
    lines += [
        "  (fps: received / analysed by the server; latency: frame arrival -> analysis result, ms, and its median in",
        "   the first/middle/last third; lag: arrival delay beyond the stream's best frame; sent/late95: the bench's sender)",
        "",
        f"analysed fps: sum {_fmt(totals['analysed_fps_sum'])}, lowest session {_fmt(totals['min_session_analysed_fps'])}; "
        f"p95 latency: worst session {_fmt(totals['p95_latency_ms_max'])} ms, median session {_fmt(totals['p95_latency_ms_median'])} ms",
        f"server CPU {_fmt(totals['server_cpu_percent'])} % of all cores; bench client CPU {_fmt(totals['client_cpu_percent'])} %; "
        f"whole machine {_fmt(totals['machine_cpu_percent'])} % (other processes {_fmt(totals['other_cpu_percent'])} %)",
        f"server memory: idle {_fmt(totals['server_rss_idle_mb'])} MB, peak {_fmt(totals['server_rss_peak_mb'])} MB, "
        f"{_fmt(totals['rss_per_session_mb'])} MB per session; threads idle {_fmt(totals.get('server_threads_idle'))}, "
        f"live {_fmt(totals.get('server_threads_live'))}",
    ]
    decision = report.get("decision") or {}
    if decision.get("decision_ms") is not None:
        lines.append(f"last challenge -> decision: {decision['decision_ms']} ms ({decision.get('status')}, one session, idle server)")
    else:
        lines.append(f"last challenge -> decision: not measured ({decision.get('error')})")
    t = report["targets_met"]
    mark = {True: "met", False: "NOT met", None: "n/a"}
    lines.append(
        f"targets: >= {t['analysed_fps_at_least']:g} fps each: {mark[t['fps']]}; p95 < {t['p95_latency_below_ms']:g} ms: "
        f"{mark[t['latency']]}; < {t['rss_per_session_below_mb']:g} MB/session: {mark[t['memory']]}; "
        f"no growing backlog: {mark[t['no_growing_backlog']]}"
    )
    profile = report.get("profile")
    if profile:
        lines.append("")
        if profile.get("error"):
            lines.append(f"profile: {profile['error']}")
        if profile.get("stages"):
            lines.append(
                f"server profile (py-spy, {profile['samples_working']} working samples over {profile['seconds']} s at "
                f"{profile['rate_hz']} Hz; cores = threads busy there on average):"
            )
            for row in profile["stages"]:
                lines.append(f"  {row['name']:<45} {row['percent_of_working']:>5.1f} %  {row['cores']:>5.2f} cores")
        gil = profile.get("gil") or {}
        if gil.get("gil_held_percent") is not None:
            holders = ", ".join(f"{row['name']} {row['percent_of_time']} %" for row in gil["by_thread"][:4])
            lines.append(f"GIL held {gil['gil_held_percent']} % of the time ({holders})")
        lines.append("server CPU by thread (from /proc, exact):")
        for row in profile.get("threads", []):
            lines.append(f"  {row['name']:<56} x{row['threads']:<3} {row['cores']:>5.2f} cores")
    return "\n".join(lines)


# -- per-frame cost, offline ----------------------------------------------------------------------


def frame_cost(video: str, frames: int = 300, size: tuple[int, int] | None = (640, 480), max_side: int = 640) -> dict[str, Any]:
    """Per-frame cost of each stage at one resolution, one stream, in this process.

    The bare MediaPipe call (`detect_for_video` on a ready RGB image, its Python result included) and the
    whole analysis (`LivenessAnalyzer.analyse_frame` from a decoded video frame: colour conversion,
    landmarks, signals, engine) run interleaved on the same frames, each with its own landmarker, so both
    see the same machine. VP8 encode (the sender's work) and decode (the server's) are measured too.
    """
    import mediapipe as mp
    import numpy as np
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
    from aiortc.jitterbuffer import JitterFrame

    from .config import load_settings
    from .liveness.analyzer import FrameTimings, LivenessAnalyzer, frame_to_arrays
    from .liveness.challenges import parse_challenges
    from .liveness.engine import LivenessEngine
    from .models.loader import landmarker_file, new_landmarker
    from .rtc.client import load_clip

    clip, fps = load_clip(video, max_side=max(max_side, *(size or (0,))))
    if size is not None:
        clip = [f.reformat(width=size[0], height=size[1], format="yuv420p") for f in clip]
    sequence = [clip[i % len(clip)] for i in range(frames)]
    model = landmarker_file(load_settings().landmarker_model)
    bare = new_landmarker(model)
    timings = FrameTimings()
    analyzer = LivenessAnalyzer(new_landmarker(model), LivenessEngine(parse_challenges(DEFAULT_CHALLENGES), challenge_timeout_s=1e6, start_timeout_s=1e6), timings)
    encoder, decoder = Vp8Encoder(), Vp8Decoder()
    bare_ms, whole_ms, encode_ms, decode_ms = [], [], [], []
    try:
        for index, frame in enumerate(sequence):
            t = index / fps
            rgb, _gray = frame_to_arrays(frame)
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            started = time.perf_counter()
            bare._task.detect_for_video(image, int(t * 1000) + 1)  # noqa: SLF001 - the bare call, on purpose
            bare_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            analyzer.analyse_frame(frame, t)
            whole_ms.append((time.perf_counter() - started) * 1000)
            copy = frame.reformat(format="yuv420p")
            copy.pts, copy.time_base = index * 3000, VIDEO_TIME_BASE
            started = time.perf_counter()
            payloads, timestamp = encoder.encode(copy)
            encode_ms.append((time.perf_counter() - started) * 1000)
            data = b"".join(vp8_depayload(p) for p in payloads)
            started = time.perf_counter()
            decoder.decode(JitterFrame(data=data, timestamp=timestamp))
            decode_ms.append((time.perf_counter() - started) * 1000)
    finally:
        bare.close()
        analyzer.close()
    skip = min(20, frames // 5)  # the first calls warm caches up

    def stat(values: list[float]) -> dict[str, float | None]:
        values = values[skip:]
        return {"median": _round(statistics.median(values)) if values else None, "p95": _pct(values, 0.95), "mean": _round(statistics.fmean(values)) if values else None}

    whole, raw = stat(whole_ms), stat(bare_ms)
    overhead = (whole["median"] - raw["median"]) / raw["median"] if raw["median"] else None
    return {
        "video": Path(video).name,
        "resolution": f"{sequence[0].width}x{sequence[0].height}",
        "frames": frames,
        "mediapipe_bare_ms": raw,
        "analysis_ms": whole,
        "stages_ms": {
            "colour_conversion": stat(timings.convert_ms),
            "landmarks": stat(timings.landmarks_ms),
            "signals_and_engine": stat(timings.rest_ms),
        },
        "vp8_decode_ms": stat(decode_ms),
        "vp8_encode_ms": stat(encode_ms),
        "engine_overhead": _round(overhead, 3) if overhead is not None else None,
        "engine_overhead_target": TARGET_ENGINE_OVERHEAD,
        "target_met": overhead is not None and overhead <= TARGET_ENGINE_OVERHEAD,
        # Streams this machine could serve at 15 analysed of 30 received fps, counting only analysis and decode
        # (and, second, also the VP8 encoding of a sender on the same machine, as in `bench`).
        "capacity_streams_at_15fps": _capacity(whole["mean"], stat(decode_ms)["mean"], 0.0),
        "capacity_streams_at_15fps_with_local_sender": _capacity(whole["mean"], stat(decode_ms)["mean"], stat(encode_ms)["mean"]),
    }



def _capacity(analysis_ms: float | None, decode_ms: float | None, encode_ms: float) -> float | None:
    if not analysis_ms or decode_ms is None:
        return None
    busy_ms_per_s = TARGET_FPS * analysis_ms + 30 * (decode_ms + encode_ms)
    return round(CORES * 1000 / busy_ms_per_s, 1)


def _round(value: float, digits: int = 2) -> float:
    return round(value, digits)


def render_frame_cost(data: dict[str, Any]) -> str:
    def row(name: str, s: dict[str, Any]) -> str:
        return f"  {name:<34} median {_fmt(s['median'], 2):>6} ms   p95 {_fmt(s['p95']):>6} ms   mean {_fmt(s['mean'], 2):>6} ms"

    stages = data["stages_ms"]
    overhead = data["engine_overhead"]
    return "\n".join(
        [
            f"per-frame cost at {data['resolution']} ({data['video']}, {data['frames']} frames, one stream, this process):",
            row("MediaPipe landmarker alone", data["mediapipe_bare_ms"]),
            row("whole analysis (analyse_frame)", data["analysis_ms"]),
            row("  colour conversion", stages["colour_conversion"]),
            row("  landmarks (our wrapper)", stages["landmarks"]),
            row("  signals + engine", stages["signals_and_engine"]),
            row("VP8 decode (server, per stream)", data["vp8_decode_ms"]),
            row("VP8 encode (sender)", data["vp8_encode_ms"]),
            f"engine overhead over the bare call: {_fmt(overhead * 100 if overhead is not None else None)} % "
            f"(target <= {data['engine_overhead_target'] * 100:g} %: {'met' if data['target_met'] else 'NOT met'})",
            f"streams at 15 analysed fps that {CORES} cores could carry (analysis + decode only): "
            f"{_fmt(data['capacity_streams_at_15fps'])}, with a local sender's VP8 encoding: {_fmt(data['capacity_streams_at_15fps_with_local_sender'])}",
        ]
    )


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text or text == "native":
        return None
    width, _, height = text.lower().partition("x")
    return int(width) // 2 * 2, int(height) // 2 * 2
