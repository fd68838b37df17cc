"""From OCR lines to a `DocumentReading`: which document this is, its fields, its checks, expiry and age;
and whether it agrees with what the merchant expected."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, replace

from . import resident_card
from .mrz import MrzReading, find_mrz, looks_like_mrz
from .results import CN_BACK, CN_FRONT, UNRECOGNISED, Check, DocumentReading, Field, OcrLine, age_on, parse_iso_date

FRONT_LABELS = ("姓名", "性别", "民族", "出生", "住址", "公民身份号码")
BACK_LABELS = ("签发机关", "有效期限", "居民身份证")


def classify(lines: list[OcrLine], today: dt.date) -> str:
    text = "".join(re.sub(r"\s", "", line.text) for line in lines)
    mrz = find_mrz([line.text for line in lines], today)
    if mrz is not None:
        return mrz.format
    front = sum(label in text for label in FRONT_LABELS)
    back = sum(label in text for label in BACK_LABELS)
    if front >= 2 or (front and resident_card.find_number(text)):
        return CN_FRONT
    if (back and resident_card.PERIOD.search(text)) or back >= 2:
        return CN_BACK
    return UNRECOGNISED


def read_lines(lines: list[OcrLine], today: dt.date, complete: bool = True) -> DocumentReading:
    """What a document's OCR lines say, checked. `today` is the day of the check (expiry, age); `complete`
    False when the OCR stopped at one of its bounds before reading every line."""
    kind = classify(lines, today)
    if kind == CN_FRONT:
        fields, checks = resident_card.parse_front(lines)
        reading = DocumentReading(kind, fields, checks, None, age_on(parse_iso_date(_value(fields, "date_of_birth")), today))
    elif kind == CN_BACK:
        fields, checks, expiry = resident_card.parse_back(lines)
        reading = DocumentReading(kind, fields, checks, None if expiry is None else expiry < today, None)
    elif kind == UNRECOGNISED:
        reading = DocumentReading(kind)
    else:
        mrz = find_mrz([line.text for line in lines], today)
        assert mrz is not None
        reading = _from_mrz(mrz, _mrz_confidence(lines), today)
    return replace(reading, lines_read=len(lines), complete=complete)


def _value(fields: dict[str, Field], name: str) -> str | None:
    return fields[name].value if name in fields else None


def _mrz_confidence(lines: list[OcrLine]) -> float:
    scores = [line.confidence for line in lines if looks_like_mrz(line.text)]
    return min(scores) if scores else 0.0


def _from_mrz(mrz: MrzReading, confidence: float, today: dt.date) -> DocumentReading:
    values = {
        "document_code": mrz.document_code,
        "issuing_state": mrz.issuing_state,
        "document_number": mrz.document_number,
        "name": f"{mrz.surname} {mrz.given_names}".strip(),
        "surname": mrz.surname,
        "given_names": mrz.given_names,
        "nationality": mrz.nationality,
        "date_of_birth": mrz.birth_date.isoformat() if mrz.birth_date else "",
        "sex": mrz.sex,
        "date_of_expiry": mrz.expiry_date.isoformat() if mrz.expiry_date else "",
        "personal_number": mrz.optional_data,
    }
    fields = {name: Field(value, confidence) for name, value in values.items() if value}
    checks = (*mrz.checks, Check("mrz_dates_valid", mrz.birth_date is not None and mrz.expiry_date is not None))
    expired = None if mrz.expiry_date is None else mrz.expiry_date < today
    return DocumentReading(mrz.format, fields, checks, expired, age_on(mrz.birth_date, today))


# -- what the merchant expected ------------------------------------------------------------------------

EXPECTED_KEYS = ("name", "id_number", "date_of_birth")


def normalised_name(name: str) -> str:
    """Full-width to half-width, no spaces or MRZ filler, case-folded: `Zhang San`, `ZHANG  SAN`, `ＺＨＡＮＧ<<SAN` agree."""
    return re.sub(r"[\s<,]+", "", unicodedata.normalize("NFKC", name)).casefold()


def _name_variants(reading: DocumentReading) -> set[str]:
    names = {reading.value("name") or ""}
    surname, given = reading.value("surname"), reading.value("given_names")
    if surname and given:
        names.add(f"{given} {surname}")  # merchants often send the western order
    return {normalised_name(n) for n in names if n}


def _number(text: str) -> str:
    return re.sub(r"[\s<-]", "", unicodedata.normalize("NFKC", text)).upper()


@dataclass(frozen=True)
class Expected:
    name: str | None = None
    id_number: str | None = None
    date_of_birth: str | None = None  # ISO date

    @classmethod
    def from_dict(cls, data: dict) -> Expected:
        return cls(**{key: str(data[key]) for key in EXPECTED_KEYS if data.get(key) not in (None, "")})

    def to_dict(self) -> dict:
        return {key: value for key in EXPECTED_KEYS if (value := getattr(self, key)) is not None}

    def matches(self, reading: DocumentReading) -> dict[str, bool | None]:
        """Per expected value: True, False, or None when the document did not show that field."""
        result: dict[str, bool | None] = {}
        if self.name is not None:
            variants = _name_variants(reading)
            result["name"] = (normalised_name(self.name) in variants) if variants else None
        if self.id_number is not None:
            number = reading.value("id_number") or reading.value("document_number")
            result["id_number"] = None if number is None else _number(number) == _number(self.id_number)
        if self.date_of_birth is not None:
            birth = reading.value("date_of_birth")
            result["date_of_birth"] = None if birth is None else birth == self.date_of_birth
        return result
