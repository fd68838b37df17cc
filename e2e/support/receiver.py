"""A merchant's side on loopback: receives the signed webhooks and is where the "continue" link leads."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    base: str = ""  # set once the server runs, e.g. http://127.0.0.1:40123
    deliveries: list[Delivery] = field(default_factory=list)
    returns: list[dict[str, str]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_get("/done", self._done)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        delivery = Delivery(dict(request.headers), await request.read())
        async with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()
        return web.Response(status=204)

    async def _done(self, request: web.Request) -> web.Response:
        async with self._changed:
            self.returns.append(dict(request.query))
            self._changed.notify_all()
        # The icon link spares a /favicon.ico request, whose 404 Chromium would log as a console error.
        return web.Response(text="<!doctype html><title>Shop</title><link rel=\"icon\" href=\"data:,\"><h1>Back at the shop</h1>", content_type="text/html")

    async def event(self, type_: str, timeout: float = 15.0) -> Delivery:
        """The first delivered event of this type, waiting for it if needed."""

        def found() -> Delivery | None:
            return next((d for d in self.deliveries if d.event.get("type") == type_), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
        return found()  # type: ignore[return-value]
