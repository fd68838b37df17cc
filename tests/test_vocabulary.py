"""One vocabulary: every reason and every customer-facing error code has its words in every locale, and
the API's description lists exactly the reasons the service can record.

Which error codes need a page text (`error.<code>` in the locales) is read from the source with `ast`:
the literal code of every `RealnameError` raised in the product, and every code a page view or the error
middleware renders. Exempt are, by rule:

- codes raised in `server/api/` (and every `Problem`, the API's own error): the API answers them as
  problem documents, never as a page;
- codes only the live page's offer or recording answers (`server/flow/attempts.py`, `server/rtc/offer.py`,
  `server/flow/recorded.py`): the page
  shows `live.error.generic` and, for some, a more precise `live.error.*` text (`LIVE_ERROR_TEXTS`);
- `API_ONLY`: codes raised outside `server/api/` by code only the API calls (checked below).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from server.errors import HTTP_CODES
from server.reasons import ENDINGS, NOT_THE_CUSTOMERS_DOING, Reason
from server.sessions import CheckPath
from server.spoof.pad import PadVerdict
from server.spoof.signals import Action, Level, SignalCode
from server.web.pages import LIVE_ERROR_TEXTS
from server.web.security import PAGE_ERROR_CODES

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "server"
LOCALES = ("en", "zh-CN")
OPENAPI = json.loads((SERVER / "api" / "openapi.json").read_text(encoding="utf-8"))
SCHEMAS = OPENAPI["components"]["schemas"]

# Error classes whose first argument is the code; a subclass with a fixed code passes it to super().__init__.
ERROR_CLASSES = {"RealnameError", "FlowError", "ImageError", "FaceError"}
LIVE_OFFER_FILES = {"server/flow/attempts.py", "server/rtc/offer.py", "server/flow/recorded.py", "server/flow/cluster_line.py"}
# code -> the method raising it, which only the merchant API calls.
API_ONLY = {"fixed_challenges_forbidden": "create"}
# Functions that render a page for an error code given as a literal argument.
PAGE_RENDERERS = {"error_page", "again"}


def locale(name: str) -> dict[str, str]:
    return json.loads((SERVER / "web" / "locales" / f"{name}.json").read_text(encoding="utf-8"))


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _constants(tree: ast.Module) -> dict[str, object]:
    """Module-level `NAME = <literal>` assignments (e.g. a tuple of ImageError arguments)."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


