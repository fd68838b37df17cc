"""realname.js on a merchant's page (issue 29), in a real Chromium: the shop's checkout on its own origin (a
second local server) opens the hosted flow in the widget's modal; a genuine customer (fake camera, shared
clip) is approved inside it on a 360x640 phone; the widget is keyboard-usable; and on an origin the merchant
did not list, the browser blocks the frame, the hosted pages say nothing, and the widget offers a new tab."""

from __future__ import annotations

import pytest
from aiohttp import web

from e2e.conftest import BLINK_ID, phone_context
from e2e.support.browser import STEP_TIMEOUT_MS
from e2e.support.flow import at, consent, upload_id, watch_live_text
from server.webhooks import SIGNATURE_HEADER, verify_signature
from tests.support.media import photo

pytestmark = pytest.mark.e2e

RESULT_TIMEOUT_MS = 60_000
CHECKOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Checkout</title><script src="{service}/sdk/v1/realname.js"></script></head>
<body><main><h1>Checkout</h1><p>Order 42: one SIM card.</p><button id="pay" type="button">Verify and pay</button></main>
<script>
  window.__events = []; window.__messages = []; window.__result = null;
  // Every message this page gets, whoever sent it: the hosted pages must send none when not allowed here.
  window.addEventListener("message", (e) => window.__messages.push({{ origin: e.origin, data: e.data }}));
  window.start = (url) => Realname.verify({{ url, locale: "en", onEvent: (e) => window.__events.push(e) }})
    .then((r) => {{ window.__result = r; }});
</script></body></html>"""


@pytest.fixture
async def shop(aiohttp_server, server):
    """start(headers) -> the checkout page's origin, served by a second local server (another port)."""

    async def start(headers: dict[str, str] | None = None) -> str:
        async def checkout(request: web.Request) -> web.Response:
            page = CHECKOUT.format(service=str(server.make_url("")).rstrip("/"))
            return web.Response(text=page, content_type="text/html", headers=headers or {})

        app = web.Application()
        app.router.add_get("/checkout", checkout)
        running = await aiohttp_server(app)
        return str(running.make_url("")).rstrip("/")

    return start


def allow(services, origins: list[str]) -> None:
    services.store.set_frame_origins(services.store.merchant_by_name("Test Shop").id, origins)


async def widget_frame(page):
    handle = await page.wait_for_selector("[data-realname-widget] iframe")
    return await handle.content_frame()


async def event_types(page) -> list[str]:
    return await page.evaluate("() => window.__events.map((e) => e.type)")


@pytest.mark.media
async def test_a_genuine_customer_is_approved_inside_the_widget_on_a_phone(launch, blink_camera, merchant, services, receiver, shop, shot):
    origin = await shop()
    allow(services, [origin])
    created = await merchant.create_session(fixed_challenges=["blink", "blink"], callback_url=receiver.base + "/hook")
    browser = await launch(blink_camera)
    context = await phone_context(browser)
    said = await watch_live_text(context)
    page = await context.new_page()
    await page.goto(origin + "/checkout")
    await page.evaluate("(url) => { window.start(url); }", created["url"])

    frame = await widget_frame(page)
    await frame.locator("form.start button[type=submit]").click()
    await page.wait_for_function("() => window.__events.some((e) => e.type === 'ready')")
    # Full screen on a phone, and the page behind is inert while the widget is open.
    box = await page.locator("[data-realname-widget] iframe").bounding_box()
    assert box["width"] >= 350 and box["height"] >= 560, box
    assert await page.evaluate("() => document.querySelector('main').inert") is True
    await shot(page, "widget-start", check=False)
    await consent(frame)
    await upload_id(frame, photo(BLINK_ID))
    await frame.wait_for_url(at("/verify/live"))
    await frame.locator("#start").click()
    await page.wait_for_function("() => window.__result !== null", timeout=RESULT_TIMEOUT_MS)

    result = await page.evaluate("() => window.__result")
    assert result == {"status": "approved"}, said.seen
    types = await event_types(page)
    assert types[0] == "ready" and types[-1] == "completed", types
    steps = await page.evaluate("() => window.__events.filter((e) => e.type === 'step').map((e) => e.step)")
    assert {"consent", "document", "live", "result"} <= set(steps), steps
    assert await page.locator("[data-realname-widget]").count() == 0  # closed
    assert await page.evaluate("() => document.querySelector('main').inert") is False
    # Every message came from the service, from the widget's frame.
    origins = await page.evaluate("() => [...new Set(window.__messages.map((m) => m.origin))]")
    assert origins == [merchant.base], origins

    # The shop's server is told by the signed webhook, the source of truth.
    delivery = await receiver.event("session.approved", timeout=30.0)
    assert verify_signature(merchant.secret.encode(), delivery.headers[SIGNATURE_HEADER], delivery.body)
    assert (await merchant.session(created["id"]))["status"] == "approved"


