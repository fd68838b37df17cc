"""How the suite runs Debian's Chromium: headless, loopback-only WebRTC, a fake camera, a phone viewport."""

from __future__ import annotations

import os
import re
from pathlib import Path

CHROMIUM = Path(os.environ.get("REALNAME_E2E_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"  # git-ignored
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # git-ignored: what a failed test left open
# One page step (a click, a navigation): reading a card (OCR) takes seconds, and the suite shares the
# machine's cores between its workers, so a step is given far longer than it needs on an idle machine.
STEP_TIMEOUT_MS = 45_000

# Quiet, offline, and WebRTC on 127.0.0.1 with plain (not mDNS) host candidates, which the
# loopback-only server can reach.
BASE_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

PHONE = {
    "viewport": {"width": 360, "height": 640},
    "screen": {"width": 360, "height": 640},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
}


def chromium_args(camera: Path | None = None, *, fake_camera: bool = True, allow_camera: bool = True) -> list[str]:
    """camera: a .y4m file to stream; None with fake_camera streams Chromium's synthetic test pattern.

    allow_camera=False leaves out the flag that auto-accepts the camera prompt and denies prompts
    instead, as when a customer taps "Block".
    """
    args = list(BASE_ARGS)
    if fake_camera:
        args.append("--use-fake-device-for-media-stream")
    if camera is not None:
        args.append(f"--use-file-for-fake-video-capture={camera}")
    args.append("--use-fake-ui-for-media-stream" if allow_camera else "--deny-permission-prompts")
    return args


def shot_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-")


async def screenshot(page, name: str) -> Path:
    """A phone-size picture of what the customer sees (e2e/screenshots is git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{shot_name(name)}.png"
    await page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path