def _first_string(args: list[ast.expr], constants: dict[str, object]) -> str | None:
    if not args:
        return None
    first = args[0]
    if isinstance(first, ast.Starred) and isinstance(first.value, ast.Name):
        values = constants.get(first.value.id)
        return values[0] if isinstance(values, tuple) and values and isinstance(values[0], str) else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def raised_codes() -> Iterator[tuple[str, str]]:
    """(file, code) of every error of the service constructed with a literal code, and of every code a
    page renderer is given (file `page:<file>`)."""
    for path in sorted(SERVER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and {_base(b) for b in node.bases} & ERROR_CLASSES:
                # A subclass with a fixed code: `super().__init__("bad_offer", message)`.
                for call in ast.walk(node):
                    if isinstance(call, ast.Call) and _name(call) == "__init__" and (code := _first_string(call.args, constants)):
                        yield where, code
            if not isinstance(node, ast.Call):
                continue
            name = _name(node)
            if name in ERROR_CLASSES and (code := _first_string(node.args, constants)):
                yield where, code
            elif name == "Problem" and len(node.args) > 1 and (code := _first_string(node.args[1:], constants)):
                yield "server/api/(Problem)", code
            elif name in PAGE_RENDERERS:
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        yield f"page:{where}", arg.value


def _base(expr: ast.expr) -> str | None:
    return expr.id if isinstance(expr, ast.Name) else expr.attr if isinstance(expr, ast.Attribute) else None


def page_codes() -> set[str]:
    """Error codes a customer can see on a page (see the module's docstring for the rule)."""
    codes = {code for where, code in raised_codes() if not _exempt(where, code)}
    return codes | set(PAGE_ERROR_CODES.values())


def _exempt(where: str, code: str) -> bool:
    return where.startswith("server/api/") or where in LIVE_OFFER_FILES or code in API_ONLY


# -- reasons ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOCALES)
def test_every_reason_has_a_text(name):
    texts = locale(name)
    missing = [r.value for r in Reason if not texts.get(f"reason.{r.value}", "").strip()]
    assert missing == []
    untranslated = [r.value for r in Reason if texts[f"reason.{r.value}"] == f"reason.{r.value}"]
    assert untranslated == []


@pytest.mark.parametrize("name", LOCALES)
def test_no_text_for_a_reason_that_does_not_exist(name):
    known = {f"reason.{r.value}" for r in Reason}
    assert sorted(key for key in locale(name) if key.startswith("reason.") and key not in known) == []


def _document_check_codes() -> set[str]:
    """The document checks' codes, as the readers in server/documents write them."""
    pattern = re.compile(r'\b_?[cC]heck\("([a-z0-9_]+)"')
    return {code for path in (SERVER / "documents").glob("*.py") for code in pattern.findall(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("name", LOCALES)
def test_the_console_has_words_for_every_signal_pad_verdict_and_document_check(name):
    """The console shows each code's text with the code beside it (issue 31 item 13)."""
    assert len(_document_check_codes()) >= 10
    wanted = (
        {f"signal.{c.value}" for c in SignalCode}
        | {f"console.level.{v.value}" for v in Level}
        | {f"console.action.{a.value}" for a in Action}
        | {f"console.pad.{v.value}" for v in PadVerdict}
        | {f"document_check.{code}" for code in _document_check_codes()}
    )
    texts = locale(name)
    assert sorted(key for key in wanted if not texts.get(key, "").strip()) == []
    stale = {key for key in texts if key.startswith(("signal.", "console.level.", "console.action.", "console.pad.", "document_check."))}
    assert sorted(stale - wanted) == []


def test_endings_are_reasons_and_not_the_customers_doing_are_endings():
    assert all(isinstance(reason, Reason) for reason in ENDINGS.values())
    assert NOT_THE_CUSTOMERS_DOING <= set(ENDINGS)


def test_chinese_reason_texts_are_not_the_english_ones():
    en, zh = locale("en"), locale("zh-CN")
    assert [r.value for r in Reason if en[f"reason.{r.value}"] == zh[f"reason.{r.value}"]] == []


# -- error codes --------------------------------------------------------------------------------------


def test_the_code_scan_finds_the_known_codes():
    found = {code for _, code in raised_codes()}
    # One of each kind: FlowError, ImageError, ImageError(*CONSTANT), FaceError, a fixed subclass code,
    # Problem, error_page, a page view's helper.
    assert {"too_many_uploads", "empty_file", "image_too_complex", "face_too_dark", "bad_offer", "malformed_json", "bad_form", "no_file"} <= found
    assert [code for code in found if not re.fullmatch(r"[a-z][a-z_]*", code)] == []  # codes, never messages


@pytest.mark.parametrize("name", LOCALES)
def test_every_page_error_has_a_text(name):
    texts = locale(name)
    missing = sorted(code for code in page_codes() if not texts.get(f"error.{code}", "").strip())
    assert missing == [], f"error codes a customer can see without an error.<code> text in {name}.json"


@pytest.mark.parametrize("name", LOCALES)
def test_live_offer_errors_have_texts(name):
    texts = locale(name)
    assert texts.get("live.error.generic", "").strip()
    assert sorted(key for key in LIVE_ERROR_TEXTS.values() if not texts.get(key, "").strip()) == []


def test_live_error_texts_name_codes_the_offer_can_answer():
    offer_codes = {code for where, code in raised_codes() if where in LIVE_OFFER_FILES}
    assert set(LIVE_ERROR_TEXTS) <= offer_codes


def test_api_only_codes_come_from_methods_only_the_api_calls():
    for code, method in API_ONLY.items():
        assert code in {c for _, c in raised_codes()}, f"{code} is not raised any more: drop it from API_ONLY"
        callers = sorted(path.relative_to(ROOT).as_posix() for path in SERVER.rglob("*.py") if f"lifecycle.{method}(" in path.read_text(encoding="utf-8"))
        assert callers and all(caller.startswith("server/api/") for caller in callers), callers


def test_page_codes_for_http_errors_are_named_like_the_api_ones():
    """A 404, 413 or 429 page and the API's problem use one code."""
    for status, code in PAGE_ERROR_CODES.items():
        assert HTTP_CODES[status][0] == code


def test_every_error_the_api_can_answer_is_documented():
    """Everything raised outside the live page's offer and the page views can reach an API answer."""
    text = json.dumps(OPENAPI)
    api_codes = {code for where, code in raised_codes() if where not in LIVE_OFFER_FILES and not where.startswith("page:")}
    api_codes |= {code for code, _ in HTTP_CODES.values()}
    assert sorted(code for code in api_codes if f"`{code}`" not in text) == []


# -- locales ------------------------------------------------------------------------------------------


def test_locales_have_the_same_keys():
    en, zh = locale("en"), locale("zh-CN")
    assert sorted(set(en) - set(zh)) == []
    assert sorted(set(zh) - set(en)) == []


@pytest.mark.parametrize("name", LOCALES)
def test_no_empty_text(name):
    assert sorted(key for key, text in locale(name).items() if not isinstance(text, str) or not text.strip()) == []


# -- the API's description -----------------------------------------------------------------------------


def _refs(schema: dict) -> set[str]:
    """$refs a property schema points at, directly or through oneOf/anyOf."""
    refs = {schema["$ref"]} if "$ref" in schema else set()
    for key in ("oneOf", "anyOf"):
        for option in schema.get(key, []):
            refs |= _refs(option)
    return refs


def test_every_reference_in_the_description_resolves():
    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    def resolves(ref: str) -> bool:
        node: object = OPENAPI
        for part in ref.removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    assert sorted({ref for ref in refs(OPENAPI) if not resolves(ref)}) == []


def test_the_reason_schema_lists_exactly_the_reasons():
    schema = SCHEMAS["Reason"]
    assert schema["type"] == "string"
    assert schema["enum"] == [r.value for r in Reason]
    # Its description explains every value.
    assert [r.value for r in Reason if f"`{r.value}`" not in schema["description"]] == []


def test_pad_and_signal_schemas_follow_their_enums():
    assert SCHEMAS["PadResult"]["properties"]["verdict"]["enum"] == [v.value for v in PadVerdict]
    signal = SCHEMAS["RiskSignal"]["properties"]
    assert SCHEMAS["RiskSignalCode"]["enum"] == [c.value for c in SignalCode]
    assert signal["code"] == {"$ref": "#/components/schemas/RiskSignalCode"}
    assert signal["level"]["enum"] == [level.value for level in Level]
    assert signal["action"]["enum"] == [a.value for a in Action]
    assert set(SCHEMAS["RiskSignal"]["required"]) == set(signal)
    liveness = SCHEMAS["Liveness"]["properties"]
    assert "#/components/schemas/PadResult" in _refs(liveness["pad"])
    assert liveness["review_because"]["items"] == {"$ref": "#/components/schemas/RiskSignalCode"}
    assert liveness["signals"]["items"] == {"$ref": "#/components/schemas/RiskSignal"}
    event_session = SCHEMAS["WebhookEvent"]["properties"]["data"]["properties"]["session"]["properties"]
    assert event_session["signals"]["items"] == {"$ref": "#/components/schemas/RiskSignal"}
    assert SCHEMAS["CheckPath"]["enum"] == [p.value for p in CheckPath]
    assert liveness["path"] == {"$ref": "#/components/schemas/CheckPath"}
    assert "#/components/schemas/CheckPath" in _refs(event_session["path"])


def test_the_webhook_event_is_documented_as_it_is_sent():
    from server.sessions import Session, Status
    from server.webhooks import event_for

    session = Session("ses_" + "0" * 24, 1, False, "order-1", Status.FAILED, 0.0, 0.0, 0.0, 3, 3, failure_reason="timeout")
    body = json.loads(event_for(session, "session.failed")[1])
    schema = SCHEMAS["WebhookEvent"]
    assert set(body) == set(schema["properties"]) == set(schema["required"])
    sent, documented = body["data"]["session"], schema["properties"]["data"]["properties"]["session"]
    assert set(sent) == set(documented["properties"]) == set(documented["required"])
    for example in schema["examples"]:
        assert set(example["data"]["session"]) == set(sent)


def test_documented_records_have_the_fields_the_code_writes():
    """The dictionaries the session detail shows, as the code makes them."""
    from server.flow.attempts import liveness_record
    from server.liveness.challenges import Challenge
    from server.liveness.engine import ChallengeRecord, LivenessResult
    from server.spoof.pad import PadResult, PadThresholds
    from server.spoof.signals import RiskSignal

    record = ChallengeRecord(Challenge.BLINK, asked_at=1.0, completed_at=2.0, passed=True, peak=0.5, onset_at=1.5).to_dict()
    assert set(record) <= set(SCHEMAS["ChallengeRecord"]["properties"])
    pad = PadResult.of([0.9, 0.8], PadThresholds(), 12.0, 3).to_dict()
    assert set(pad) <= set(SCHEMAS["PadResult"]["properties"])
    assert set(PadThresholds().to_dict()) <= set(SCHEMAS["PadResult"]["properties"]["thresholds"]["properties"])
    signal = RiskSignal(SignalCode.PAD_PASSED, Level.LOW).to_dict()
    assert set(signal) == set(SCHEMAS["RiskSignal"]["properties"])
    result = LivenessResult(True, None, None, (ChallengeRecord(Challenge.BLINK),), 0.0, 3.0, ())
    session = SimpleNamespace(attempts=1)
    liveness = liveness_record(result, session, PadResult.unavailable(), [RiskSignal(SignalCode.PAD_UNAVAILABLE, Level.ELEVATED)], CheckPath.WEBRTC)
    assert set(liveness) | {"review_because"} <= set(SCHEMAS["Liveness"]["properties"])


@pytest.mark.parametrize(
    "owner, path",
    [
        ("Session", ("failure_reason",)),
        ("Liveness", ("reason",)),
        ("WebhookEvent", ("data", "session", "failure_reason")),
    ],
)
def test_reasons_refer_to_the_reason_schema(owner, path):
    schema = SCHEMAS[owner]
    for name in path:
        schema = schema["properties"][name]
    assert "#/components/schemas/Reason" in _refs(schema)
    assert "enum" not in schema  # no second list to drift


def test_no_other_list_of_reasons_in_the_description():
    """A reason list written out elsewhere (a description, an enum) would drift from the enum again."""
    reasons = {r.value for r in Reason} - {"timeout", "redacted", "no_face", "multiple_faces"}  # also plain words/codes

    def enums(node: object) -> Iterator[list]:
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list) and node is not SCHEMAS["Reason"]:
                yield node["enum"]
            for value in node.values():
                yield from enums(value)
        elif isinstance(node, list):
            for value in node:
                yield from enums(value)

    assert [e for e in enums(OPENAPI) if len(reasons & set(e)) > 1] == []
