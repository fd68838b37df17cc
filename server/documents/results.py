"""What a document reading is made of: OCR lines in, fields and checks out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

CN_FRONT = "cn_resident_card_front"
CN_BACK = "cn_resident_card_back"
TD3 = "td3_mrz"
TD1 = "td1_mrz"
UNRECOGNISED = "unrecognised"
DOCUMENT_TYPES = (CN_FRONT, CN_BACK, TD3, TD1, UNRECOGNISED)


@dataclass(frozen=True)
class OcrLine:
    """One line of text as the recogniser read it, with its box (x0, y0, x1, y1) in image pixels."""

    text: str
    confidence: float
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @property
    def centre_y(self) -> float:
        return (self.box[1] + self.box[3]) / 2

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Field:
    value: str
    confidence: float

    def to_dict(self) -> dict:
        return {"value": self.value, "confidence": round(self.confidence, 3)}


@dataclass(frozen=True)
class Check:
    """One of the document's own consistency checks. `passed` is None when it could not be made."""

    code: str
    passed: bool | None

    def to_dict(self) -> dict:
        return {"code": self.code, "passed": self.passed}


@dataclass(frozen=True)
class DocumentReading:
    type: str
    fields: dict[str, Field] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    expired: bool | None = None  # None: no expiry date on this side, or it could not be read
    age: int | None = None  # whole years on the day of the check
    lines_read: int = 0  # lines of text the OCR found (0: a photo without text)
    complete: bool = True  # False: the reading's bounds (size, lines, time) cut it short

    @property
    def checks_failed(self) -> list[str]:
        return [check.code for check in self.checks if check.passed is False]

    @property
    def checks_passed(self) -> bool:
        return bool(self.checks) and not self.checks_failed and all(check.passed for check in self.checks)

    def value(self, name: str) -> str | None:
        found = self.fields.get(name)
        return found.value if found else None

    def to_dict(self) -> dict:
        return {
            "type": self.type,
            "fields": {name: f.to_dict() for name, f in self.fields.items()},
            "checks": [check.to_dict() for check in self.checks],
            "checks_passed": self.checks_passed,
            "expired": self.expired,
            "age": self.age,
            "complete": self.complete,
        }


def parse_iso_date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def age_on(birth: dt.date | None, day: dt.date) -> int | None:
    if birth is None or birth > day:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def date_or_none(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None
