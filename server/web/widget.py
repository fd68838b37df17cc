"""The widget merchants embed: realname.js at a versioned path, loaded by the merchant's pages from here
(no CDN). The hosted pages' side of it is static/embed.js and the framing policy in framing.py."""

from __future__ import annotations

from functools import cache

from aiohttp import web

from .assets import static_dir

routes = web.RouteTableDef()
SDK_FILE = "realname-sdk-v1.js"


@cache
def _sdk() -> bytes:
    return (static_dir() / SDK_FILE).read_bytes()


@routes.get("/sdk/v1/realname.js")
async def sdk(request: web.Request) -> web.Response:
    # Loaded by the merchant's page, another origin: the resource policy must let it (no credentials needed).
    headers = {"Cross-Origin-Resource-Policy": "cross-origin", "Cache-Control": "public, max-age=300"}
    return web.Response(body=_sdk(), content_type="text/javascript", charset="utf-8", headers=headers)
