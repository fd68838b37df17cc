"""The Chinese resident identity card (居民身份证, GB 11643 number): its number's checks and its printed fields.

The front carries name, sex, ethnicity, date of birth, address and the 18-character citizen number; the
back the issuing authority and the validity period. The number encodes the date of birth (characters
7-14) and the sex (the 17th: odd is male), and ends in an ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .results import Check, Field, OcrLine, date_or_none

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
AS_DIGIT = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "L": "1", "|": "1", "Z": "2", "S": "5", "s": "5", "G": "6", "B": "8", "x": "X", "×": "X"})
NUMBER = re.compile(r"[0-9]{17}[0-9X]")
CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
PERIOD = re.compile(r"(\d{4})[.\-·,/]?(\d{2})[.\-·,/]?(\d{2})\s*[-—–~至一]+\s*(长期|\d{4}[.\-·,/]?\d{2}[.\-·,/]?\d{2})")
SEX = {"男": "M", "女": "F"}
LONG_TERM = "long-term"


def check_character(first17: str) -> str:
    return CHECK_CHARACTERS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def number_birth_date(number: str) -> dt.date | None:
    return date_or_none(int(number[6:10]), int(number[10:12]), int(number[12:14])) if len(number) == 18 and number[6:14].isdigit() else None


def number_sex(number: str) -> str:
    return "M" if int(number[16]) % 2 else "F"


def find_number(text: str) -> str | None:
    """An 18-character citizen number in OCR text, with letters OCR confuses for digits read as digits."""
    compact = re.sub(r"\s", "", text).translate(AS_DIGIT).upper()
    found = NUMBER.search(compact)
    return found.group(0) if found else None


def number_checks(number: str, printed_birth: dt.date | None, printed_sex: str | None) -> tuple[Check, ...]:
    birth = number_birth_date(number)
    return (
        Check("id_number_check_character", check_character(number[:17]) == number[17]),
        Check("id_number_birth_date_valid", birth is not None),
        Check("id_number_birth_date_matches", None if printed_birth is None or birth is None else birth == printed_birth),
        Check("id_number_sex_matches", None if printed_sex is None else number_sex(number) == printed_sex),
    )


@dataclass(frozen=True)
class Row:
    """Lines at the same height, left to right: a label and its value are often read as separate lines."""

    text: str
    confidence: float


def rows(lines: list[OcrLine]) -> list[Row]:
    ordered = sorted(lines, key=lambda line: line.centre_y)
    groups: list[list[OcrLine]] = []
    for line in ordered:
        if groups and abs(line.centre_y - groups[-1][0].centre_y) < 0.5 * max(line.height, groups[-1][0].height, 1):
            groups[-1].append(line)
        else:
            groups.append([line])
    return [
        Row(" ".join(line.text for line in sorted(group, key=lambda line: line.box[0])), min(line.confidence for line in group))
        for group in groups
    ]


def _after(text: str, label: str) -> str:
    return text.split(label, 1)[1].strip(" :：") if label in text else ""


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def parse_front(lines: list[OcrLine]) -> tuple[dict[str, Field], tuple[Check, ...]]:
    fields: dict[str, Field] = {}
    address: list[Row] = []
    in_address = False
    for row in rows(lines):
        text = _squeezed(row.text)
        number = find_number(text)
        date = CN_DATE.search(text)
        if number:
            fields["id_number"] = Field(number, row.confidence)
            in_address = False
        elif "姓名" in text and _after(text, "姓名"):
            fields["name"] = Field(_after(text, "姓名"), row.confidence)
        elif "性别" in text or "民族" in text:
            sex = next((SEX[c] for c in _after(text, "性别")[:2] if c in SEX), None)
            if sex:
                fields["sex"] = Field(sex, row.confidence)
            if _after(text, "民族"):
                fields["ethnicity"] = Field(_after(text, "民族"), row.confidence)
        elif date:
            birth = date_or_none(int(date.group(1)), int(date.group(2)), int(date.group(3)))
            if birth:
                fields["date_of_birth"] = Field(birth.isoformat(), row.confidence)
        elif "住址" in text:
            in_address = True
            address.append(Row(_after(text, "住址"), row.confidence))
        elif in_address and "公民身份" not in text:
            address.append(Row(text, row.confidence))
        elif "公民身份" in text:
            in_address = False
    if address and any(part.text for part in address):
        fields["address"] = Field("".join(part.text for part in address), min(part.confidence for part in address))
    number = fields.get("id_number")
    if number is None:
        return fields, (Check("id_number_read", False),)
    birth = dt.date.fromisoformat(fields["date_of_birth"].value) if "date_of_birth" in fields else None
    sex = fields["sex"].value if "sex" in fields else None
    return fields, number_checks(number.value, birth, sex)


def _period_date(text: str) -> dt.date | None:
    digits = re.sub(r"\D", "", text)
    return date_or_none(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) if len(digits) == 8 else None


def parse_back(lines: list[OcrLine]) -> tuple[dict[str, Field], tuple[Check, ...], dt.date | None]:
    """Fields, checks, and the expiry date (None for a long-term card or an unreadable period)."""
    fields: dict[str, Field] = {}
    expiry: dt.date | None = None
    for row in rows(lines):
        text = _squeezed(row.text)
        if "签发机关" in text and _after(text, "签发机关"):
            fields["issuing_authority"] = Field(_after(text, "签发机关"), row.confidence)
        period = PERIOD.search(text)
        if period:
            start = date_or_none(int(period.group(1)), int(period.group(2)), int(period.group(3)))
            if start:
                fields["valid_from"] = Field(start.isoformat(), row.confidence)
            if period.group(4) == "长期":
                fields["date_of_expiry"] = Field(LONG_TERM, row.confidence)
            elif (until := _period_date(period.group(4))) is not None:
                fields["date_of_expiry"] = Field(until.isoformat(), row.confidence)
                expiry = until
    start = fields.get("valid_from")
    until = fields.get("date_of_expiry")
    if start is None or until is None:
        return fields, (Check("validity_period_read", False),), None
    ordered = until.value == LONG_TERM or start.value < until.value
    return fields, (Check("validity_period_read", True), Check("validity_period_order", ordered)), expiry


def make_number(region: str, birth: dt.date, sequence: int, male: bool) -> str:
    """A well-formed number (for test material): region code, birth date, sequence with the sex parity, check."""
    third = sequence % 10 // 2 * 2 + (1 if male else 0)
    first17 = f"{region}{birth:%Y%m%d}{sequence // 10 % 100:02d}{third}"
    return first17 + check_character(first17)
