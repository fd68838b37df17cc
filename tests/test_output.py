"""An offline tool's JSON output (realname_tools/output.py)."""

from __future__ import annotations

import json

from realname_tools.output import emit_json


def test_the_result_printed_is_the_one_kept(tmp_path, capsys):
    path = tmp_path / "result.json"
    emit_json({"cuts": [1, 2], "genuine": {"flagged": 0}}, str(path))
    printed = capsys.readouterr().out
    assert json.loads(printed) == json.loads(path.read_text()) == {"cuts": [1, 2], "genuine": {"flagged": 0}}


def test_without_a_path_it_only_prints(tmp_path, capsys):
    emit_json([3], None)
    assert json.loads(capsys.readouterr().out) == [3]
    assert list(tmp_path.iterdir()) == []
