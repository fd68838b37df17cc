"""Which document the OCR lines come from, the reading assembled from them, and the merchant's expected values."""

from __future__ import annotations

import datetime as dt

from server.documents.mrz import td1_lines, td3_lines
from server.documents.reading import Expected, classify, normalised_name, read_lines
from server.documents.resident_card import make_number
from server.documents.results import OcrLine

TODAY = dt.date(2026, 11, 30)


def ocr(*texts: str) -> list[OcrLine]:
    return [OcrLine(text, 0.9, (0, 50 * i, 20 * len(text), 50 * i + 30)) for i, text in enumerate(texts)]


NUMBER = make_number("110101", dt.date(1990, 1, 2), 12, male=True)
FRONT = ocr("姓名 张三", "性别 男 民族 汉", "出生 1990年1月2日", "住址 北京市东城区景山前街4号", f"公民身份号码 {NUMBER}")
PASSPORT = ocr("PASSPORT 护照", *td3_lines("P", "CHN", "ZHANG", "SAN", "E12345678", "CHN", "900102", "M", "200101", ""))


def test_documents_are_told_apart():
    assert classify(FRONT, TODAY) == "cn_resident_card_front"
    assert classify(ocr("中华人民共和国", "居民身份证", "签发机关 北京市公安局", "有效期限 2015.03.01-2035.03.01"), TODAY) == "cn_resident_card_back"
    assert classify(PASSPORT, TODAY) == "td3_mrz"
    assert classify(ocr(*td1_lines("ID", "DEU", "T22000129", "640812", "F", "310101", "DEU", "MUSTERMANN", "ERIKA")), TODAY) == "td1_mrz"
    assert classify(ocr("LIBRARY CARD", "member 1234"), TODAY) == "unrecognised"
    assert classify([], TODAY) == "unrecognised"


def test_a_front_reading_has_age_and_no_expiry():
    reading = read_lines(FRONT, TODAY)
    assert reading.type == "cn_resident_card_front" and reading.checks_passed
    assert reading.age == 36 and reading.expired is None
    data = reading.to_dict()
    assert data["fields"]["id_number"] == {"value": NUMBER, "confidence": 0.9}


def test_an_expired_passport_and_a_back_not_yet_expired():
    reading = read_lines(PASSPORT, TODAY)
    assert reading.type == "td3_mrz" and reading.checks_passed and reading.expired is True
    assert reading.value("name") == "ZHANG SAN" and reading.value("date_of_expiry") == "2020-01-01" and reading.age == 36
    back = read_lines(ocr("签发机关 北京市公安局", "有效期限 2015.03.01-2035.03.01"), TODAY)
    assert back.expired is False and back.checks_passed


def test_a_bad_check_character_fails_the_reading():
    forged = NUMBER[:17] + ("0" if NUMBER[17] != "0" else "1")
    reading = read_lines(ocr("姓名 张三", "性别 男 民族 汉", "出生 1990年1月2日", f"公民身份号码 {forged}"), TODAY)
    assert reading.checks_failed == ["id_number_check_character"] and not reading.checks_passed


def test_expected_values_are_compared_after_normalising():
    assert normalised_name("ＺＨＡＮＧ  San") == normalised_name("zhang<<SAN") == "zhangsan"
    front = read_lines(FRONT, TODAY)
    assert Expected.from_dict({"name": "张 三", "id_number": NUMBER.lower(), "date_of_birth": "1990-01-02"}).matches(front) == {
        "name": True, "id_number": True, "date_of_birth": True,
    }
    assert Expected(name="李四", date_of_birth="1990-01-03").matches(front) == {"name": False, "date_of_birth": False}
    passport = read_lines(PASSPORT, TODAY)
    assert Expected(name="San Zhang", id_number="E12345678").matches(passport) == {"name": True, "id_number": True}
    assert Expected(name="x").matches(read_lines(ocr("nothing"), TODAY)) == {"name": None}
    assert Expected.from_dict({"name": "", "other": "x"}).to_dict() == {}
