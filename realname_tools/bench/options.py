"""What a bench run measures and with which settings: one options dataclass, from which the command's
flags are made, so each option is declared once."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from server.rtc.bandwidth import RECEIVE_KBPS

PROJECT = Path(__file__).resolve().parents[2]
CORES = len(os.sched_getaffinity(0)) or 1  # the cores this run may use (taskset), as the server counts them
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


def progress(options: BenchOptions, message: str) -> None:
    if options.progress:
        print(f"[bench] {message}", file=sys.stderr, flush=True)


def _option(default, help: str, flag: str | None = None):
    """A bench option; the command's flag is made from it (`--name-with-dashes`, or `flag`)."""
    meta = {"help": help, "flag": flag}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class BenchOptions:
    video: str = _option("", "clip each simulated customer streams, looped at its native rate")
    sessions: int = _option(1, "simultaneous live checks; a list (1,2,4,8) runs one measurement per count")
    seconds: float = _option(20.0, "length of the measurement window")
    url: str | None = _option(None, "a running server to measure (default: start one on a temporary data folder)")
    api_key: str | None = _option(None, "a sandbox API key of the --url server")
    server_pid: int | None = _option(None, "process id of the --url server, for its CPU and memory")
    status_token: str | None = _option(None, "the --url server's REALNAME_STATUS_TOKEN, to read its capacity (/healthz/details) from another host")
    id_photo: str | None = _option(None, "ID photo to upload (default: a frame of the clip)")
    challenges: list[str] = _option(list(DEFAULT_CHALLENGES), "fixed challenges of the measured sessions (ones the clip never performs)")
    decision: bool = _option(True, "skip the decision-latency session", flag="--no-decision")
    decision_video: str | None = _option(None, "clip for the decision-latency session (default: --video)")
    decision_challenges: list[str] = _option(list(DEFAULT_DECISION_CHALLENGES), "challenges that clip performs")
    profile: bool = _option(False, "sample the server with py-spy during the window: where the time goes")
    profile_native: bool = _option(False, "with --profile: include native frames")
    warmup_s: float = _option(2.0, "seconds of streaming before the window opens")
    bare_frames: int = _option(200, "frames per core in each round of the bare landmarker's timing (fewer: a rougher yardstick, a shorter run)")
    encode_live: bool = _option(False, "every sender encodes VP8 itself (default: encode once, replay)")
    bitrate: int = _option(RECEIVE_KBPS * 1000, "bit rate of the packets encoded once (default: what the live page sends at most)")
    quiet_wait_s: float = _option(0.0, "wait up to this many seconds for other processes to go idle", flag="--quiet-wait")
    max_side: int = _option(640, "long side the clip is scaled to")
    send_fps: float = _option(20.0, "frames a second each customer sends, as the live page asks the camera for (0: the clip's own rate)")
    server_env: dict[str, str] = _option({}, "another setting of a started server (NAME=VALUE, repeatable)")
    upload_loop: bool = _option(False, "measure one live check alone, then while another customer uploads ID photos in a loop: the analysed fps ratio")
    upload_photo: str | None = _option(None, "with --upload-loop: the photo uploaded in the loop (default: --id-photo, else the clip's frame)")
    leave_fraction: float | None = _option(
        None, "customers coming and going (each check ends by itself): this share of those told to wait leave and come back as a new session"
    )
    progress: bool = field(default=False, metadata={"help": None, "flag": None})  # set by the command, not a flag
