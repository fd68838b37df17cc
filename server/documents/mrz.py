"""Machine-readable zones (ICAO Doc 9303): TD3 (passports, 2 x 44) and TD1 (ID cards, 3 x 30).

Every field's position is fixed, so each character's kind is known: OCR confusions (O and 0, I and 1,
B and 8...) are corrected by that kind before any check digit is computed. The variable runs of filler
(`<`) that OCR often reads one too many or too few are re-aligned from both ends of each line.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .results import TD1, TD3, Check, date_or_none

TD3_LENGTH, TD1_LENGTH = 44, 30
WEIGHTS = (7, 3, 1)
# What OCR reads for a digit in a field that can only hold digits, and for a letter in a letters-only field.
AS_DIGIT = str.maketrans({"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "T": "7", "Z": "2", "S": "5", "G": "6", "B": "8", "<": "<"})
AS_LETTER = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B", "4": "A", "7": "T"})
MRZ_CHARS = re.compile(r"^[A-Z0-9<]+$")


def char_value(char: str) -> int:
    if char.isdigit():
        return int(char)
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    return 0  # the filler `<` (and anything else, which then fails its check)


def check_digit(data: str) -> str:
    return str(sum(char_value(c) * WEIGHTS[i % 3] for i, c in enumerate(data)) % 10)


def clean_line(text: str) -> str:
    """An OCR line as MRZ characters: upper case, no spaces, the usual misreadings of `<` undone."""
    text = text.upper().replace(" ", "").replace("«", "<<").replace("‹", "<").replace("＜", "<")
    return re.sub(r"[^A-Z0-9<]", "<", text)


def looks_like_mrz(text: str) -> bool:
    """Only MRZ characters, with filler (OCR often drops part of a long run of `<`, so short lines count)."""
    line = clean_line(text)
    return len(line) >= 15 and MRZ_CHARS.match(line) is not None and ("<<" in line or len(line) >= 40)


def _fit(line: str, length: int, head: int, tail: int) -> str:
    """`line` made exactly `length` long by padding or trimming filler between its first `head` and last
    `tail` characters, where OCR gains or loses `<`."""
    if len(line) == length:
        return line
    if len(line) <= head + tail:
        return line.ljust(length, "<")
    start, middle, end = line[:head], line[head : len(line) - tail], line[len(line) - tail :]
    room = length - head - tail
    if len(middle) > room:
        middle = middle.rstrip("<")[:room]
    return start + middle.ljust(room, "<") + end


def _digits(text: str) -> str:
    return text.translate(AS_DIGIT)


def _letters(text: str) -> str:
    return text.translate(AS_LETTER)


def _names(text: str) -> tuple[str, str]:
    surname, _, given = _letters(text).strip("<").partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def mrz_date(text: str, today: dt.date, birth: bool) -> dt.date | None:
    """YYMMDD -> a date: a birth date is never in the future, an expiry date is within 50 years back or ahead."""
    if not text.isdigit() or len(text) != 6:
        return None
    yy, month, day = int(text[:2]), int(text[2:4]), int(text[4:6])
    century = today.year // 100 * 100
    year = century + yy
    if birth and year > today.year:
        year -= 100
    if not birth and year < today.year - 50:
        year += 100
    return date_or_none(year, month, day)


@dataclass(frozen=True)
class MrzReading:
    format: str  # TD3 or TD1
    document_code: str
    issuing_state: str
    document_number: str
    surname: str
    given_names: str
    nationality: str
    birth_date: dt.date | None
    sex: str  # M, F or X
    expiry_date: dt.date | None
    optional_data: str
    checks: tuple[Check, ...]
    lines: tuple[str, ...]


def _check(code: str, data: str, digit: str) -> Check:
    if digit == "<" and not data.strip("<"):
        return Check(code, True)  # an empty optional field may carry `<` as its check digit
    return Check(code, digit.isdigit() and check_digit(data) == digit)


def _sex(char: str) -> str:
    char = _letters(char)
    return {"M": "M", "F": "F"}.get(char, "X")


def parse_td3(first: str, second: str, today: dt.date) -> MrzReading:
    one = clean_line(first).ljust(TD3_LENGTH, "<")[:TD3_LENGTH]
    two = _fit(clean_line(second), TD3_LENGTH, 28, 2)
    number = two[0:9]
    number_check = _digits(two[9])
    nationality = _letters(two[10:13])
    birth, birth_check = _digits(two[13:19]), _digits(two[19])
    sex = _sex(two[20])
    expiry, expiry_check = _digits(two[21:27]), _digits(two[27])
    personal, personal_check, composite = two[28:42], _digits(two[42]), _digits(two[43])
    corrected = number + number_check + nationality + birth + birth_check + two[20] + expiry + expiry_check + personal + personal_check + composite
    surname, given = _names(one[5:])
    checks = (
        _check("mrz_document_number_check_digit", number, number_check),
        _check("mrz_birth_date_check_digit", birth, birth_check),
        _check("mrz_expiry_date_check_digit", expiry, expiry_check),
        _check("mrz_personal_number_check_digit", personal, personal_check),
        Check("mrz_composite_check_digit", check_digit(corrected[0:10] + corrected[13:20] + corrected[21:43]) == composite),
    )
    return MrzReading(
        TD3, _letters(one[0:2]).rstrip("<"), _letters(one[2:5]), number.rstrip("<"), surname, given, nationality,
        mrz_date(birth, today, birth=True), sex, mrz_date(expiry, today, birth=False), personal.strip("<"), checks, (one, corrected),
    )


def parse_td1(first: str, second: str, third: str, today: dt.date) -> MrzReading:
    one = _fit(clean_line(first), TD1_LENGTH, 15, 0)
    two = _fit(clean_line(second), TD1_LENGTH, 18, 1)
    three = clean_line(third).ljust(TD1_LENGTH, "<")[:TD1_LENGTH]
    number, number_check, optional_one = one[5:14], _digits(one[14]), one[15:30]
    birth, birth_check = _digits(two[0:6]), _digits(two[6])
    expiry, expiry_check = _digits(two[8:14]), _digits(two[14])
    nationality, optional_two, composite = _letters(two[15:18]), two[18:29], _digits(two[29])
    line_one = one[:5] + number + number_check + optional_one
    line_two = birth + birth_check + two[7] + expiry + expiry_check + nationality + optional_two + composite
    surname, given = _names(three)
    checks = (
        _check("mrz_document_number_check_digit", number, number_check),
        _check("mrz_birth_date_check_digit", birth, birth_check),
        _check("mrz_expiry_date_check_digit", expiry, expiry_check),
        Check("mrz_composite_check_digit", check_digit(line_one[5:30] + line_two[0:7] + line_two[8:15] + line_two[18:29]) == composite),
    )
    return MrzReading(
        TD1, _letters(one[0:2]).rstrip("<"), _letters(one[2:5]), number.rstrip("<"), surname, given, nationality,
        mrz_date(birth, today, birth=True), _sex(two[7]), mrz_date(expiry, today, birth=False), (optional_one + optional_two).strip("<"),
        checks, (line_one, line_two, three),
    )


def find_mrz(texts: list[str], today: dt.date) -> MrzReading | None:
    """The MRZ among OCR lines (top to bottom), TD3 or TD1, or None."""
    # A run of filler read as a line of its own is the end of the line before it, which is padded anyway.
    lines = [line for line in (clean_line(t) for t in texts if looks_like_mrz(t)) if line.strip("<")]
    for i in range(len(lines) - 1):  # the names line may have lost much of its filler; the data line less so
        if lines[i].startswith("P") and "<<" in lines[i] and len(lines[i + 1]) >= 38:
            return parse_td3(lines[i], lines[i + 1], today)
    for i in range(len(lines) - 2):
        if lines[i][:1] in "ACI" and all(24 <= len(line) <= 36 for line in lines[i : i + 2]):
            return parse_td1(lines[i], lines[i + 1], lines[i + 2], today)
    return None


def td3_lines(code: str, state: str, surname: str, given: str, number: str, nationality: str, birth: str, sex: str, expiry: str, personal: str = "") -> tuple[str, str]:
    """The two TD3 lines with their check digits (birth and expiry as YYMMDD): for tests and test material."""
    names = (surname.replace(" ", "<") + "<<" + given.replace(" ", "<")).upper()
    one = (code.ljust(2, "<") + state + names).ljust(TD3_LENGTH, "<")[:TD3_LENGTH]
    number = number.ljust(9, "<")
    personal = personal.ljust(14, "<")
    personal_digit = "<" if not personal.strip("<") else check_digit(personal)
    body = number + check_digit(number) + nationality + birth + check_digit(birth) + sex + expiry + check_digit(expiry) + personal + personal_digit
    composite = check_digit(body[0:10] + body[13:20] + body[21:43])
    return one, body + composite


def td1_lines(code: str, state: str, number: str, birth: str, sex: str, expiry: str, nationality: str, surname: str, given: str, optional: str = "") -> tuple[str, str, str]:
    """The three TD1 lines with their check digits: for tests and test material."""
    number = number.ljust(9, "<")
    one = (code.ljust(2, "<") + state + number + check_digit(number) + optional).ljust(TD1_LENGTH, "<")[:TD1_LENGTH]
    two = (birth + check_digit(birth) + sex + expiry + check_digit(expiry) + nationality).ljust(29, "<")
    two += check_digit(one[5:30] + two[0:7] + two[8:15] + two[18:29])
    three = (surname.replace(" ", "<") + "<<" + given.replace(" ", "<")).upper().ljust(TD1_LENGTH, "<")[:TD1_LENGTH]
    return one, two, three
