"""What a session keeps of a document, and which document problem decides the outcome."""

from __future__ import annotations

import datetime as dt

from server.documents.outcome import KEPT_FIELDS, document_problem, session_document
from server.documents.reading import Expected, read_lines
from server.documents.resident_card import make_number
from server.documents.results import OcrLine
from server.reasons import Reason

TODAY = dt.date(2026, 11, 30)
NUMBER = make_number("110101", dt.date(1990, 1, 2), 12, male=True)


def front(number: str = NUMBER):
    texts = ("姓名 张三", "性别 男 民族 汉", "出生 1990年1月2日", "住址 北京市东城区景山前街4号", f"公民身份号码 {number}")
    return read_lines([OcrLine(t, 0.9, (0, 50 * i, 300, 50 * i + 30)) for i, t in enumerate(texts)], TODAY)


def test_only_the_identifying_fields_are_kept():
    kept = session_document(front(), None)
    assert set(kept["fields"]) == {"name", "sex", "date_of_birth", "id_number"} <= set(KEPT_FIELDS)
    assert "address" not in kept["fields"] and "ethnicity" not in kept["fields"]
    assert kept["type"] == "cn_resident_card_front" and kept["checks_passed"] and kept["expected_matches"] is None
    assert document_problem(kept) is None


def test_problems_most_serious_first():
    wrong = NUMBER[:17] + ("1" if NUMBER[17] != "1" else "2")
    assert document_problem(session_document(front(wrong), Expected(name="李四"))) == Reason.DOCUMENT_CHECKSUM_FAILED
    assert document_problem(session_document(front(), Expected(name="李四"))) == Reason.DOCUMENT_MISMATCH
    assert document_problem(session_document(front(), Expected(name="张三", id_number=NUMBER))) is None
    expired = {"type": "td3_mrz", "checks": [{"code": "x", "passed": True}], "expired": True, "expected_matches": None}
    assert document_problem(expired) == Reason.DOCUMENT_EXPIRED
    assert document_problem(None) is None
    assert document_problem(None, {"name": "张三"}) == Reason.DOCUMENT_MISMATCH  # expected, but nothing was read


def test_an_expected_value_the_document_does_not_show_is_a_mismatch():
    unrecognised = session_document(read_lines([], TODAY), Expected(name="张三"))
    assert unrecognised["expected_matches"] == {"name": None}
    assert document_problem(unrecognised) == Reason.DOCUMENT_MISMATCH
    assert document_problem(session_document(read_lines([], TODAY), None)) is None  # the face only
