"""A battery of bad inputs against the real app: every case must get a clear 4xx (or a harmless success),
never a 5xx, never a Python traceback, and API errors always as application/problem+json.

The number of cases is CASE_COUNT (printed by test_case_count)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import zlib
from functools import cache

import aiohttp
import pytest
from PIL import Image

from realname_tools.client import HostedFlowClient
from server.ratelimit import RateLimiter
from tests.support.api import auth
from tests.support.media import photo

ID_PHOTO = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
PROBLEM = "application/problem+json"
TRACEBACK_MARKERS = (b"Traceback", b'File "', b"most recent call last")


@pytest.fixture(autouse=True)
def roomy_limits(services):
    """Hundreds of wrong keys from 127.0.0.1 must be answered 401, not 429 from the guessing limiter."""
    services.bad_key_limiter = RateLimiter(per_minute=100_000, burst=100_000)


# -- checking an answer -----------------------------------------------------------------------------


def check(status: int, headers, body: bytes, api: bool, allowed: tuple[int, ...] | None = None) -> None:
    assert status < 500, body[:500]
    for marker in TRACEBACK_MARKERS:
        assert marker not in body, body[:2000]
    if allowed is not None:
        assert status in allowed, (status, body[:500])
    content_type = headers.get("Content-Type", "")
    if api and status >= 400:
        assert content_type.startswith(PROBLEM), (status, content_type, body[:300])
        problem = json.loads(body)
        assert problem["status"] == status and problem["code"] and problem["type"].startswith("urn:realname:problem:")


async def send(http, server, method, path, api=True, allowed=None, **kwargs):
    url = path if path.startswith("http") else server.make_url(path)
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        body = await response.read()
        check(response.status, response.headers, body, api, allowed)
        return response.status, response.headers, body


async def raw_http(server, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """An exact request on a plain socket: for paths and header bytes an HTTP client would clean up."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head + b"\r\nHost: test\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()
    top, _, payload = data.partition(b"\r\n\r\n")
    lines = top.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().title()] = value.strip()
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        payload = _dechunk(payload)
    return status, headers, payload


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + rest[:size], rest[size + 2 :]
    return out


