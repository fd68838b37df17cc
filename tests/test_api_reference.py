"""The API reference at /docs/api (issue 29): rendered from openapi.json by our template, every operation of
the document on the page, every schema and error code, an example per call, self-contained, strict headers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from server.api.docs import inline, rich
from server.api.reference import build
from server.api.views import OPENAPI

DOC = json.loads(OPENAPI.read_text(encoding="utf-8"))


class Page(HTMLParser):
    """What the rendered page holds: operations (data-method, data-path), ids, and every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.operations: set[tuple[str, str]] = set()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.scripts = 0
        self.examples = 0
        self.inline_styles = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-method" in attrs:
            self.operations.add((attrs["data-path"], attrs["data-method"]))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append(attrs[name])
        self.scripts += tag == "script"
        self.inline_styles += tag == "style" or "style" in attrs
        self.examples += tag == "pre" and "example" in (attrs.get("class") or "")


async def fetch(http, server):
    async with http.get(server.make_url("/docs/api")) as response:
        assert response.status == 200
        return response.headers, await response.text()


async def test_every_operation_of_openapi_json_is_on_the_page(http, server):
    headers, html = await fetch(http, server)
    page = Page()
    page.feed(html)
    documented = {(path, method.upper()) for path, item in DOC["paths"].items() for method in item if method != "parameters"}
    assert len(documented) >= 7
    assert page.operations == documented
    assert page.examples >= len(documented)  # an example per call (and the answer's shape)
    for name in DOC["components"]["schemas"]:
        assert f"schema-{name}" in page.ids, name
    assert "webhook-sessionFinished" in page.ids
    for ref in (link.removeprefix("#") for link in page.links if link.startswith("#")):
        assert ref in page.ids, ref  # no dead anchor


async def test_every_error_code_the_document_names_is_listed(http, server):
    _, html = await fetch(http, server)
    page = Page()
    page.feed(html)
    text = json.dumps(DOC)
    codes = set(re.findall(r"Possible `code` values: ((?:`[a-z_]+`(?:, )?)+)", text.replace("\\n", "\n")))
    named = {code for group in codes for code in re.findall(r"`([a-z_]+)`", group)}
    assert {"sandbox_only", "wrong_state", "invalid_fields", "unauthorized", "rate_limited"} <= named
    for code in named | {"bad_request", "method_not_allowed"}:
        assert f"error-{code}" in page.ids, code


async def test_self_contained_and_strict_headers(http, server):
    headers, html = await fetch(http, server)
    page = Page()
    page.feed(html)
    assert page.scripts == 0 and page.inline_styles == 0
    external = [link for link in page.links if re.match(r"^(https?:)?//", link)]
    assert external == []
    assert {link for link in page.links if link.startswith("/static/")} == {"/static/realname.css", "/static/console.css", "/static/reference.css"}
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"].startswith("text/html")
    async with http.get(server.make_url("/static/reference.css")) as response:
        assert response.status == 200


def test_descriptions_are_escaped_before_their_marks_become_tags():
    assert inline("a `b<c>` **d** [e](#f) <script>") == 'a <code>b&lt;c&gt;</code> <strong>d</strong> <a href="#f">e</a> &lt;script&gt;'
    assert inline("[x](javascript:alert(1))") == "[x](javascript:alert(1))"
    assert rich("para\n\n    pre <b>\n\n1. one\n2. two") == "<p>para</p>\n<pre>pre &lt;b&gt;</pre>\n<ol><li>one</li><li>two</li></ol>"


def test_examples_are_valid_json_with_required_fields():
    reference = build(DOC)
    create = next(op for op in reference.operations if op.operation_id == "createSession")
    body = json.loads(create.example_request.split("-d '", 1)[1].rsplit("'", 1)[0])
    assert "reference_id" in body
    answer = json.loads(create.example_response)
    assert set(DOC["components"]["schemas"]["Session"]["required"]) | {"url"} <= set(answer)
