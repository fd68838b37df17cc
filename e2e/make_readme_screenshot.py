"""Take the README's picture of the live check on a 360x640 phone.

    .venv/bin/python -m e2e.make_readme_screenshot docs/live-check.png

Starts the app on 127.0.0.1 with a throw-away data folder, creates a sandbox session through the API,
and opens it in Chromium streaming Chromium's own synthetic test pattern (no --use-file-for-fake-
video-capture), so no image of a real person ends up in the picture. The pattern has no face, so the
page asks for one ("We can't see your face"). The merchant-side ID photo it sends to skip the upload
step comes from the shared test media and is never shown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

import aiohttp
from aiohttp import web

from e2e.support.browser import CHROMIUM, PHONE, chromium_args
from e2e.support.flow import consent, open_link
from server.api.auth import create_api_key
from server.app import create_app
from server.config import Settings
from server.http.services import SERVICES
from tests.support.media import PHOTOS

REFERENCE = PHOTOS / "vid_blinkdet_man" / "frame_t1.2s_frontal_eyes_open.jpg"


async def take(out: Path, reference: Path, wait_for_hint: bool = True) -> dict:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="realname-shot-") as tmp:
        settings = Settings(data_dir=str(Path(tmp) / "data"), ice_loopback=True, host="127.0.0.1")
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        await web.SockSite(runner, sock).start()
        try:
            key, _secret = create_api_key(app[SERVICES].store, "Demo Shop", sandbox=True)
            headers = {"Authorization": f"Bearer {key}"}
            async with aiohttp.ClientSession() as http:
                body = {"reference_id": "readme", "fixed_challenges": ["blink", "turn_left"]}
                async with http.post(base + "/api/v1/sessions", json=body, headers=headers) as response:
                    assert response.status == 201, await response.text()
                    created = await response.json()
                photo_headers = {**headers, "Content-Type": "image/jpeg"}
                async with http.post(base + f"/api/v1/sessions/{created['id']}/reference-photo", data=reference.read_bytes(), headers=photo_headers) as response:
                    assert response.status == 200, await response.text()

            async with async_playwright() as driver:
                browser = await driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=chromium_args(None))
                try:
                    context = await browser.new_context(**PHONE)
                    page = await context.new_page()
                    await open_link(page, created["url"])
                    await consent(page, then="/verify/live")  # the merchant sent the ID photo
                    await page.locator("#start").click()
                    await page.locator("#stage").wait_for(state="visible")
                    if wait_for_hint:
                        await page.wait_for_function("() => document.getElementById('hint').textContent.trim() !== ''", timeout=20_000)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    await page.screenshot(path=str(out), animations="disabled", caret="hide")
                    layout = await page.evaluate(
                        """() => Object.fromEntries(["stage", "instruction", "hint", "challenge-progress"].map((id) => {
                             const box = document.getElementById(id).getBoundingClientRect();
                             return [id, { top: Math.round(box.top), bottom: Math.round(box.bottom),
                                           text: document.getElementById(id).textContent }];
                           }))"""
                    )
                    await context.close()
                finally:
                    await browser.close()
        finally:
            await runner.cleanup()
    return layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/live-check.png"))
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="ID photo sent by the merchant (never shown)")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        print(f"Chromium not found at {CHROMIUM}", file=sys.stderr)
        return 2
    if not args.reference.is_file():
        print(f"ID photo not found: {args.reference} (set REALNAME_TEST_MEDIA or pass --reference)", file=sys.stderr)
        return 2
    layout = asyncio.run(take(args.out, args.reference))
    print(f"wrote {args.out} (360x640 at 2x); layout: {layout}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
