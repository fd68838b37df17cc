"""Steps a customer takes in the browser, and waiting on what the page or the server shows."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# Reports every text the live page puts in #instruction and #hint to the test, across navigations.
WATCH_LIVE_TEXT = """
(() => {
  const watch = () => {
    for (const id of ["instruction", "hint"]) {
      const element = document.getElementById(id);
      if (!element) continue;
      let last = "";
      const note = () => {
        const text = element.textContent.trim();
        if (text !== last) {
          last = text;
          if (text) window.__realnameText(id, text);
        }
      };
      new MutationObserver(note).observe(element, { childList: true, characterData: true, subtree: true });
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
})();
"""


# Makes every peer connection the page opens use TURN relay candidates only, as behind a firewall that
# lets no UDP through to the service: the check must then go through the TURN server.
FORCE_RELAY = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.RTCPeerConnection = class extends Native {
    constructor(config) {
      super({ ...(config || {}), iceTransportPolicy: "relay" });
    }
  };
})();
"""


# Keeps every peer connection the page opens in window.__realnamePeers, for a test to read its statistics.
KEEP_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.__realnamePeers = [];
  window.RTCPeerConnection = class extends Native {
    constructor(config) {
      super(config);
      window.__realnamePeers.push(this);
    }
  };
})();
"""


# A browser without WebRTC (some in-app browsers, locked-down builds): the page must record instead.
NO_WEBRTC = """
(() => {
  for (const name of ["RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel"]) {
    try { delete window[name]; } catch (e) { /* not configurable */ }
    window[name] = undefined;
  }
})();
"""


class LiveText:
    """What the live page said, in order: [("instruction", "Blink your eyes"), ("hint", ...), ...]."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float]] = []

    def note(self, element: str, text: str) -> None:
        self.seen.append((element, text, time.monotonic()))

    def texts(self, element: str = "instruction") -> list[str]:
        return [text for kind, text, _ in self.seen if kind == element]


async def watch_live_text(context) -> LiveText:
    log = LiveText()
    await context.expose_function("__realnameText", log.note)
    await context.add_init_script(WATCH_LIVE_TEXT)
    return log




Shot = Callable[[object, str], Awaitable[Path]]


def at(path: str) -> re.Pattern:
    """A URL on this path, whatever the query (e.g. ?lang=en)."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


async def consent(page, shot: Shot | None = None, then: str = "/verify/document") -> None:
    """Tick the box and go on (to the live check instead when the merchant sent the ID photo)."""
    await page.wait_for_url(at("/verify/consent"))
    if shot:
        await shot(page, "consent")
    await page.get_by_role("checkbox").check()
    await page.locator("form.consent button[type=submit]").click()
    await page.wait_for_url(at(then))


async def upload_id(page, path: Path, shot: Shot | None = None) -> None:
    await page.wait_for_url(at("/verify/document"))
    if shot:
        await shot(page, "document")
    await page.locator("#photo").set_input_files(str(path))
    await page.locator("#preview").wait_for(state="visible")
    if shot:
        await shot(page, "document-chosen")
    await page.locator("#document-submit").click()
    await page.wait_for_url(at("/verify/live"))


async def open_link(page, link: str, shot: Shot | None = None) -> None:
    """Open the link and tap Start, as a customer does (opening alone, like a chat app's preview, uses nothing)."""
    await page.goto(link)
    if shot:
        await shot(page, "start")
    await page.locator("form.start button[type=submit]").click()


async def walk_to_live(page, link: str, id_photo: Path, shot: Shot | None = None) -> None:
    """Open the link, consent, upload the ID photo: the page is then the live check's start screen."""
    await open_link(page, link)
    await consent(page, shot)
    await upload_id(page, id_photo, shot)
