"""A SIM-card shop that verifies its customers with Realname: pick a plan, enter your name and ID number, pay
(fake), verify in the widget, and the order is activated when Realname's signed webhook says `approved`.

    REALNAME_URL=http://127.0.0.1:8080 REALNAME_KEY=rn_test_... REALNAME_WHSEC=whsec_... \\
        .venv/bin/python examples/sim-shop/shop.py        # then open http://127.0.0.1:8090

Everything a real integration needs, in one small file: the session is created server-side (with `expected`,
what the ID must say), the browser only opens the widget, and only the webhook (verified the Standard
Webhooks way) activates an order, after the receipt in it verified against Realname's published keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PLANS = {"basic": ("Basic", "10 GB, ¥39 a month"), "plus": ("Plus", "40 GB, ¥79 a month"), "max": ("Max", "unlimited, ¥129 a month")}
WEBHOOK_TOLERANCE_S = 300
CONFIG = web.AppKey("config", dict)
ORDERS = web.AppKey("orders", dict)


@dataclass
class Order:
    id: str
    plan: str
    name: str
    id_number: str
    paid: bool = False
    session_id: str | None = None
    session_url: str | None = None
    verification: str | None = None  # the session's final status, from the webhook
    activated: bool = False
    receipt: dict[str, Any] = field(default_factory=dict)


# -- Realname: the webhook and the receipt --------------------------------------------------------------


def verify_webhook(whsec: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks: v1 = base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed with the whsec_ secret."""
    try:
        key = base64.b64decode(whsec.removeprefix("whsec_"))
        msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
        if abs(time.time() - int(timestamp)) > WEBHOOK_TOLERANCE_S:
            return False
    except (KeyError, ValueError):
        return False
    mac = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(mac, s.removeprefix("v1,")) for s in headers.get("webhook-signature", "").split())


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_receipt(receipt: str, jwks: dict[str, Any]) -> dict[str, Any] | None:
    """The receipt's claims when its Ed25519 signature verifies with one of Realname's published keys."""
    try:
        header_b64, payload_b64, signature_b64 = receipt.split(".")
        header = json.loads(_b64url(header_b64))
        key = next(k for k in jwks["keys"] if k.get("kid") == header.get("kid") and k.get("crv") == "Ed25519")
        Ed25519PublicKey.from_public_bytes(_b64url(key["x"])).verify(_b64url(signature_b64), f"{header_b64}.{payload_b64}".encode())
        return json.loads(_b64url(payload_b64))
    except (ValueError, KeyError, StopIteration, InvalidSignature):
        return None


async def realname(app: web.Application, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    config = app[CONFIG]
    headers = {"Authorization": f"Bearer {config['key']}"}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, config["url"] + path, headers=headers, **kwargs) as response:
            data = await response.json()
            if response.status >= 400:
                raise web.HTTPBadGateway(text=f"Realname answered {response.status}: {data.get('detail')}")
            return data


# -- the shop's pages -------------------------------------------------------------------------------------


def page(title: str, body: str, script: str = "") -> web.Response:
    return web.Response(
        text=f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)} · SIM Shop</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:560px;margin:0 auto;padding:12px;color:#1b1f24}}
