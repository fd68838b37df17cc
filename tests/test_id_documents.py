"""Generated documents: deterministic, photo-sized, with truths whose checks hold unless spoilt on purpose."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from realname_tools.id_documents import KINDS, make_document
from server.documents.resident_card import check_character
from tests.support.documents import TODAY, document


@pytest.mark.parametrize("kind", KINDS)
def test_documents_are_deterministic_photos(kind):
    one = document(kind)
    assert one.image.shape == (960, 1280, 3) and one.valid
    assert np.array_equal(one.image, make_document(kind, 1, today=TODAY).image)
    assert not np.array_equal(one.image, make_document(kind, 2, today=TODAY).image)


def test_the_truth_is_well_formed():
    front = document("cn_resident_card_front").truth
    number = front["id_number"]
    assert check_character(number[:17]) == number[17] and number[6:14] == front["date_of_birth"].replace("-", "")
    assert (int(number[16]) % 2 == 1) == (front["sex"] == "M")
    passport = document("td3_mrz").truth
    assert dt.date.fromisoformat(passport["date_of_birth"]) < TODAY and len(passport["document_number"]) == 9


def test_a_spoilt_document_says_so():
    bad = document("cn_resident_card_front", bad_checksum=True)
    assert not bad.valid and check_character(bad.truth["id_number"][:17]) != bad.truth["id_number"][17]
    assert not document("td3_mrz", bad_checksum=True).valid


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown document kind"):
        make_document("library_card", 1)