async def test_the_widget_is_keyboard_usable_and_escape_cancels(launch, merchant, services, shop):
    origin = await shop()
    allow(services, [origin])
    created = await merchant.create_session()
    browser = await launch()
    context = await phone_context(browser)
    page = await context.new_page()
    await page.goto(origin + "/checkout")
    await page.locator("#pay").focus()
    await page.evaluate("(url) => { window.start(url); }", created["url"])
    await widget_frame(page)
    await page.wait_for_function("() => window.__events.some((e) => e.type === 'ready')")
    dialog = page.locator("[data-realname-widget]")
    assert await dialog.get_attribute("role") == "dialog" and await dialog.get_attribute("aria-modal") == "true"
    # Tabbing never leaves the dialog for the page behind.
    for _ in range(8):
        await page.keyboard.press("Tab")
        inside = await page.evaluate("() => !document.activeElement || document.activeElement === document.body || !!document.activeElement.closest('[data-realname-widget]')")
        assert inside
        assert await page.evaluate("() => document.activeElement.id") != "pay"
    await page.locator("[data-realname=close]").focus()
    await page.keyboard.press("Escape")
    await page.wait_for_function("() => window.__result !== null")
    assert await page.evaluate("() => window.__result") == {"status": "cancelled"}
    assert (await event_types(page))[-1] == "cancelled"
    assert await page.evaluate("() => document.activeElement.id") == "pay"  # focus back where it was
    assert await page.evaluate("() => document.querySelector('main').inert") is False

    # Escape pressed inside the hosted page (the frame has the focus) cancels too.
    second = await merchant.create_session()
    await page.evaluate("() => { window.__result = null; window.__events = []; }")
    await page.evaluate("(url) => { window.start(url); }", second["url"])
    frame = await widget_frame(page)
    await page.wait_for_function("() => window.__events.some((e) => e.type === 'ready')")
    await frame.locator("form.start button[type=submit]").focus()
    await page.keyboard.press("Escape")
    await page.wait_for_function("() => window.__result !== null")
    assert await page.evaluate("() => window.__result") == {"status": "cancelled"}


async def test_the_widget_is_refused_on_an_origin_the_merchant_did_not_allow(launch, merchant, services, shop):
    allowed, elsewhere = await shop(), await shop()
    assert allowed != elsewhere
    allow(services, [allowed])
    created = await merchant.create_session()
    browser = await launch()
    context = await phone_context(browser)
    page = await context.new_page()
    await page.goto(elsewhere + "/checkout")
    await page.evaluate("(url) => { window.start(url); }", created["url"])
    fallback = page.locator("[data-realname=fallback]")
    await fallback.wait_for(state="visible", timeout=40_000)

    # The browser refused the frame (frame-ancestors): no hosted page ran there, no message reached the shop.
    assert await page.evaluate("() => window.__messages") == []
    assert any("frame-ancestors" in line for line in context.console_log), context.console_log
    assert await page.evaluate("() => window.__events") == [{"type": "error", "code": "frame_blocked", "fallback": "new_tab"}]
    assert "cannot open inside this page" in await fallback.text_content()
    assert (await merchant.session(created["id"]))["status"] == "created"
    # The widget says so and offers the flow in a new tab, where it works (a top-level page is not framed).
    link = page.locator("[data-realname=new-tab]")
    assert await link.get_attribute("href") == created["url"] + "?lang=en"
    async with context.expect_page() as opened:
        await link.click()
    tab = await opened.value
    await tab.wait_for_load_state()
    assert await tab.locator("form.start button[type=submit]").count() == 1
    await page.wait_for_function("() => window.__result !== null")
    assert await page.evaluate("() => window.__result") == {"status": "new_tab"}


