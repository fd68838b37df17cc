"""`python -m server customer-time` (realname_tools/customer_time.py) end to end for one blink check: a
customer in Chromium who reacts to the prompt, a real server, a decision. What it measures is reported,
never asserted here (the machine may be busy)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from server.sessions import Status
from tests.support.media import MEDIA, ROOT, pad_model_dir, video

pytestmark = [pytest.mark.e2e, pytest.mark.media]


def test_customer_time_reports_a_decision_for_one_blink_check(chromium):
    video("blink_frontal_man_phone_portrait_14s.mp4")  # skips when the shared media is absent
    command = [
        sys.executable,
        "-m",
        "server",
        "customer-time",
        "--runs",
        "1",
        "--kinds",
        "blink",
        "--media",
        str(MEDIA),
        "--pad-model-dir",
        str(pad_model_dir()),
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    [check] = data["checks"]["blink"]
    assert Status(check["status"]).is_final, check
    assert check["total_s"] is not None, check  # the page got its result
    assert data["kinds"]["blink"]["decided"] == 1
