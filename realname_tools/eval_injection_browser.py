"""`python -m server eval-injection --chromium`: each case's clip as Chromium's fake camera, through the
real hosted page, on a live key of a real server started in this process (issue 24's must-show).

The browser is the e2e suite's (e2e/support/browser.py: Debian's Chromium, its flags, a phone profile)
and so are the customer's steps (e2e/support/flow.py) and the clip's conversion to a .y4m fake camera
(e2e/support/y4m.py). The attacker's one change to the browser: the fake camera's label ("fake_device_0",
which a live key refuses outright as a virtual camera) is renamed "Integrated Camera" by a script run
before the page, as a virtual camera can be renamed; genuine clips get the same, so that both meet the
same server. The session's challenges are those the clip performs (the attacker of the issue played the
movement that fits each prompt); the file loops from the browser's start and is not driven by the
prompts. A case played on prompt (`--reactive`) is instead a canvas stream that hears the prompts
(data/reactive_camera.js): a virtual camera driven by the attacker's script. Where the case has no photo of the person apart from their clip, a photo of another person is
the ID photo and the decision is taken with the match assumed (as the offline cases do), from the
check's own signals.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

RESULT_TIMEOUT_MS = 180_000
LEAD_IN_REPEATS = 15  # the still start: 15 s, longer than the page takes to connect on a busy machine
CHALLENGE_TIMEOUT_S = 20.0  # a file does not react to its prompt: it gets its chance (so do the attacks)
OTHER_PERSON = "george_clooney/deepface_img38.jpg"  # the ID photo when the case has none (match assumed)
REACTIVE_CAMERA = Path(__file__).with_name("data") / "reactive_camera.js"  # footage played on prompt, in the page

# The attacker's rename of a virtual camera, before any page script runs.
RENAMED_CAMERA = """
(() => {
  const own = Object.getOwnPropertyDescriptor(MediaStreamTrack.prototype, "label");
  Object.defineProperty(MediaStreamTrack.prototype, "label", {
    configurable: true,
    get() {
      const label = own.get.call(this);
      return /fake/i.test(label) ? "Integrated Camera" : label;
    },
  });
})();
"""


class LiveServer:
    """The real app on a loopback port, on a temporary data folder, with a live key."""

    def __init__(self, models, pad_dir: str, folder: Path) -> None:
        from server.config import Settings

        self.models = models
        self.settings = Settings(
            data_dir=str(folder / "data"),
            pad_model_dir=pad_dir,
            ice_loopback=True,
            connect_timeout_s=30.0,
            api_rate_per_minute=1_000_000,
            page_rate_per_minute=1_000_000,
            failures_per_window=1_000_000,  # every case comes from 127.0.0.1, many of them attacks
            max_attempts=1,
            challenge_timeout_s=CHALLENGE_TIMEOUT_S,
        )

    async def __aenter__(self) -> LiveServer:
        from aiohttp import web

        from server.api.auth import create_api_key
        from server.app import create_app
        from server.http.services import SERVICES

        self.app = create_app(self.settings, models=self.models)
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        self.services = self.app[SERVICES]
        self.key, _secret = create_api_key(self.services.store, "Live Shop", sandbox=False)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


async def browser_check(live: LiveServer, playwright, launch_args: list[str], challenges: list[str], photo: Path, reference_id: str,
                        init_script: str, default_timeout_ms: int, prepare=None) -> dict:
    """One check as a customer in Chromium launched with `launch_args`, `init_script` run before the page
    (and `prepare(context)` awaited first, if given), on a session whose challenges are `challenges`;
    the session's record once it holds the liveness result."""
    import aiohttp

    from e2e.support.browser import CHROMIUM, PHONE
    from e2e.support.flow import at, walk_to_live
    from server.liveness.challenges import parse_challenges

    fixed = parse_challenges(challenges)
    live.services.lifecycle.challenges_for = lambda session: list(fixed)
    headers = {"Authorization": f"Bearer {live.key}"}
    data: dict = {}
    async with aiohttp.ClientSession() as http:
        async with http.post(live.base + "/api/v1/sessions", json={"reference_id": reference_id}, headers=headers) as response:
            created = await response.json()
            assert response.status == 201, created
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=launch_args)
        try:
            context = await browser.new_context(**PHONE)
            context.set_default_timeout(default_timeout_ms)
            if prepare is not None:
                await prepare(context)
            await context.add_init_script(init_script)
            page = await context.new_page()
            await walk_to_live(page, created["url"], photo)
            await page.locator("#start").click()
            await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
        finally:
            await browser.close()
        for _ in range(60):  # the page shows the result once the session holds it; the record may lag a moment
            async with http.get(live.base + f"/api/v1/sessions/{created['id']}", headers=headers) as response:
                data = await response.json()
            if data.get("liveness") is not None:
                break
            await asyncio.sleep(0.5)
    return data


