"""`/docs/api`: the API reference, rendered from openapi.json by our own template (no script, no CDN).
The document is read once per process: it ships with the code and changes only with it."""

from __future__ import annotations

import json
import re
from functools import cache
from html import escape

from aiohttp import web

from ..http.services import SERVICES
from .reference import Reference, build
from .views import OPENAPI

routes = web.RouteTableDef()
INLINE = (
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\[([^\]]+)\]\((#[\w-]+|https?://[^)\s]+)\)"), r'<a href="\2">\1</a>'),
)
LIST_ITEM = re.compile(r"^(?:\d+\.|-) ")


@cache
def reference() -> Reference:
    return build(json.loads(OPENAPI.read_text(encoding="utf-8")))


def inline(text: str) -> str:
    """HTML of one line of description: escaped first, then the few marks turned into tags."""
    html = escape(text)
    for pattern, replacement in INLINE:
        html = pattern.sub(replacement, html)
    return html


def rich(text: str) -> str:
    """The little Markdown openapi.json's descriptions use: paragraphs, `code`, **bold**, links, indented
    blocks, numbered and dashed lists, and `## ` headings."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.split("\n")
        if all(line.startswith("    ") for line in lines):
            blocks.append(f"<pre>{escape(chr(10).join(line[4:] for line in lines))}</pre>")
        elif block.startswith("## "):
            blocks.append(f"<h3>{inline(block[3:])}</h3>")
        elif all(LIST_ITEM.match(line) or line.startswith("   ") for line in lines) and LIST_ITEM.match(lines[0]):
            items: list[str] = []
            for line in lines:
                if LIST_ITEM.match(line):
                    items.append(LIST_ITEM.sub("", line))
                else:
                    items[-1] += " " + line.strip()
            tag = "ol" if lines[0][0].isdigit() else "ul"
            blocks.append(f"<{tag}>" + "".join(f"<li>{inline(item)}</li>" for item in items) + f"</{tag}>")
        else:
            blocks.append(f"<p>{inline(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(blocks)


@routes.get("/docs/api")
async def api_reference(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    html = services.templates.get_template("api_reference.html").render(
        ref=reference(), rich=rich, inline=inline, schema_names={s.name for s in reference().schemas}
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")
