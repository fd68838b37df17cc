"""`python -m server bench`: a smoke run (a measurement, so no performance is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.media import video

PROJECT = Path(__file__).resolve().parents[1]
CLIP = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"
BLINK_CLIP = "blink_frontal_man_phone_portrait_14s.mp4"


def test_bench_reports_per_session_and_total_figures():
    clip, blink = video(CLIP), video(BLINK_CLIP)
    command = [
        sys.executable, "-m", "server", "bench", "--sessions", "1", "--seconds", "3", "--warmup-s", "0.5",
        "--video", str(clip), "--decision-video", str(blink), "--decision-challenges", "blink", "--json",
    ]
    done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=120, env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["sessions"] == 1 and report["seconds"] == 3
    assert {"per_session", "totals", "decision_ms", "targets_met", "stream", "machine"} <= set(report)
    (session,) = report["per_session"]
    assert session["error"] is None and not session["ended_before_bye"]
    assert session["failure_reason"] == "abandoned"  # ended by the bench's bye, as planned
    for key in ("received_fps", "analysed_fps", "latency_ms", "frames_dropped", "frames_received", "frames_analysed", "arrival_lag_ms", "sent_fps"):
        assert key in session, key
    assert set(session["latency_ms"]) == {"p50", "p95", "max"}
    assert session["frames_analysed"] > 0
    totals = report["totals"]
    for key in (
        "analysed_fps_sum", "min_session_analysed_fps", "p95_latency_ms_max", "server_cpu_percent",
        "server_rss_idle_mb", "server_rss_peak_mb", "rss_per_session_mb", "client_cpu_percent",
    ):
        assert key in totals, key
    assert totals["server_rss_peak_mb"] > 0
    assert report["decision"]["error"] is None and report["decision_ms"] is not None
    assert {"fps", "latency", "memory", "no_growing_backlog", "all"} <= set(report["targets_met"])