async def new_session(http, server, key, **body):
    body.setdefault("reference_id", "bad-input")
    async with http.post(server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def browser_at(http, server, key, step: str) -> tuple[dict, HostedFlowClient, str]:
    """A customer's browser that opened a link and went as far as `step`; with the CSRF token it was shown."""
    created = await new_session(http, server, key, fixed_challenges=["blink"])
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    if step == "opened":
        return created, customer, await customer._csrf("/verify/consent")
    assert await customer.consent() == 303
    if step == "consented":
        return created, customer, await customer._csrf("/verify/document")
    status, page = await customer.upload_document(photo(ID_PHOTO).read_bytes())
    assert status == 303, page
    async with http.get(server.make_url("/verify/live")) as response:
        page = await response.text()
    config = json.loads(page.split('id="live-config">', 1)[1].split("</script>", 1)[0])
    return created, customer, config["csrf"]


# -- 1. JSON bodies for POST /api/v1/sessions -------------------------------------------------------

DEEP = 100_000


def nested(depth: int) -> bytes:
    return b'{"reference_id": "x", "expected": ' + b"[" * depth + b"]" * depth + b"}"


# (id, raw body, allowed statuses)
JSON_BODIES = [
    ("empty", b"", (400,)),
    ("whitespace", b"   \n\t ", (400,)),
    ("open_brace", b"{", (400,)),
    ("trailing_comma", b'{"reference_id": "x",}', (400,)),
    ("single_quotes", b"{'reference_id': 'x'}", (400,)),
    ("comment", b'{"reference_id": "x" /* hi */}', (400,)),
    ("two_documents", b'{"reference_id": "x"}{"reference_id": "y"}', (400,)),
    ("unquoted_key", b'{reference_id: "x"}', (400,)),
    ("null_document", b"null", (400,)),
    ("true_document", b"true", (400,)),
    ("number_document", b"42", (400,)),
    ("string_document", b'"reference_id"', (400,)),
    ("array_of_object", b'[{"reference_id": "x"}]', (400,)),
    ("empty_array", b"[]", (400,)),
    ("empty_object", b"{}", (422,)),
    ("bom_prefixed", b'\xef\xbb\xbf{"reference_id": "x"}', (201, 400)),
    ("utf16_body", '{"reference_id": "x"}'.encode("utf-16"), (400,)),
    ("latin1_body", '{"reference_id": "caf\xe9"}'.encode("latin-1"), (400,)),
    ("invalid_utf8", b'{"reference_id": "\xff\xfe"}', (400,)),
    ("encoded_surrogate_bytes", b'{"reference_id": "\xed\xa0\x80"}', (400,)),
    ("nul_byte_raw", b'{"reference_id": "a\x00b"}', (400,)),
    ("nul_escaped", b'{"reference_id": "a\\u0000b"}', (422,)),
    ("deeply_nested_array", nested(DEEP), (400, 413)),
    ("nested_within_limit", nested(5_000), (400, 422)),
    ("deeply_nested_objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, (400, 422)),
    ("duplicate_keys", b'{"reference_id": "first", "reference_id": "second"}', (201,)),
    ("duplicate_keys_bad_last", b'{"reference_id": "ok", "reference_id": 5}', (422,)),
    ("unknown_fields_only", b'{"a": 1, "b": 2}', (422,)),
    ("many_unknown_fields", json.dumps({f"k{i}": i for i in range(3000)}).encode(), (422,)),
    ("long_unknown_key", json.dumps({"k" * 50_000: 1}).encode(), (422,)),
    ("surrogate_key", b'{"reference_id": "x", "\\ud800": 1}', (422,)),
    ("nul_key", b'{"reference_id": "x", "\\u0000": 1}', (422,)),
    ("proto_key", b'{"reference_id": "x", "__proto__": {"admin": true}}', (422,)),
    ("huge_70k", json.dumps({"reference_id": "x", "expected": {"name": "y" * 70_000}}).encode(), (413,)),
    ("huge_1mb", b'{"reference_id": "' + b"x" * 1_000_000 + b'"}', (413,)),
    ("huge_whitespace", b" " * 200_000 + b'{"reference_id": "x"}', (413,)),
    ("exactly_limit", b'{"reference_id": "x"}' + b" " * (64 * 1024 - 21), (201,)),
    ("number_1e309", b'{"reference_id": "x", "ttl_s": 1e309}', (422,)),
    ("number_neg_1e309", b'{"reference_id": "x", "ttl_s": -1e309}', (422,)),
    ("number_nan", b'{"reference_id": "x", "ttl_s": NaN}', (400, 422)),
    ("number_infinity", b'{"reference_id": "x", "challenges": Infinity}', (400, 422)),
    ("number_5000_digits", b'{"reference_id": "x", "ttl_s": ' + b"9" * 5000 + b"}", (400, 422)),
    ("number_neg_5000_digits", b'{"reference_id": "x", "challenges": -' + b"1" * 5000 + b"}", (400, 422)),
    ("number_float_ttl", b'{"reference_id": "x", "ttl_s": 600.0}', (422,)),
    ("number_exponent_ttl", b'{"reference_id": "x", "ttl_s": 6e2}', (422,)),
    ("number_huge_exponent", b'{"reference_id": "x", "challenges": 1e99999999}', (422,)),
    ("number_tiny", b'{"reference_id": "x", "challenges": 1e-400}', (422,)),
    ("number_negative_zero", b'{"reference_id": "x", "challenges": -0}', (422,)),
    ("number_leading_zero", b'{"reference_id": "x", "challenges": 01}', (400,)),
    ("number_hex", b'{"reference_id": "x", "challenges": 0x3}', (400,)),
    ("bool_for_int_true", b'{"reference_id": "x", "challenges": true}', (422,)),
    ("bool_for_int_false", b'{"reference_id": "x", "ttl_s": false}', (422,)),
    ("array_for_object_value", b'{"reference_id": ["x"]}', (422,)),
    ("object_for_string", b'{"reference_id": {"id": "x"}}', (422,)),
]

# -- 2. wrong types and values for each field --------------------------------------------------------

WRONG_VALUES = [1, 1.5, True, [], {}, ["a"], {"a": 1}, "", " padded ", "a" * 5000]
FIELD_CASES: list[tuple[str, str, object, tuple[int, ...]]] = []
for _field in ("reference_id", "callback_url", "redirect_url", "locale", "challenges", "fixed_challenges", "ttl_s"):
    for _index, _value in enumerate(WRONG_VALUES):
        valid = _field == "challenges" and type(_value) is int and _value == 1
        FIELD_CASES.append((f"{_field}-{_index}", _field, _value, (201,) if valid else (422,)))
FIELD_CASES += [
    ("reference_id-null", "reference_id", None, (422,)),
    ("merchant_name-null", "merchant_name", None, (422,)),  # refused: the pages show the account's display name
    ("merchant_name-string", "merchant_name", "Shop", (422,)),
    ("locale-xx", "locale", "xx-YY", (422,)),
    ("locale-zh_tw", "locale", "zh_TW", (201,)),
    ("challenges-zero", "challenges", 0, (422,)),
    ("challenges-6", "challenges", 6, (422,)),
    ("challenges-huge", "challenges", 2**70, (422,)),
    ("challenges-negative", "challenges", -3, (422,)),
    ("ttl_s-59", "ttl_s", 59, (422,)),
    ("ttl_s-86401", "ttl_s", 86401, (422,)),
    ("fixed_challenges-six", "fixed_challenges", ["blink"] * 6, (422,)),
    ("fixed_challenges-unknown", "fixed_challenges", ["blink", "dance"], (422,)),
    ("fixed_challenges-empty_names", "fixed_challenges", ["", " "], (422,)),
    ("fixed_challenges-nested", "fixed_challenges", [["blink"]], (422,)),
    ("fixed_challenges-nulls", "fixed_challenges", [None], (422,)),
    ("fixed_challenges-string", "fixed_challenges", "blink,turn_left", (422,)),
    ("fixed_challenges-unicode", "fixed_challenges", ["blınk"], (422,)),
    ("callback_url-javascript", "callback_url", "javascript:alert(1)", (422,)),
    ("callback_url-file", "callback_url", "file:///etc/passwd", (422,)),
    ("callback_url-no_host", "callback_url", "http:///path", (422,)),
    ("callback_url-bad_ipv6", "callback_url", "http://[::1/hook", (422,)),
    ("callback_url-bad_port", "callback_url", "http://127.0.0.1:99999/hook", (422,)),
    ("callback_url-port_text", "callback_url", "http://example.com:http/hook", (422,)),
    ("callback_url-long_label", "callback_url", "http://" + "a" * 70 + ".example.com/", (201, 422)),
    ("callback_url-unicode_host", "callback_url", "https://bücher.example/hook", (201, 422)),
    ("callback_url-spaces", "callback_url", "http://exa mple.com/", (201, 422)),
    ("callback_url-too_long", "callback_url", "https://example.com/" + "a" * 2100, (422,)),
    ("callback_url-crlf", "callback_url", "https://example.com/\r\nX-Injected: 1", (422,)),
    ("redirect_url-javascript", "redirect_url", "javascript:alert(document.cookie)", (422,)),
    ("redirect_url-data", "redirect_url", "data:text/html,<script>alert(1)</script>", (422,)),
    ("redirect_url-bad_ipv6", "redirect_url", "https://[fe80::1%25eth0/", (422,)),
    ("redirect_url-protocol_relative", "redirect_url", "//evil.example/", (422,)),
]

# -- 3. unicode edge cases in reference_id ------------------------------------------------------------

REFERENCE_IDS = [
    ("rtl_mark", "\u200fabc\u200f", (422,)),
    ("rtl_override", "abc\u202edcba", (422,)),
    ("zero_width_space", "a\u200bb", (422,)),
    ("zero_width_only", "\u200b", (422,)),
    ("bom_inside", "a\ufeffb", (422,)),
    ("emoji", "customer-\U0001f600", (201,)),
    ("emoji_zwj_family", "\U0001f468\u200d\U0001f469\u200d\U0001f467", (422,)),  # a zero-width joiner is refused, as every invisible character is (issue 25 item 10)
    ("cjk", "客户-四十二", (201,)),
    ("combining_marks", "e" + "\u0301" * 100, (201, 422)),
    ("lone_high_surrogate", "\ud800", (422,)),
    ("lone_low_surrogate", "x\udfff", (422,)),
    ("reversed_surrogates", "\udc00\ud800", (422,)),
    ("control_bell", "a\x07b", (422,)),
    ("control_escape", "\x1b[31mred", (422,)),
    ("newline", "a\nb", (422,)),
    ("carriage_return", "a\rb", (422,)),
    ("tab", "a\tb", (422,)),
    ("del", "a\x7fb", (422,)),
    ("c1_control", "a\x85b", (422,)),
    ("line_separator", "a\u2028b", (422,)),
    ("paragraph_separator", "a\u2029b", (422,)),
    ("private_use", "a\ue000b", (422,)),
    ("noncharacter", "a\uffffb", (201, 422)),
    ("unassigned", "a\U000e0fffb", (422,)),
    ("nbsp_padded", "\u00a0x\u00a0", (422,)),
    ("only_spaces", "   ", (422,)),
    ("chars_128", "x" * 128, (201,)),
    ("chars_129", "x" * 129, (422,)),
    ("chars_10k", "x" * 10_000, (422,)),
    ("astral_128", "\U0001f600" * 128, (201,)),
    ("html", "<script>alert(1)</script>", (201,)),
    ("sql", "'; DROP TABLE sessions; --", (201,)),
    ("format_string", "{0.__class__}%s%n", (201,)),
    ("path", "../../etc/passwd", (201,)),
]

# -- 4. content types ---------------------------------------------------------------------------------

GOOD_BODY = b'{"reference_id": "content-type"}'
CONTENT_TYPES = [
    ("missing", None, (415,)),
    ("empty", "", (415,)),
    ("text_plain", "text/plain", (415,)),
    ("form", "application/x-www-form-urlencoded", (415,)),
    ("multipart", "multipart/form-data; boundary=abc", (415,)),
    ("octet_stream", "application/octet-stream", (415,)),
    ("json_suffix_type", "application/merge-patch+json", (415,)),
    ("jsonx", "application/jsonx", (415,)),
    ("text_json", "text/json", (415,)),
    ("uppercase_json", "APPLICATION/JSON", (201,)),
    ("json_charset", "application/json; charset=utf-8", (201,)),
    ("json_bogus_charset", "application/json; charset=no-such-charset", (201, 400, 415)),
    ("json_garbage_params", "application/json;;;=;boundary", (201, 400, 415)),
    ("image_jpeg", "image/jpeg", (415,)),
    ("non_ascii_type", "application/jsön", (415,)),
]

# -- 5. Authorization headers (exact bytes) ------------------------------------------------------------

AUTH_HEADERS = [
    ("none", None),
    ("empty", b""),
    ("scheme_only", b"Bearer"),
    ("scheme_space", b"Bearer "),
    ("basic", b"Basic dXNlcjpwYXNz"),
    ("wrong_key", b"Bearer rn_live_not_a_key"),
    ("very_long", b"Bearer " + b"k" * 7000),
    ("latin1_bytes", b"Bearer \xe9\xe8\xff"),
    ("utf8_key", "Bearer ключ".encode()),
    ("invalid_utf8", b"Bearer \xc3\x28\xa0\xa1"),
    ("tabs", b"Bearer\t\trn_test_x"),
    ("double_scheme", b"Bearer Bearer rn_test_x"),
    ("prefix_only", b"Bearer rn_test_"),
]

# -- 6. paths ----------------------------------------------------------------------------------------

PATHS = [
    ("dotdot", b"/api/v1/sessions/../../etc/passwd"),
    ("dotdot_encoded", b"/api/v1/sessions/%2e%2e/%2e%2e/etc/passwd"),
    ("dotdot_encoded_slash", b"/api/v1/sessions/..%2f..%2fetc%2fpasswd"),
    ("double_encoded", b"/api/v1/sessions/%252e%252e%252fetc"),
    ("backslash", b"/api/v1/sessions/..\\..\\etc\\passwd"),
    ("static_traversal", b"/static/../server/config.py"),
    ("static_encoded_traversal", b"/static/%2e%2e/server/config.py"),
    ("static_encoded_slash", b"/static/..%2f..%2fpyproject.toml"),
    ("long_id", b"/api/v1/sessions/" + b"a" * 5000),
    ("very_long_path", b"/api/v1/sessions/" + b"a" * 20_000),
    ("unicode_id", "/api/v1/sessions/ses_\u00e9\u4e2d\U0001f600".encode()),
    ("percent_unicode_id", b"/api/v1/sessions/ses_%C3%A9%E4%B8%AD"),
    ("null_byte_encoded", b"/api/v1/sessions/ses_%00abc"),
    ("null_byte_raw", b"/api/v1/sessions/ses_\x00abc"),
    ("encoded_surrogate", b"/api/v1/sessions/%ED%A0%80"),
    ("invalid_percent_utf8", b"/api/v1/sessions/%FF%FE"),
    ("bad_percent", b"/api/v1/sessions/%zz%"),
    ("raw_high_bytes", b"/api/v1/sessions/\xff\xfe"),
    ("double_slash", b"//api//v1//sessions"),
    ("trailing_slash", b"/api/v1/sessions/"),
    ("semicolon", b"/api/v1/sessions;jsessionid=1/ses_x"),
    ("query_junk", b"/api/v1/sessions/ses_x?%%%&&&==&a[]=1&a[x]=2"),
    ("fragment", b"/api/v1/sessions/ses_x#frag"),
    ("absolute_uri", b"http://evil.example/api/v1/sessions/ses_x"),
    ("asterisk", b"*"),
    ("photo_of_traversal", b"/api/v1/sessions/..%2F..%2Fetc/reference-photo"),
    ("verify_unicode", "/verify/\u00e9".encode()),
    ("v_slash_only", b"/v/"),
    ("v_raw_high_bytes", b"/v/\xff\xfe\xed\xa0\x80"),
    ("v_null_raw", b"/v/abc\x00def"),
    ("verify_result_junk_query", b"/verify/result?lang=\xff&lang=%ED%A0%80"),
]

# -- 7. link tokens ----------------------------------------------------------------------------------

LINKS = [
    ("random", "/v/" + "A1b2C3d4" * 5, (404,)),
    ("one_char", "/v/x", (404,)),
    ("len_199", "/v/" + "a" * 199, (404,)),
    ("len_200", "/v/" + "a" * 200, (404,)),
    ("len_4000", "/v/" + "a" * 4000, (404,)),
    ("null", "/v/%00", (404,)),
    ("unicode", "/v/t\u00f6ken-\U0001f600", (404,)),
    ("encoded_surrogate", "/v/%ED%A0%80", (404,)),
    ("invalid_utf8", "/v/%FF%FE", (404,)),
    ("quote_script", "/v/%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", (404,)),
    ("dot", "/v/.", (404,)),
]

# -- 7b. cookies and headers on the hosted pages (exact bytes) ------------------------------------------

COOKIES = [
    ("latin1_bytes", b"rn_browser=\xff\xfe\xe9"),
    ("invalid_utf8", b"rn_browser=\xc3\x28\xed\xa0\x80"),
    ("percent_surrogate", b"rn_browser=%ED%A0%80"),
    ("quoted", b'rn_browser="a\\"b;c"'),
    ("very_long", b"rn_browser=" + b"k" * 6000),
    ("duplicate", b"rn_browser=; rn_browser=a; rn_browser=b"),
    ("garbage", b";;;===;rn_browser"),
    ("lang_bytes", b"rn_lang=\xff\xfe; rn_browser=x"),
]
COOKIE_TARGETS = [
    ("get_verify", b"GET /verify"),
    ("post_consent", b"POST /verify/consent"),
    ("get_live", b"GET /verify/live"),
    ("post_offer", b"POST /verify/live/offer"),
    ("post_bye", b"POST /verify/live/bye"),
    ("get_result", b"GET /verify/result?lang=%FF%FE"),
]
COOKIE_CASES = [(f"{c}-{t}", cookie, target) for c, cookie in COOKIES for t, target in COOKIE_TARGETS]

PAGE_HEADERS = [
    ("accept_language_junk", b"Accept-Language: ;;q=abc,zh;q=nan,en;q=1e999,*;q=-1"),
    ("accept_language_long", b"Accept-Language: " + b"en-GB;q=0.5," * 600),
    ("accept_language_bytes", b"Accept-Language: \xff\xfe;q=1"),
    ("forwarded_junk", b"X-Forwarded-For: \xff, ::1, not-an-ip"),
    ("lang_query_junk", b"X-Nothing: 1"),
]

# -- 8. hosted-page forms -----------------------------------------------------------------------------

# (id, step reached by the browser, path, how the body is built, allowed statuses)
FORMS = [
    ("consent_no_cookie", None, "/verify/consent", "valid_csrf", (403,)),
    ("consent_no_csrf", "opened", "/verify/consent", "no_csrf", (403,)),
    ("consent_wrong_csrf", "opened", "/verify/consent", "wrong_csrf", (403,)),
    ("consent_non_ascii_csrf", "opened", "/verify/consent", "non_ascii_csrf", (403,)),
    ("consent_csrf_as_file", "opened", "/verify/consent", "csrf_as_file", (403,)),
    ("consent_two_csrf", "opened", "/verify/consent", "two_csrf", (303, 403)),
    ("consent_no_agree", "opened", "/verify/consent", "valid_csrf_no_agree", (422,)),
    ("consent_agree_garbage", "opened", "/verify/consent", "valid_csrf_agree_garbage", (422,)),
    ("consent_invalid_utf8", "opened", "/verify/consent", "invalid_utf8", (400, 403)),
    ("consent_bad_percent", "opened", "/verify/consent", "bad_percent", (400, 403)),
    ("consent_unknown_charset", "opened", "/verify/consent", "unknown_charset", (400, 403, 415)),
    ("consent_multipart_no_boundary", "opened", "/verify/consent", "multipart_no_boundary", (400, 403)),
    ("consent_multipart_broken", "opened", "/verify/consent", "multipart_broken", (400, 403)),
    ("consent_multipart_no_name", "opened", "/verify/consent", "multipart_no_name", (400, 403)),
    ("consent_json_body", "opened", "/verify/consent", "json_body", (403,)),
    ("consent_huge_form", "opened", "/verify/consent", "huge_form", (400, 403, 413)),
    ("consent_many_fields", "opened", "/verify/consent", "many_fields", (400, 403, 413)),
    ("document_no_cookie", None, "/verify/document", "valid_csrf", (403,)),
    ("document_no_csrf", "consented", "/verify/document", "no_csrf", (403,)),
    ("document_wrong_csrf", "consented", "/verify/document", "wrong_csrf", (403,)),
    ("document_non_ascii_csrf", "consented", "/verify/document", "non_ascii_csrf", (403,)),
    ("document_csrf_as_file", "consented", "/verify/document", "csrf_as_file", (403,)),
    ("document_no_file", "consented", "/verify/document", "valid_csrf", (400,)),
    ("document_file_as_text", "consented", "/verify/document", "photo_as_text", (400,)),
    ("document_multipart_no_boundary", "consented", "/verify/document", "multipart_no_boundary", (400, 403)),
    ("document_multipart_broken", "consented", "/verify/document", "multipart_broken", (400, 403)),
    ("document_unknown_charset", "consented", "/verify/document", "unknown_charset", (400, 403, 415)),
    ("document_too_big", "consented", "/verify/document", "too_big_upload", (413,)),
    ("document_before_consent", "opened", "/verify/document", "photo_upload", (303,)),
    ("retry_no_cookie", None, "/verify/retry", "valid_csrf", (403,)),
    ("retry_no_csrf", "uploaded", "/verify/retry", "no_csrf", (403,)),
    ("retry_wrong_csrf", "uploaded", "/verify/retry", "wrong_csrf", (403,)),
    ("retry_non_ascii_csrf", "uploaded", "/verify/retry", "non_ascii_csrf", (403,)),
    ("bye_no_cookie", None, "/verify/live/bye", "no_csrf", (204,)),
    ("bye_garbage", "uploaded", "/verify/live/bye", "multipart_broken", (204, 400)),
    ("bye_non_ascii_csrf", "uploaded", "/verify/live/bye", "non_ascii_csrf", (204,)),
]

# -- 9. SDP offers -------------------------------------------------------------------------------------

# (id, browser step, CSRF header kind, body (bytes: sent as is), allowed statuses)
OFFERS = [
    ("no_cookie", None, "valid", {"sdp": "v=0", "type": "offer"}, (403,)),
    ("no_csrf", "uploaded", "none", {"sdp": "v=0", "type": "offer"}, (403,)),
    ("wrong_csrf", "uploaded", "wrong", {"sdp": "v=0", "type": "offer"}, (403,)),
    ("non_ascii_csrf", "uploaded", "non_ascii", {"sdp": "v=0", "type": "offer"}, (403,)),
    ("not_json", "uploaded", "valid", b"sdp=garbage", (400,)),
    ("json_array", "uploaded", "valid", b'["offer"]', (400,)),
    ("json_string", "uploaded", "valid", b'"offer"', (400,)),
    ("json_number", "uploaded", "valid", b"1e309", (400,)),
    ("invalid_utf8", "uploaded", "valid", b'{"sdp": "\xff", "type": "offer"}', (400,)),
    ("deeply_nested", "uploaded", "valid", b'{"sdp": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", (400,)),
    ("missing_sdp", "uploaded", "valid", {"type": "offer"}, (400,)),
    ("sdp_number", "uploaded", "valid", {"sdp": 5, "type": "offer"}, (400,)),
    ("type_answer", "uploaded", "valid", {"sdp": "v=0", "type": "answer"}, (400,)),
    ("sdp_too_long", "uploaded", "valid", {"sdp": "a" * 100_001, "type": "offer"}, (400,)),
    ("sdp_empty", "uploaded", "valid", {"sdp": "", "type": "offer"}, (400,)),
    ("sdp_garbage", "uploaded", "valid", {"sdp": "garbage", "type": "offer"}, (400,)),
    ("sdp_v0_only", "uploaded", "valid", {"sdp": "v=0\r\n", "type": "offer"}, (400,)),
    ("sdp_binaryish", "uploaded", "valid", {"sdp": "".join(chr(i) for i in range(1, 2000)), "type": "offer"}, (400,)),
    (
        "sdp_video_without_ice",
        "uploaded",
        "valid",
        {"sdp": "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n", "type": "offer"},
        (400,),
    ),
    (
        "sdp_bad_numbers",
        "uploaded",
        "valid",
        {"sdp": "v=0\r\no=- x y IN IP4 a\r\ns=-\r\nt=a b\r\nm=video notaport RTP/AVP x\r\na=rtpmap:x\r\n", "type": "offer"},
        (400,),
    ),
    ("camera_garbage", "uploaded", "valid", {"sdp": "garbage", "type": "offer", "camera_label": {"a": [1]}, "camera": [1, 2]}, (400,)),
    ("before_upload", "consented", "valid", {"sdp": "v=0", "type": "offer"}, (400, 409)),
]

# -- 10. uploads ----------------------------------------------------------------------------------------


@cache
def id_jpeg() -> bytes:
    return photo(ID_PHOTO).read_bytes()


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@cache
def png_bomb(side: int) -> bytes:
    """A 1-bit `side` x `side` PNG of zeros: a few kB on the wire, gigapixels when decoded."""
    row = b"\0" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def png_with_header(width: int, height: int, bit_depth=8, colour=2) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header claims another size."""
    data = bytearray(encode(Image.new("RGB", (64, 64), (120, 90, 60)), "JPEG"))
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at != -1:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no SOF marker")


def with_bad_exif() -> bytes:
    """EXIF with an orientation that does not exist and an IFD pointer far past its end."""
    entries = struct.pack(">HHIHH", 0x0112, 3, 1, 9, 0) + struct.pack(">HHII", 0x8769, 4, 1, 0x7FFFFFFF)
    exif = b"Exif\0\0MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 2) + entries + struct.pack(">I", 0xFFFF)
    return encode(Image.new("RGB", (200, 200), (200, 180, 160)), "JPEG", exif=exif)


def png_16bit_rgb(side: int = 100) -> bytes:
    header = struct.pack(">IIBBBBB", side, side, 16, 2, 0, 0, 0)
    rows = (b"\0" + b"\x80\x00" * 3 * side) * side
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")


def corrupt_crc_png() -> bytes:
    data = bytearray(encode(Image.new("RGB", (100, 100), (10, 200, 10)), "PNG"))
    data[29] ^= 0xFF  # the IHDR CRC
    return bytes(data)


def huge_text_png() -> bytes:
    base = encode(Image.new("L", (100, 100), 128), "PNG")
    text = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"a" * 50_000_000))
    return base[:33] + text + base[33:]


# (id, bytes factory, declared content type, allowed statuses)
UPLOADS = [
    ("empty", lambda: b"", "image/jpeg", (400,)),
    ("one_byte", lambda: b"\xff", "image/jpeg", (415,)),
    ("text_as_jpeg", lambda: b"hello, I am a photo" * 10, "image/jpeg", (415,)),
    ("html_as_png", lambda: b"<html><script>alert(1)</script></html>", "image/png", (415,)),
    ("svg_as_png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/png", (415,)),
    ("pdf_as_jpeg", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "image/jpeg", (415,)),
    ("zip_as_png", lambda: b"PK\x03\x04" + os.urandom(500), "image/png", (415,)),
    ("gif", lambda: encode(Image.new("RGB", (100, 100)), "GIF"), "image/png", (415,)),
    ("bmp", lambda: encode(Image.new("RGB", (100, 100)), "BMP"), "image/jpeg", (415,)),
    ("tiff", lambda: encode(Image.new("RGB", (100, 100)), "TIFF"), "image/webp", (415,)),
    ("png_says_jpeg", lambda: encode(Image.new("RGB", (100, 100)), "PNG"), "image/jpeg", (415,)),
    ("jpeg_says_webp", lambda: id_jpeg(), "image/webp", (415,)),
    ("webp_says_png", lambda: encode(Image.new("RGB", (100, 100)), "WEBP"), "image/png", (415,)),
    ("jpeg_magic_only", lambda: b"\xff\xd8\xff", "image/jpeg", (422,)),
    ("png_magic_only", lambda: b"\x89PNG\r\n\x1a\n", "image/png", (422,)),
    ("webp_magic_only", lambda: b"RIFF\0\0\0\0WEBPVP8 ", "image/webp", (422,)),
    ("png_magic_random", lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "image/png", (422,)),
    ("jpeg_magic_html", lambda: b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>", "image/jpeg", (422,)),
    ("truncated_jpeg_half", lambda: id_jpeg()[: len(id_jpeg()) // 2], "image/jpeg", (422,)),
    ("truncated_jpeg_header", lambda: id_jpeg()[:600], "image/jpeg", (422,)),
    ("truncated_png", lambda: encode(Image.new("RGB", (300, 300), (1, 2, 3)), "PNG")[:-40], "image/png", (422,)),
    ("png_bad_crc", corrupt_crc_png, "image/png", (422,)),
    ("png_zero_width", lambda: png_with_header(0, 100), "image/png", (422,)),
    ("png_bad_depth", lambda: png_with_header(100, 100, bit_depth=7), "image/png", (422,)),
    ("png_huge_text_chunk", huge_text_png, "image/png", (413, 422)),
    ("bomb_png_20000", lambda: png_bomb(20_000), "image/png", (413,)),
    ("bomb_png_10000", lambda: png_bomb(10_000), "image/png", (413,)),
    ("bomb_png_7000", lambda: png_bomb(7_000), "image/png", (413,)),
    ("bomb_png_header_only", lambda: png_with_header(60_000, 60_000), "image/png", (413,)),
    ("bomb_jpeg_header", lambda: jpeg_claiming(65_000, 65_000), "image/jpeg", (413,)),
    ("tiny_1x1", lambda: encode(Image.new("RGB", (1, 1)), "PNG"), "image/png", (422,)),
    ("thin_strip", lambda: encode(Image.new("RGB", (48, 4000), (90, 90, 90)), "PNG"), "image/png", (422,)),
    ("mode_1bit", lambda: encode(Image.new("1", (200, 200)), "PNG"), "image/png", (422,)),
    ("mode_16bit_grey", lambda: encode(Image.new("I;16", (200, 200), 3000), "PNG"), "image/png", (422,)),
    ("mode_16bit_rgb", png_16bit_rgb, "image/png", (422,)),
    ("mode_la", lambda: encode(Image.new("LA", (200, 200)), "PNG"), "image/png", (422,)),
    ("mode_p_transparent", lambda: encode(Image.new("P", (200, 200)), "PNG", transparency=0), "image/png", (422,)),
    ("mode_cmyk_jpeg", lambda: encode(Image.new("CMYK", (200, 200), (0, 50, 100, 0)), "JPEG"), "image/jpeg", (422,)),
    ("mode_rgba_webp", lambda: encode(Image.new("RGBA", (200, 200), (0, 0, 0, 0)), "WEBP", lossless=True), "image/webp", (422,)),
    ("bad_exif", with_bad_exif, "image/jpeg", (422,)),
    ("animated_webp", lambda: encode(Image.new("RGB", (100, 100)), "WEBP", save_all=True, append_images=[Image.new("RGB", (100, 100), "red")]), "image/webp", (422,)),
    ("declared_image_star", lambda: b"\x00" * 100, "image/*", (415,)),
]

# The API's reference photo takes only image/jpeg, png and webp as its Content-Type.
API_UPLOAD_ALLOWED = {"declared_image_star": (415,)}

CASE_COUNT = (
    len(JSON_BODIES)
    + len(FIELD_CASES)
    + len(REFERENCE_IDS)
    + len(CONTENT_TYPES)
    + len(AUTH_HEADERS)
    + len(PATHS)
    + len(LINKS)
    + len(COOKIE_CASES)
    + len(PAGE_HEADERS)
    + 3  # link reuse
    + len(FORMS)
    + len(OFFERS)
    + 2 * len(UPLOADS)  # through the API and through the hosted page
)


def ids(cases):
    return [case[0] for case in cases]


# -- the tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, raw, allowed", JSON_BODIES, ids=ids(JSON_BODIES))
async def test_json_bodies(http, server, sandbox_key, name, raw, allowed):
    await send(http, server, "POST", "/api/v1/sessions", data=raw, headers={**auth(sandbox_key), "Content-Type": "application/json"}, allowed=allowed)


@pytest.mark.parametrize("name, field, value, allowed", FIELD_CASES, ids=ids(FIELD_CASES))
async def test_field_values(http, server, sandbox_key, name, field, value, allowed):
    body = {"reference_id": "fields", field: value}
    status, _, raw = await send(http, server, "POST", "/api/v1/sessions", json=body, headers=auth(sandbox_key), allowed=allowed)
    if status == 422:
        problem = json.loads(raw)
        assert field in {e["field"] for e in problem["errors"]}


@pytest.mark.parametrize("name, value, allowed", REFERENCE_IDS, ids=ids(REFERENCE_IDS))
async def test_reference_ids(http, server, sandbox_key, name, value, allowed):
    # ensure_ascii keeps lone surrogates as \ud800 escapes, as a hostile client would send them.
    raw = json.dumps({"reference_id": value}, ensure_ascii=True).encode()
    status, _, body = await send(
        http, server, "POST", "/api/v1/sessions", data=raw, headers={**auth(sandbox_key), "Content-Type": "application/json"}, allowed=allowed
    )
    if status == 201:
        created = json.loads(body)
        assert created["reference_id"] == value
        async with http.get(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(sandbox_key)) as response:
            assert response.status == 200 and (await response.json())["reference_id"] == value


@pytest.mark.parametrize("name, content_type, allowed", CONTENT_TYPES, ids=ids(CONTENT_TYPES))
async def test_content_types(http, server, sandbox_key, name, content_type, allowed):
    head = b"POST /api/v1/sessions HTTP/1.1\r\nAuthorization: Bearer " + sandbox_key.encode()
    if content_type is not None:
        head += b"\r\nContent-Type: " + content_type.encode()
    status, headers, body = await raw_http(server, head, GOOD_BODY)
    check(status, headers, body, api=True, allowed=allowed)


@pytest.mark.parametrize("name, header", AUTH_HEADERS, ids=ids(AUTH_HEADERS))
async def test_authorization_headers(server, sandbox_key, name, header):
    head = b"POST /api/v1/sessions HTTP/1.1\r\nContent-Type: application/json"
    if header is not None:
        head += b"\r\nAuthorization: " + header
    status, headers, body = await raw_http(server, head, GOOD_BODY)
    check(status, headers, body, api=True, allowed=(400, 401))
    if status == 401:
        assert headers["Www-Authenticate"] == "Bearer"


@pytest.mark.parametrize("name, path", PATHS, ids=ids(PATHS))
async def test_paths(server, sandbox_key, name, path):
    for method in (b"GET", b"DELETE", b"POST"):
        head = method + b" " + path + b" HTTP/1.1\r\nAuthorization: Bearer " + sandbox_key.encode() + b"\r\nContent-Type: image/jpeg"
        status, headers, body = await raw_http(server, head, b"\xff\xd8\xff")
        check(status, headers, body, api=False, allowed=(400, 401, 403, 404, 405, 409, 414, 415, 431))
        assert b"[tool.pytest" not in body and b"class Settings" not in body and b"root:" not in body
        if status >= 400 and headers.get("Content-Type", "").startswith("application/json"):
            raise AssertionError(f"an API error that is not problem+json: {body[:200]!r}")


@pytest.mark.parametrize("name, path, allowed", LINKS, ids=ids(LINKS))
async def test_forged_links(http, server, name, path, allowed):
    status, headers, body = await send(http, server, "GET", path, api=False, allowed=allowed)
    assert headers["Content-Type"].startswith("text/html")
    assert "rn_browser" not in {c.key for c in http.cookie_jar}


@pytest.mark.parametrize("how", ["other_browser", "other_browser_after_finish", "same_browser_after_redaction"])
async def test_reused_links(http, server, services, sandbox_key, how):
    created = await new_session(http, server, sandbox_key)
    async with http.post(created["url"], allow_redirects=False) as response:
        assert response.status == 303
    if how == "other_browser_after_finish":
        services.store.update_session(created["id"], expires_at=0)
        services.lifecycle.expire_due()
    if how == "same_browser_after_redaction":
        async with http.delete(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(sandbox_key)) as response:
            assert response.status == 200
        await send(http, server, "GET", created["url"], api=False, allowed=(404,))
        await send(http, server, "GET", "/verify", api=False, allowed=(403,))
        return
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await send(other, server, "GET", created["url"], api=False, allowed=(410,))
        await send(other, server, "GET", "/verify", api=False, allowed=(403,))
        assert "rn_browser" not in {c.key for c in other.cookie_jar}


@pytest.mark.parametrize("name, cookie, target", COOKIE_CASES, ids=ids(COOKIE_CASES))
async def test_cookies(server, name, cookie, target):
    head = target + b" HTTP/1.1\r\nCookie: " + cookie + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nX-CSRF-Token: \xff"
    status, headers, body = await raw_http(server, head, b"csrf_token=x")
    check(status, headers, body, api=False, allowed=(204, 303, 400, 403))


@pytest.mark.parametrize("name, header", PAGE_HEADERS, ids=ids(PAGE_HEADERS))
async def test_page_headers(server, name, header):
    for target in (b"GET /?lang=%FF", b"GET /privacy?lang=zh-\xff", b"GET /verify", b"GET /v/unknown-token"):
        status, headers, body = await raw_http(server, target + b" HTTP/1.1\r\n" + header)
        check(status, headers, body, api=False, allowed=(200, 303, 400, 403, 404))


def form_request(kind: str, csrf: str) -> dict:
    """aiohttp request arguments for one way of posting a form."""
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    if kind == "no_csrf":
        return {"data": {"agree": "yes"}}
    if kind == "wrong_csrf":
        return {"data": {"csrf_token": "0" * 64, "agree": "yes"}}
    if kind == "non_ascii_csrf":
        return {"data": {"csrf_token": "\u00e9" * 64, "agree": "yes"}}
    if kind == "valid_csrf":
        return {"data": {"csrf_token": csrf}}
    if kind == "two_csrf":
        return {"data": [("csrf_token", "0" * 64), ("csrf_token", csrf), ("agree", "yes")]}
    if kind == "valid_csrf_no_agree":
        return {"data": {"csrf_token": csrf}}
    if kind == "valid_csrf_agree_garbage":
        return {"data": {"csrf_token": csrf, "agree": "\U0001f600" * 1000}}
    if kind == "csrf_as_file":
        form = aiohttp.FormData()
        form.add_field("csrf_token", csrf.encode(), filename="csrf.txt", content_type="text/plain")
        form.add_field("agree", "yes")
        return {"data": form}
    if kind == "invalid_utf8":
        return {"data": b"csrf_token=\xff\xfe&agree=\xc3\x28", "headers": urlencoded}
    if kind == "bad_percent":
        return {"data": b"csrf_token=%ZZ%&agree=%ff%fe%", "headers": urlencoded}
    if kind == "unknown_charset":
        return {"data": b"csrf_token=abc&agree=yes", "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=no-such-charset"}}
    if kind == "multipart_no_boundary":
        return {"data": b"--x\r\nContent-Disposition: form-data; name=\"agree\"\r\n\r\nyes\r\n--x--\r\n", "headers": {"Content-Type": "multipart/form-data"}}
    if kind == "multipart_broken":
        return {"data": b"--x\r\nGarbage\r\n\r\n\xff\xfe--x", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}
    if kind == "multipart_no_name":
        return {"data": b"--x\r\nContent-Disposition: form-data\r\n\r\nyes\r\n--x--\r\n", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}
    if kind == "json_body":
        return {"json": {"csrf_token": csrf, "agree": "yes"}}
    if kind == "huge_form":
        return {"data": b"csrf_token=" + csrf.encode() + b"&agree=yes&pad=" + b"a" * (11 * 1024 * 1024), "headers": urlencoded}
    if kind == "many_fields":
        return {"data": "&".join(f"f{i}=1" for i in range(50_000)).encode() + b"&csrf_token=" + csrf.encode(), "headers": urlencoded}
    if kind == "photo_as_text":
        return {"data": {"csrf_token": csrf, "photo": "not a file"}}
    if kind in ("photo_upload", "too_big_upload"):
        form = aiohttp.FormData()
        form.add_field("csrf_token", csrf)
        payload = id_jpeg() if kind == "photo_upload" else b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024)
        form.add_field("photo", payload, filename="id.jpg", content_type="image/jpeg")
        return {"data": form}
    raise AssertionError(kind)


@pytest.mark.parametrize("name, step, path, kind, allowed", FORMS, ids=ids(FORMS))
async def test_page_forms(http, server, sandbox_key, name, step, path, kind, allowed):
    csrf = "f" * 64
    if step is not None:
        _created, _customer, csrf = await browser_at(http, server, sandbox_key, step)
    await send(http, server, "POST", path, api=False, allowed=allowed, **form_request(kind, csrf))


@pytest.mark.parametrize("name, step, csrf_kind, body, allowed", OFFERS, ids=ids(OFFERS))
async def test_live_offers(http, server, services, sandbox_key, name, step, csrf_kind, body, allowed):
    csrf = "f" * 64
    if step is not None:
        created, _customer, csrf = await browser_at(http, server, sandbox_key, step)
    header = {"valid": csrf, "wrong": "0" * 64, "non_ascii": "\u00e9" * 64, "none": None}[csrf_kind]
    headers = {"X-CSRF-Token": header} if header is not None else {}
    if isinstance(body, bytes):
        kwargs = {"data": body, "headers": {**headers, "Content-Type": "application/json"}}
    else:
        kwargs = {"json": body, "headers": headers}
    await send(http, server, "POST", "/verify/live/offer", api=False, allowed=allowed, **kwargs)
    # Nothing is left running for a refused offer.
    for _ in range(100):
        if not services.attempts.live:
            break
        await asyncio.sleep(0.02)
    assert not services.attempts.live


@pytest.mark.parametrize("name, make, content_type, allowed", UPLOADS, ids=ids(UPLOADS))
async def test_api_uploads(http, server, services, sandbox_key, name, make, content_type, allowed):
    created = await new_session(http, server, sandbox_key)
    await send(
        http,
        server,
        "POST",
        f"/api/v1/sessions/{created['id']}/reference-photo",
        data=make(),
        headers={**auth(sandbox_key), "Content-Type": content_type},
        allowed=API_UPLOAD_ALLOWED.get(name, allowed),
    )
    assert services.store.evidence_kinds(created["id"]) == []


@pytest.mark.parametrize("name, make, content_type, allowed", UPLOADS, ids=ids(UPLOADS))
async def test_page_uploads(http, server, services, sandbox_key, name, make, content_type, allowed):
    created, _customer, csrf = await browser_at(http, server, sandbox_key, "consented")
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("photo", make(), filename="id.jpg", content_type=content_type)
    status, headers, body = await send(http, server, "POST", "/verify/document", api=False, allowed=allowed, data=form)
    assert headers["Content-Type"].startswith("text/html")
    assert b'class="error"' in body or b"error" in body
    assert services.store.evidence_kinds(created["id"]) == []


def test_case_count():
    print(f"\nbad-input cases: {CASE_COUNT}")
    assert CASE_COUNT >= 150
