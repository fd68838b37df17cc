"""The document evaluation on a handful of generated documents (the README's figures come from 120)."""

from __future__ import annotations

import subprocess
import sys

from realname_tools.eval_documents import evaluate
from tests.support.documents import TODAY, document, reader
from tests.support.media import ROOT


def test_a_small_run_reports_every_kind():
    document("cn_resident_card_front")  # skips without the font
    report = evaluate(10, seed=100, reader=reader(), today=TODAY)
    assert report["count"] == 10 and set(report["kinds"]) == {"cn_resident_card_front", "cn_resident_card_back", "td3_mrz", "td1_mrz"}
    overall = report["all"]
    assert overall["documents"] == 10 and overall["bad_checksum_documents"] == 3  # the second round
    assert overall["classified"] >= 0.9 and overall["field_accuracy"] >= 0.8
    assert overall["bad_checksums_caught"] == 1.0


def test_the_command_line_entry(tmp_path):
    document("cn_resident_card_front")
    reader()
    result = subprocess.run([sys.executable, "-m", "server", "eval-documents", "--count", "2", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "all: 2 documents" in result.stdout and len(list(tmp_path.glob("*.jpg"))) == 2
