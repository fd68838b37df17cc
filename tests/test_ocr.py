"""The PP-OCRv6 reader on generated document photos, and its box geometry."""

from __future__ import annotations

import numpy as np

from server.documents.ocr import bounded, clockwise, crop_line, largest, reading_order
from tests.support.documents import document, reader


def test_boxes_are_ordered_clockwise_and_lines_top_to_bottom_left_to_right():
    box = clockwise(np.float32([[10, 20], [0, 0], [10, 0], [0, 20]]))
    assert box.tolist() == [[0, 0], [10, 0], [10, 20], [0, 20]]
    a, b, c = (clockwise(np.float32([[x, y], [x + 5, y], [x + 5, y + 5], [x, y + 5]])) for x, y in ((50, 3), (0, 0), (0, 40)))
    assert [tuple(box[0]) for box in reading_order([c, a, b])] == [(0, 0), (50, 3), (0, 40)]


def test_a_crop_is_straightened_and_a_tall_one_turned():
    image = np.zeros((100, 200, 3), np.uint8)
    assert crop_line(image, np.float32([[10, 10], [110, 10], [110, 40], [10, 40]])).shape[:2] == (30, 100)
    assert crop_line(image, np.float32([[10, 10], [40, 10], [40, 90], [10, 90]])).shape[:2] == (30, 80)


def test_every_printed_field_of_a_resident_card_is_read():
    generated = document("cn_resident_card_front")
    lines = reader().engine().read(generated.image)
    text = "".join(line.text.replace(" ", "") for line in lines)
    for value in ("姓名", "公民身份号码", generated.truth["name"], generated.truth["id_number"]):
        assert value in text
    assert all(0.5 <= line.confidence <= 1.0 for line in lines)


def test_a_blank_photo_has_no_text():
    assert reader().engine().read(np.full((480, 640, 3), 200, np.uint8)) == []


def test_the_bounds_scale_the_photo_down_keep_the_largest_lines_and_cut_long_ones():
    assert bounded(np.zeros((4000, 3000, 3), np.uint8), 1600).shape[:2] == (1600, 1200)
    small = np.zeros((900, 1200, 3), np.uint8)
    assert bounded(small, 1600) is small
    boxes = [clockwise(np.float32([[0, y], [w, y], [w, y + 10], [0, y + 10]])) for y, w in ((0, 50), (20, 400), (40, 100), (60, 300))]
    assert [int(box[1][0]) for box in largest(boxes, 2)] == [400, 300]  # still in reading order
    assert largest(boxes, 10) == boxes
    image = np.zeros((100, 2000, 3), np.uint8)
    assert crop_line(image, np.float32([[0, 10], [1900, 10], [1900, 30], [0, 30]]), max_ratio=30).shape[:2] == (20, 600)


def test_a_reading_out_of_time_is_marked_incomplete_and_keeps_nothing_unread():
    engine = reader().engine()
    crops = [np.full((48, 200, 3), 255, np.uint8)] * 3
    assert engine.recognise(crops, deadline=0.0) == [None, None, None]
    scan = engine.scan(document("td3_mrz").image)
    assert scan.complete and scan.lines