async def chromium_check(live: LiveServer, playwright, camera: Path, challenges: str, id_photo: Path) -> dict:
    """One check as a customer in Chromium whose camera is `camera`; the session's record."""
    from e2e.support.browser import chromium_args

    return await browser_check(live, playwright, chromium_args(camera), challenges.split(","), id_photo, "eval-injection", RENAMED_CAMERA, 30_000)


async def reactive_check(live: LiveServer, playwright, player, challenges: str, id_photo: Path) -> dict:
    """One check as a customer in Chromium whose camera answers the prompts: `player`'s frames
    (reactive_splices.ReactivePlayer) drawn on a canvas stream named like a webcam, each piece played as the
    page's data channel asks its challenge (data/reactive_camera.js, the attacker's virtual camera); the
    session's record."""
    import json

    import cv2

    from e2e.support.browser import chromium_args
    from realname_tools.reactive_splices import RETRY_S

    def jpegs(frames) -> list[bytes]:
        return [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for frame in frames]

    served = {"rest": jpegs(player.rest), **{f"move{k}": jpegs(piece) for k, piece in enumerate(player.moves)}}
    height, width = player.rest[0].shape[:2]
    config = {"fps": player.fps, "latency_s": player.latency_s, "retry_s": RETRY_S, "rest": len(player.rest),
              "moves": [len(piece) for piece in player.moves], "width": width, "height": height}
    script = REACTIVE_CAMERA.read_text().replace("__REACTIVE_CONFIG__", json.dumps(config))

    async def serve(route) -> None:
        name, frame = route.request.url.rsplit("/", 2)[-2:]
        await route.fulfill(status=200, content_type="image/jpeg", body=served[name][int(frame.split(".")[0])])

    async def prepare(context) -> None:
        await context.route("**/__attack/**", serve)

    return await browser_check(live, playwright, chromium_args(), challenges.split(","), id_photo, "eval-injection", script, 30_000, prepare)


def outcome_of(Outcome, case, data: dict, match_assumed: bool):
    """The case's Outcome (eval_injection's) from the session's record (with the match assumed: from its
    signals alone)."""
    from server.flow.judgement import judge
    from server.matching.matcher import Decision
    from server.spoof.signals import Action, Level, RiskSignal, SignalCode

    liveness = data.get("liveness") or {}
    raw = liveness.get("signals") or []
    shown = [s["code"] for s in raw if s["level"] != "low"]
    performed = bool(liveness.get("challenges")) and all(c["passed"] for c in liveness["challenges"])
    if not liveness.get("passed"):
        reason = data.get("failure_reason") or liveness.get("reason") or "?"
        if reason == "presentation_attack":
            reason += ": " + ",".join(s["code"] for s in raw if s["action"] == "fail")
        return Outcome(case, "failed", reason, shown, performed)
    if not match_assumed:
        return Outcome(case, data["status"], data.get("failure_reason") or ",".join(liveness.get("review_because") or []), shown, performed)
    signals = [RiskSignal(SignalCode(s["code"]), Level(s["level"]), s.get("detail") or {}, Action(s["action"])) for s in raw]
    verdict = judge(Decision.MATCH, signals, sandbox=False)
    return Outcome(case, verdict.status.value, (verdict.failure_reason or ",".join(verdict.review_because)) + " (match assumed)", shown, performed)


async def run_cases(cases, media: Path, models, pad_dir: str, Outcome, report) -> list:
    """Every case that a browser can carry (not the scripted clients) through Chromium, each an `Outcome`
    (eval_injection's, handed in); `report(outcome)` as each ends."""
    from playwright.async_api import async_playwright

    from e2e.support.y4m import clip_to_y4m

    outcomes = []
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="eval-injection-chromium-") as scratch:  # never in the repository
        folder = Path(scratch)
        async with LiveServer(models, pad_dir, folder) as live, async_playwright() as playwright:
            for index, case in enumerate(cases):
                photo = media / "photos" / (case.reference or OTHER_PERSON)
                camera = None
                try:
                    if case.player is not None:
                        data = await reactive_check(live, playwright, case.player(), case.challenges, photo)
                    else:
                        # A still start of some seconds (its first half second played forward and back) before
                        # the clip's own: the check's first prompt comes while the person is still, whatever the
                        # clip; then back to the start the other way, so that the fake camera's loop makes no cut.
                        camera = clip_to_y4m(case.clip(folder), folder / f"camera-{index}.y4m", hold_start_s=0.5,
                                             hold_repeats=LEAD_IN_REPEATS, palindrome=True)
                        data = await chromium_check(live, playwright, camera.path, case.chromium_challenges or case.challenges, photo)
                    outcome = outcome_of(Outcome, case, data, match_assumed=case.reference is None)
                except Exception as error:  # a page that never reached its result: said, and counted as not approved
                    outcome = Outcome(case, "error", f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
                if camera is not None:
                    camera.path.unlink(missing_ok=True)
                report(outcome)
                outcomes.append(outcome)
    return outcomes
