"""examples/sim-shop in a real Chromium (issue 29): a customer buys a SIM card on a 360x640 phone, verifies in
the widget with a generated ID card carrying their face, and the shop activates the order from the signed
webhook, showing the receipt's fields; a desktop buyer without a camera does the check on a phone through
the handoff QR shown in the widget; a screen replay gets no active SIM."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from e2e.conftest import BLINK_ID, HEADTURN_ID, phone_context
from e2e.support.browser import STEP_TIMEOUT_MS
from e2e.support.flow import at, consent, upload_id
from server.api.auth import create_api_key
from server.webhooks import standard_secret
from tests.support.documents import card_with_face, jpeg
from tests.support.media import pad_model_dir, photo
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.reads_documents, pytest.mark.media]

SHOP_FILE = Path(__file__).resolve().parents[1] / "examples" / "sim-shop" / "shop.py"
RESULT_TIMEOUT_MS = 60_000


def shop_module():
    """The example as a merchant runs it (a script in its own folder, not a package of ours)."""
    if "sim_shop" in sys.modules:
        return sys.modules["sim_shop"]
    spec = importlib.util.spec_from_file_location("sim_shop", SHOP_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sim_shop"] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


async def open_shop(aiohttp_server, server, services, challenges: list[str]):
    """The shop on its own origin, with a sandbox key of its merchant account, which lets it frame the pages."""
    key, secret = create_api_key(services.store, "SIM Shop", sandbox=True)
    module = shop_module()
    app = module.make_app(str(server.make_url("")).rstrip("/"), key, standard_secret(secret.encode()), fixed_challenges=challenges)
    running = await aiohttp_server(app)
    origin = str(running.make_url("")).rstrip("/")
    services.store.set_frame_origins(services.store.merchant_by_name("SIM Shop").id, [origin])
    return origin, app[module.ORDERS]


async def buy_and_verify(page, origin, card, tmp_path, name: str, id_number: str):
    """Pick a plan, enter the name and ID number, pay, open the widget and go through the check in it."""
    await page.goto(origin + "/")
    await page.get_by_label("Plus").check()
    await page.get_by_label("Full name, as on your ID").fill(name)
    await page.get_by_label("ID number").fill(id_number)
    await page.get_by_role("button", name="Continue to payment").click()
    await page.get_by_role("button", name="Pay (fake)").click()
    await page.get_by_role("button", name="Verify my identity").click()
    frame = await (await page.wait_for_selector("[data-realname-widget] iframe")).content_frame()
    await frame.locator("form.start button[type=submit]").click()
    await consent(frame)
    path = tmp_path / "card.jpg"
    path.write_bytes(jpeg(card.image))
    await upload_id(frame, path)
    await frame.wait_for_url(at("/verify/live"))
    await frame.locator("#start").click()
    return frame


async def test_a_desktop_buyer_hands_the_check_to_a_phone_and_gets_an_active_sim(launch, blink_camera, aiohttp_server, server, services, models, tmp_path):
    origin, orders = await open_shop(aiohttp_server, server, services, ["blink"])
    card = card_with_face(models, photo(BLINK_ID), seed=23)
    desktop = await (await launch(fake_camera=False)).new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    desktop.set_default_timeout(STEP_TIMEOUT_MS)
    page = await desktop.new_page()
    frame = await buy_and_verify(page, origin, card, tmp_path, card.truth["name"], card.truth["id_number"])
    await frame.locator("body[data-live-error='no_camera']").wait_for(state="attached")
    await frame.locator("#handoff").click()
    await frame.locator(".qr svg").wait_for()  # the QR code the customer scans with the phone
    link = await frame.locator("#short-link").get_attribute("href")

    phone = await (await phone_context(await launch(blink_camera))).new_page()
    await phone.goto(link)
    await phone.locator("form.start button[type=submit]").click()
    await phone.wait_for_url(at("/verify/live"))
    await phone.locator("#start").click()
    state = page.locator("#order-state")
    await state.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert await state.get_attribute("data-activated") == "true", await page.content()
    [order] = orders.values()
    assert order.activated and order.receipt["path"] == "handoff"


async def test_a_genuine_customer_gets_an_active_sim(launch, blink_camera, aiohttp_server, server, services, models, tmp_path):
    origin, orders = await open_shop(aiohttp_server, server, services, ["blink", "blink"])
    card = card_with_face(models, photo(BLINK_ID), seed=21)
    browser = await launch(blink_camera)
    page = await (await phone_context(browser)).new_page()
    await buy_and_verify(page, origin, card, tmp_path, card.truth["name"], card.truth["id_number"])

    state = page.locator("#order-state")
    await state.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert await state.get_attribute("data-activated") == "true", await page.content()
    [order] = orders.values()
    assert order.activated and order.verification == "approved"
    assert order.receipt["decision"] == "approved" and order.receipt["session"] == order.session_id and order.receipt["sandbox"] is True
    text = await page.locator("main").text_content()
    assert "Receipt" in text and order.session_id in text


async def test_a_replay_gets_no_active_sim(launch, replay_camera, aiohttp_server, server, services, models, tmp_path):
    pad_model_dir()
    origin, orders = await open_shop(aiohttp_server, server, services, ["turn_left"])
    card = card_with_face(models, photo(HEADTURN_ID), seed=22)
    browser = await launch(replay_camera)
    page = await (await phone_context(browser)).new_page()
    frame = await buy_and_verify(page, origin, card, tmp_path, card.truth["name"], card.truth["id_number"])

    await frame.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    [order] = orders.values()
    session = services.store.session(order.session_id)
    assert session.failure_reason == "presentation_attack", (session.status, session.failure_reason)
    assert not await eventually(lambda: order.activated, timeout=3.0)
    assert order.verification in (None, "failed")  # a retry is offered; nothing final, nothing activated
