"""The resident identity card: the number's check character, its date of birth and sex, the printed fields."""

from __future__ import annotations

import datetime as dt

from server.documents.resident_card import check_character, find_number, make_number, number_checks, parse_back, parse_front
from server.documents.results import OcrLine

# GB 11643's example number.
EXAMPLE = "11010519491231002X"


def line(text: str, y: float, x: float = 0, confidence: float = 0.95) -> OcrLine:
    return OcrLine(text, confidence, (x, y, x + 20 * len(text), y + 30))


def codes(checks) -> dict[str, bool | None]:
    return {check.code: check.passed for check in checks}


def test_the_check_character_of_the_standard_example():
    assert check_character(EXAMPLE[:17]) == "X"
    assert check_character("44052418800101001") == "4"


def test_made_numbers_are_valid_and_carry_sex_and_birth():
    for male in (True, False):
        number = make_number("310104", dt.date(1988, 2, 29), 37, male)
        assert len(number) == 18 and check_character(number[:17]) == number[17]
        assert codes(number_checks(number, dt.date(1988, 2, 29), "M" if male else "F")) == {
            "id_number_check_character": True, "id_number_birth_date_valid": True, "id_number_birth_date_matches": True, "id_number_sex_matches": True,
        }


def test_a_wrong_check_character_or_disagreeing_fields_fail():
    wrong = EXAMPLE[:17] + "5"
    assert codes(number_checks(wrong, None, None))["id_number_check_character"] is False
    result = codes(number_checks(EXAMPLE, dt.date(1950, 1, 1), "M"))
    assert result["id_number_check_character"] is True
    assert result["id_number_birth_date_matches"] is False and result["id_number_sex_matches"] is False  # 17th digit 2: female
    assert codes(number_checks(EXAMPLE, None, None))["id_number_birth_date_matches"] is None


def test_numbers_are_found_with_ocr_confusions_undone():
    assert find_number("公民身份号码 11O1O519491231OO2x") == EXAMPLE
    assert find_number("1101051949") is None


def test_the_front_is_read_whether_labels_and_values_are_one_line_or_two():
    number = make_number("110101", dt.date(1990, 1, 2), 12, male=True)
    lines = [
        line("姓名", 100), line("张三", 100, x=150, confidence=0.9),
        line("性别男", 160), line("民族汉", 160, x=250),
        line("出生 1990年1月2日", 220),
        line("住址北京市东城区", 280), line("景山前街4号", 320, x=150),
        line("公民身份号码", 400), line(number, 400, x=300),
    ]
    fields, checks = parse_front(lines)
    assert {name: f.value for name, f in fields.items()} == {
        "name": "张三", "sex": "M", "ethnicity": "汉", "date_of_birth": "1990-01-02", "address": "北京市东城区景山前街4号", "id_number": number,
    }
    assert fields["name"].confidence == 0.9
    assert all(codes(checks).values())


def test_a_front_without_a_number_says_so():
    fields, checks = parse_front([line("姓名张三", 100)])
    assert fields["name"].value == "张三" and codes(checks) == {"id_number_read": False}


def test_the_back_gives_authority_and_period():
    fields, checks, expiry = parse_back([line("中华人民共和国", 50), line("居民身份证", 100), line("签发机关 北京市公安局东城分局", 300), line("有效期限 2015.03.01-2035.03.01", 360)])
    assert {n: f.value for n, f in fields.items()} == {"issuing_authority": "北京市公安局东城分局", "valid_from": "2015-03-01", "date_of_expiry": "2035-03-01"}
    assert all(codes(checks).values()) and expiry == dt.date(2035, 3, 1)
    fields, checks, expiry = parse_back([line("签发机关 某市公安局", 300), line("有效期限 2010.03.01-长期", 360)])
    assert fields["date_of_expiry"].value == "long-term" and expiry is None and all(codes(checks).values())