@pytest.mark.media
async def test_a_camera_the_shops_page_does_not_delegate_falls_back_to_a_new_tab(launch, blink_camera, merchant, services, shop):
    # The shop's own policy keeps the camera from every frame: the hosted page cannot open it there.
    origin = await shop({"Permissions-Policy": "camera=()"})
    allow(services, [origin])
    created = await merchant.create_session(fixed_challenges=["blink"])
    browser = await launch(blink_camera)
    context = await phone_context(browser)
    page = await context.new_page()
    await page.goto(origin + "/checkout")
    await page.evaluate("(url) => { window.start(url); }", created["url"])
    frame = await widget_frame(page)
    await frame.locator("form.start button[type=submit]").click()
    await consent(frame)
    await upload_id(frame, photo(BLINK_ID))
    await frame.locator("#start").click()
    fallback = page.locator("[data-realname=fallback]")
    await fallback.wait_for(state="visible", timeout=30_000)
    assert "camera cannot be used" in await fallback.text_content()
    events = await page.evaluate("() => window.__events")
    assert events[-1] == {"type": "error", "code": "camera_denied", "fallback": "new_tab"}, events
    assert services.store.session(created["id"]).attempts == 0  # nothing was streamed
    # The same browser goes on at the live step in the new tab (its cookie binds it to the session).
    async with context.expect_page() as opened:
        await page.locator("[data-realname=new-tab]").click()
    tab = await opened.value
    await tab.wait_for_url(at("/verify/live"))
    assert await page.evaluate("() => window.__result") == {"status": "new_tab"}


@pytest.mark.media
async def test_a_desktop_without_a_camera_hands_off_to_a_phone_from_inside_the_widget(launch, blink_camera, merchant, services, shop):
    origin = await shop()
    allow(services, [origin])
    created = await merchant.create_session(fixed_challenges=["blink"])
    desktop = await (await launch(fake_camera=False)).new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    desktop.set_default_timeout(STEP_TIMEOUT_MS)
    page = await desktop.new_page()
    await page.goto(origin + "/checkout")
    await page.evaluate("(url) => { window.start(url); }", created["url"])
    box = await page.locator("[data-realname-widget] iframe").bounding_box()
    assert box["width"] <= 480  # a modal on a desktop, not the whole screen
    frame = await widget_frame(page)
    await frame.locator("form.start button[type=submit]").click()
    await consent(frame)
    await upload_id(frame, photo(BLINK_ID))
    await frame.locator("#start").click()
    await frame.locator("body[data-live-error='no_camera']").wait_for(state="attached")
    await frame.locator("#handoff").click()
    await frame.locator(".qr svg").wait_for()
    link = await frame.locator("#short-link").get_attribute("href")

    phone = await (await phone_context(await launch(blink_camera))).new_page()
    await phone.goto(link)
    await phone.locator("form.start button[type=submit]").click()
    await phone.wait_for_url(at("/verify/live"))
    await phone.locator("#start").click()
    await page.wait_for_function("() => window.__result !== null", timeout=RESULT_TIMEOUT_MS)
    assert await page.evaluate("() => window.__result") == {"status": "approved"}
    assert "handoff" in await page.evaluate("() => window.__events.filter((e) => e.type === 'step').map((e) => e.step)")
    assert (await merchant.session(created["id"]))["liveness"]["path"] == "handoff"
