"""Fixtures for the browser suite: the real app (from the root conftest.py), Chromium with a fake camera
made from a real clip, a merchant with its webhook secret, and a local webhook receiver."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from e2e.support.a11y import assert_accessible
from e2e.support.browser import (
    ARTIFACTS,
    CHROMIUM,
    PHONE,
    STEP_TIMEOUT_MS,
    chromium_args,
    screenshot,
    shot_name,
)
from e2e.support.receiver import Receiver
from e2e.support.y4m import Y4mInfo, clip_to_y4m
from tests.support.api import auth
from tests.support.media import video

BLINK_CLIP = "blink_frontal_man_phone_portrait_14s.mp4"
BLINK_ID = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
OTHER_ID = "angelina_jolie/deepface_img10.jpg"
HEADTURN_CLIP = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"
HEADTURN_ID = "vid_tranv_selfie_man/frame_t0.5s_frontal.jpg"
REPLAY_CLIP = "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4"  # the headturn selfie, replayed on a monitor


@pytest.fixture(scope="session")
def chromium() -> Path:
    pytest.importorskip("playwright.async_api", reason="the browser tests need the playwright package (pip install -e .[test])")
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's chromium package (or set REALNAME_E2E_CHROMIUM)")
    return CHROMIUM


@pytest.fixture(scope="session")
def camera_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fake-camera")


@pytest.fixture(scope="session")
def blink_camera(camera_dir) -> Y4mInfo:
    """The frontal man who blinks often, as a 360x640 portrait phone camera."""
    return clip_to_y4m(video(BLINK_CLIP), camera_dir / "blink.y4m")


@pytest.fixture(scope="session")
def headturn_camera(camera_dir) -> Y4mInfo:
    """The young man turning left then right; his first second (still, frontal) is played forward and
    back first so the engine gets its neutral start even when the stream starts late."""
    return clip_to_y4m(video(HEADTURN_CLIP), camera_dir / "headturn.y4m", hold_start_s=1.0)


@pytest.fixture(scope="session")
def over_rotation_camera(camera_dir) -> Y4mInfo:
    """The young man's turn to his left and back alone (the clip's first 7 s, looped), turned beyond the
    landmarker's reach from 12 degrees on for 3.2 s (those frames pixelated: the landmarker finds no face
    where a person still sees the turned head). Chromium plays the file from the browser's launch, so a
    check may start anywhere in the loop: it always comes round to a still start, then the turn."""
    return clip_to_y4m(video(HEADTURN_CLIP), camera_dir / "over-rotation.y4m", max_seconds=7.0, hold_start_s=1.0, out_of_reach=lambda t: 2.05 <= t <= 5.3)


@pytest.fixture(scope="session")
def replay_camera(camera_dir) -> Y4mInfo:
    """A screen-replay attack as the fake camera: the same head turns, filmed off a monitor."""
    return clip_to_y4m(video(REPLAY_CLIP), camera_dir / "replay.y4m", hold_start_s=1.0)


@pytest.fixture
async def playwright_driver(chromium):
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        yield driver


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Let fixtures see whether the test itself failed (item.failed_call)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.failed_call = True


@pytest.fixture
async def launch(playwright_driver, chromium, server, request):
    """launch(camera=None, fake_camera=True, allow_camera=True) -> Browser; closed before the server
    stops. When the test failed, every open page is saved to e2e/artifacts/ with its console log."""
    browsers = []

    async def start(camera: Y4mInfo | Path | None = None, **options):
        path = camera.path if isinstance(camera, Y4mInfo) else camera
        browser = await playwright_driver.chromium.launch(
            executable_path=str(chromium), headless=True, args=chromium_args(path, **options)
        )
        browsers.append(browser)
        return browser

    yield start
    if getattr(request.node, "failed_call", False):
        await save_artifacts(browsers, request.node.name)
    for browser in browsers:
        await browser.close()


async def save_artifacts(browsers, test_name: str) -> None:
    from playwright.async_api import Error as PlaywrightError

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for b, browser in enumerate(browsers):
        for c, context in enumerate(browser.contexts):
            stem = ARTIFACTS / shot_name(test_name, f"browser{b}", f"context{c}")
            lines = getattr(context, "console_log", [])
            for p, page in enumerate(context.pages):
                lines.append(f"page {p}: {page.url}")
                try:
                    await page.screenshot(path=f"{stem}-page{p}.png", timeout=5_000)
                except PlaywrightError as error:  # a crashed or closing page: keep the log anyway
                    lines.append(f"page {p}: no screenshot ({error})")
            stem.with_suffix(".log").write_text("\n".join(lines) + "\n", encoding="utf-8")


async def phone_context(browser, **options):
    """A fresh profile shaped like a 360x640 phone; its console messages and page errors are kept in
    context.console_log for the failure artifacts."""
    context = await browser.new_context(**{**PHONE, **options})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    log: list[str] = []
    context.console_log = log

    def on_page(page) -> None:
        page.on("console", lambda message: log.append(f"console.{message.type}: {message.text} ({message.location.get('url', '')})"))
        page.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
        page.on("requestfailed", lambda req: log.append(f"requestfailed: {req.method} {req.url} {req.failure}"))
        page.on("response", lambda r: r.status >= 400 and log.append(f"http {r.status}: {r.request.method} {r.url}"))

    context.on("page", on_page)
    return context


@pytest.fixture
def shot(request):
    """await shot(page, "consent") -> e2e/screenshots/<test name>-consent.png, after the page passed
    the accessibility smoke check (one h1, labelled controls, no sideways scrolling at 360 px)."""

    async def take(page, step: str, check: bool = True) -> Path:
        if check:
            await assert_accessible(page)
        return await screenshot(page, shot_name(request.node.name.removeprefix("test_"), step))

    return take


@dataclass
class Merchant:
    """An API client with a sandbox key and the webhook secret that signs its events."""

    http: aiohttp.ClientSession
    base: str
    key: str
    secret: str

    async def create_session(self, **body: Any) -> dict[str, Any]:
        body.setdefault("reference_id", "customer-42")
        async with self.http.post(self.base + "/api/v1/sessions", json=body, headers=auth(self.key)) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async def session(self, session_id: str) -> dict[str, Any]:
        async with self.http.get(self.base + f"/api/v1/sessions/{session_id}", headers=auth(self.key)) as response:
            assert response.status == 200, await response.text()
            return await response.json()


@pytest.fixture
def merchant(http, server, services) -> Merchant:
    from server.api.auth import create_api_key

    key, secret = create_api_key(services.store, "Test Shop", sandbox=True)
    return Merchant(http, str(server.make_url("")).rstrip("/"), key, secret)


@pytest.fixture
async def receiver(aiohttp_server) -> Receiver:
    """The merchant's own server on loopback: POST /hook gets webhooks, GET /done is the return page."""
    receiver = Receiver()
    running = await aiohttp_server(receiver.app())
    receiver.base = str(running.make_url("")).rstrip("/")
    return receiver
