"""`python -m server soak`: a short run writes its report (a measurement, so no rate or duration is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from realname_tools.bench.soak import slope_per_hour
from tests.support.media import video

PROJECT = Path(__file__).resolve().parents[1]
BLINK_CLIP = "blink_frontal_man_phone_portrait_14s.mp4"


@pytest.mark.long
def test_a_short_soak_writes_its_samples_and_figures(tmp_path):
    out = tmp_path / "soak.json"
    command = [sys.executable, "-m", "server", "soak", "--minutes", "0.4", "--video", str(video(BLINK_CLIP)), "--out", str(out), "--json"]
    done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=900, env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    for key in (
        "capacity_sessions", "slots", "customers", "outcomes", "rss_mb_per_hour", "open_files_per_hour", "threads_per_hour",
        "database_mb_per_hour", "failed_for_load", "decision_ms_p95_first", "decision_ms_p95_last", "loadavg_at_start", "loadavg_at_end",
    ):
        assert key in report, key
    assert report["slots"] >= 1 and report["samples"]
    for key in ("t_s", "rss_mb", "open_files", "threads", "database_mb", "decision_ms_p95", "queue_wait_s_p95"):
        assert key in report["samples"][0], key
    assert report["samples"][-1]["rss_mb"] > 0 and report["samples"][-1]["open_files"] > 0
    assert out.with_suffix(".png").exists()


def test_the_slope_is_per_hour_and_needs_three_points():
    assert slope_per_hour([(0, 100.0), (1800, 110.0), (3600, 120.0)]) == 20.0
    assert slope_per_hour([(0, 1.0), (60, 1.0)]) is None
