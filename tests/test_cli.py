"""`python -m server read-document`: what was read and the checks; exit code 2 with a clear error otherwise."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.support.documents import document, jpeg, reader
from tests.support.media import ROOT


def read_document(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "read-document", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_a_resident_card_is_read_with_its_checks(tmp_path):
    generated = document("cn_resident_card_front")
    reader()  # skips without the OCR models
    path = tmp_path / "card.jpg"
    path.write_bytes(jpeg(generated.image))
    result = read_document(str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["type"] == "cn_resident_card_front" and data["checks_passed"] is True
    assert data["fields"]["id_number"]["value"] == generated.truth["id_number"]
    text = read_document(str(path))
    assert text.returncode == 0 and "check id_number_check_character: passed" in text.stdout


def test_unreadable_input_is_exit_code_2(tmp_path):
    reader()
    cases = {
        "not_an_image.txt": (b"hello", "unsupported_type"),
        "blank.jpg": (jpeg(np.full((480, 640, 3), 200, np.uint8)), "no_text"),
    }
    for name, (content, code) in cases.items():
        (tmp_path / name).write_bytes(content)
        result = read_document(str(tmp_path / name), "--json")
        assert result.returncode == 2 and json.loads(result.stdout)["error"]["code"] == code
    missing = read_document(str(tmp_path / "missing.jpg"))
    assert missing.returncode == 2 and "error (unreadable_image)" in missing.stderr
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024))
    result = read_document(str(big), "--json")  # over the default 10 MB upload limit
    assert result.returncode == 2 and json.loads(result.stdout)["error"]["code"] == "too_large"