label{{display:block;margin:10px 0}} input[type=text]{{font:inherit;width:100%;padding:8px}}
button{{font:inherit;padding:12px 18px;min-height:48px;width:100%;margin-top:12px}} .ok{{color:#1d7a46}} .bad{{color:#b3261e}}
dl{{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px}} dd{{margin:0;overflow-wrap:anywhere}}</style>
{script}</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>""",
        content_type="text/html",
    )


async def home(request: web.Request) -> web.Response:
    plans = "".join(
        f'<label><input type="radio" name="plan" value="{key}" required{" checked" if key == "basic" else ""}> <b>{name}</b>: {about}</label>'
        for key, (name, about) in PLANS.items()
    )
    return page(
        "Get a SIM card",
        f"""<form method="post" action="/orders"><fieldset><legend>Plan</legend>{plans}</fieldset>
<label>Full name, as on your ID <input type="text" name="name" required maxlength="100" autocomplete="name"></label>
<label>ID number <input type="text" name="id_number" required maxlength="40"></label>
<button type="submit">Continue to payment</button></form>
<p>Chinese law asks for a real-name check before a SIM card works: you will verify your identity after paying.</p>""",
    )


async def create_order(request: web.Request) -> web.Response:
    form = await request.post()
    plan, name, id_number = str(form.get("plan", "")), str(form.get("name", "")).strip(), str(form.get("id_number", "")).strip().upper()
    if plan not in PLANS or not name or not id_number:
        raise web.HTTPBadRequest(text="pick a plan and enter your name and ID number")
    order = Order("ord_" + secrets.token_hex(6), plan, name, id_number)
    request.app[ORDERS][order.id] = order
    raise web.HTTPSeeOther(f"/orders/{order.id}")


def order_of(request: web.Request) -> Order:
    order = request.app[ORDERS].get(request.match_info["id"])
    if order is None:
        raise web.HTTPNotFound(text="no such order")
    return order


async def pay(request: web.Request) -> web.Response:
    """The fake payment; then the Realname session, created here, on the server, with what the ID must say."""
    order = order_of(request)
    if not order.paid:
        order.paid = True
        config = request.app[CONFIG]
        shop = str(request.url.origin())
        body: dict[str, Any] = {
            "reference_id": order.id,
            "callback_url": f"{shop}/webhooks/realname",
            "locale": "en",
            "expected": {"name": order.name, "id_number": order.id_number},
        }
        if config.get("fixed_challenges"):  # sandbox keys only: a demo or a test with a known clip
            body["fixed_challenges"] = config["fixed_challenges"]
        session = await realname(request.app, "POST", "/api/v1/sessions", json=body)
        order.session_id, order.session_url = session["id"], session["url"]
    raise web.HTTPSeeOther(f"/orders/{order.id}")


async def show_order(request: web.Request) -> web.Response:
    order = order_of(request)
    plan = PLANS[order.plan][0]
    summary = f"<p>{html.escape(plan)} plan for {html.escape(order.name)}.</p>"
    if not order.paid:
        return page("Payment", summary + f'<form method="post" action="/orders/{order.id}/pay"><button type="submit">Pay (fake)</button></form>')
    if order.activated:
        facts = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in order.receipt.items())
        return page("Your SIM card is active", summary + f'<p class="ok" id="order-state" data-activated="true">Activated.</p><h2>Receipt</h2><dl>{facts}</dl>')
    if order.verification:
        return page(
            "Not activated",
            summary + f'<p class="bad" id="order-state" data-activated="false">Identity check: {html.escape(order.verification)}. '
            "The order was not activated; please contact us.</p>",
        )
    realname_url = request.app[CONFIG]["url"]
    script = f"""<script src="{html.escape(realname_url)}/sdk/v1/realname.js"></script>
<script type="module">
  const button = document.getElementById("verify");
  const status = document.getElementById("status");
  button.addEventListener("click", async () => {{
    const result = await Realname.verify({{ url: {json.dumps(order.session_url)}, locale: "en" }});
    if (result.status === "cancelled") return;
    status.textContent = "Waiting for the confirmation…";
    // The browser's word is not proof: the order is activated by the signed webhook, so wait for it.
    for (let i = 0; i < 60; i++) {{
      const order = await (await fetch("/orders/{order.id}.json")).json();
      if (order.activated || order.verification) break;
      await new Promise((done) => setTimeout(done, 1000));
    }}
    location.reload();
  }});
</script>"""
    body = summary + '<p>Paid. Now confirm your identity: it takes about two minutes.</p><button type="button" id="verify">Verify my identity</button><p id="status" role="status"></p>'
    return page("Verify your identity", body, script)


async def order_json(request: web.Request) -> web.Response:
    order = order_of(request)
    return web.json_response({"id": order.id, "paid": order.paid, "verification": order.verification, "activated": order.activated})


async def webhook(request: web.Request) -> web.Response:
    body = await request.read()
    if not verify_webhook(request.app[CONFIG]["whsec"], dict(request.headers), body):
        return web.Response(status=400, text="bad signature")
    event = json.loads(body)
    session = event["data"]["session"]
    order = request.app[ORDERS].get(session.get("reference_id") or "")
    if order is None or order.session_id != session["id"]:
        return web.Response(status=204)  # not ours (or an erased session): acknowledge, do nothing
    if event["type"] == "session.approved" and session["status"] == "approved":
        jwks = await realname(request.app, "GET", "/.well-known/jwks.json")
        claims = verify_receipt(session.get("receipt") or "", jwks)
        if claims and claims.get("sub") == session["id"] and claims.get("decision") == "approved":
            order.activated = True
            order.receipt = {
                "session": claims["sub"],
                "decision": claims["decision"],
                "sandbox": claims.get("sandbox"),
                "issued": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(claims["iat"])),
                "reasons": ", ".join(claims.get("reasons") or []) or "none",
                "path": claims.get("path"),
            }
    # Only once the receipt is judged: the order page, polling, reloads as soon as this is set.
    order.verification = session["status"]
    return web.Response(status=204)


def make_app(realname_url: str, api_key: str, whsec: str, fixed_challenges: list[str] | None = None) -> web.Application:
    app = web.Application()
    app[CONFIG] = {"url": realname_url.rstrip("/"), "key": api_key, "whsec": whsec, "fixed_challenges": fixed_challenges}
    app[ORDERS] = {}
    app.router.add_get("/", home)
    app.router.add_post("/orders", create_order)
    app.router.add_get("/orders/{id}.json", order_json)
    app.router.add_get("/orders/{id}", show_order)
    app.router.add_post("/orders/{id}/pay", pay)
    app.router.add_post("/webhooks/realname", webhook)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(os.environ["REALNAME_URL"], os.environ["REALNAME_KEY"], os.environ["REALNAME_WHSEC"]),
        host="127.0.0.1",
        port=int(os.environ.get("SHOP_PORT", "8090")),
    )
