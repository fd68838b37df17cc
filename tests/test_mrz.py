"""ICAO 9303 machine-readable zones: check digits, field positions, OCR confusions corrected by field type."""

from __future__ import annotations

import datetime as dt

from server.documents.mrz import check_digit, clean_line, find_mrz, mrz_date, parse_td1, parse_td3, td1_lines, td3_lines

TODAY = dt.date(2026, 11, 30)
# The specimen in ICAO Doc 9303 part 4 (Anna Maria Eriksson, Utopia).
TD3_SPECIMEN = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
# Doc 9303 part 5's TD1 specimen.
TD1_SPECIMEN = ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")


def passed(reading) -> dict[str, bool | None]:
    return {check.code: check.passed for check in reading.checks}


def test_check_digits_of_the_specification():
    assert check_digit("L898902C3") == "6"
    assert check_digit("740812") == "2"
    assert check_digit("120415") == "9"
    assert check_digit("<<<<<<<<<<<<<<") == "0"


def test_the_td3_specimen_reads_and_every_check_passes():
    mrz = parse_td3(*TD3_SPECIMEN, dt.date(2010, 1, 1))
    assert (mrz.format, mrz.document_code, mrz.issuing_state, mrz.document_number) == ("td3_mrz", "P", "UTO", "L898902C3")
    assert (mrz.surname, mrz.given_names, mrz.nationality, mrz.sex) == ("ERIKSSON", "ANNA MARIA", "UTO", "F")
    assert mrz.birth_date == dt.date(1974, 8, 12) and mrz.expiry_date == dt.date(2012, 4, 15)
    assert mrz.optional_data == "ZE184226B"
    assert all(passed(mrz).values()) and len(mrz.checks) == 5


def test_the_td1_specimen_reads_and_every_check_passes():
    mrz = parse_td1(*TD1_SPECIMEN, dt.date(2010, 1, 1))
    assert (mrz.format, mrz.document_code, mrz.document_number, mrz.surname, mrz.given_names) == ("td1_mrz", "I", "D23145890", "ERIKSSON", "ANNA MARIA")
    assert mrz.birth_date == dt.date(1974, 8, 12) and mrz.expiry_date == dt.date(2012, 4, 15)
    assert all(passed(mrz).values())


def test_ocr_confusions_are_corrected_by_field_type():
    first, second = TD3_SPECIMEN
    misread = second[:13] + "74O8I2Z" + second[20:]  # O for 0, I for 1, Z for 2 in the birth date and its check
    mrz = parse_td3(first.replace("UTO", "UT0"), misread, dt.date(2010, 1, 1))
    assert mrz.birth_date == dt.date(1974, 8, 12) and mrz.issuing_state == "UTO"
    assert all(passed(mrz).values())


def test_filler_gained_or_lost_by_ocr_is_realigned():
    first, second = TD3_SPECIMEN
    shorter = second.replace("<<<<<10", "<<<10")
    longer = second.replace("<<<<<10", "<<<<<<<<10")
    for line in (shorter, longer):
        assert all(passed(parse_td3(first, line, dt.date(2010, 1, 1))).values())
    assert clean_line("P<UTO ERIKSSON«ANNA") == "P<UTOERIKSSON<<ANNA"
    # OCR often keeps only part of the names line's long run of filler.
    for split in (["P<UTOERIKSSON<<ANNA<MARIA<<<<"], ["P<UTOERIKSSON<<ANNA<MARIA<<<<", "<<<<<<<<<<<<<<<<"]):
        mrz = find_mrz(["Document No. L898902C3", *split, second], dt.date(2010, 1, 1))
        assert mrz is not None and mrz.given_names == "ANNA MARIA" and all(passed(mrz).values())


def test_a_changed_character_fails_its_check_and_the_composite():
    first, second = TD3_SPECIMEN
    forged = second.replace("L898902C3", "L898902C4")
    checks = passed(parse_td3(first, forged, dt.date(2010, 1, 1)))
    assert checks["mrz_document_number_check_digit"] is False and checks["mrz_composite_check_digit"] is False
    assert checks["mrz_birth_date_check_digit"] is True


def test_generated_lines_pass_and_are_found_among_other_text():
    lines = td3_lines("P", "CHN", "ZHANG", "SAN", "E12345678", "CHN", "900102", "M", "310101", "")
    assert [len(line) for line in lines] == [44, 44]
    mrz = find_mrz(["PASSPORT", "Surname ZHANG", *lines], TODAY)
    assert mrz is not None and mrz.format == "td3_mrz" and all(passed(mrz).values())
    card = td1_lines("ID", "DEU", "T22000129", "640812", "F", "310101", "DEU", "MUSTERMANN", "ERIKA")
    assert [len(line) for line in card] == [30, 30, 30]
    mrz = find_mrz(list(card), TODAY)
    assert mrz is not None and mrz.format == "td1_mrz" and all(passed(mrz).values())
    assert find_mrz(["just some text", "more"], TODAY) is None


def test_dates_take_the_century_that_makes_sense():
    assert mrz_date("900102", TODAY, birth=True) == dt.date(1990, 1, 2)
    assert mrz_date("100102", TODAY, birth=True) == dt.date(2010, 1, 2)
    assert mrz_date("310101", TODAY, birth=False) == dt.date(2031, 1, 1)
    assert mrz_date("991301", TODAY, birth=True) is None
