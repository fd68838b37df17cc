"""The command line: `read-document` (what was read and the checks; exit code 2 with a clear error otherwise),
`settings` (the values in force and where they came from), and the same `--merchant` wherever a merchant is meant."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from server.cli import main as cli
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


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for name in ("REALNAME_CONFIG", "REALNAME_PORT", "REALNAME_EVIDENCE_KEY", "REALNAME_EVIDENCE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REALNAME_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_settings_shows_the_values_in_force_and_where_they_came_from(data_dir, monkeypatch, capsys):
    config = data_dir / "realname.toml"
    config.write_text('host = "0.0.0.0"\nport = 9000\nturn_secret = "s3cret-turn"\n')
    monkeypatch.setenv("REALNAME_PORT", "18080")
    code, out, _ = run_cli(capsys, "--config", str(config), "settings", "--json")
    assert code == 0
    rows = {row["env"]: row for row in json.loads(out)}
    assert rows["REALNAME_PORT"] == {"env": "REALNAME_PORT", "value": 18080, "source": "environment"}
    assert rows["REALNAME_HOST"]["value"] == "0.0.0.0" and rows["REALNAME_HOST"]["source"] == "file"
    assert rows["REALNAME_MAX_ATTEMPTS"] == {"env": "REALNAME_MAX_ATTEMPTS", "value": 3, "source": "default"}
    assert rows["REALNAME_TURN_SECRET"]["source"] == "file" and "s3cret" not in out
    code, out, _ = run_cli(capsys, "--config", str(config), "settings")
    assert code == 0 and "REALNAME_PORT=18080  (environment)" in out and "s3cret" not in out
    assert "warning: the evidence key is stored inside the data folder" in out  # the key defaults to DATA_DIR/evidence.key
    code, out, _ = run_cli(capsys, "settings", "--markdown")
    assert "| `REALNAME_PORT` | `8080` |" in out  # the README's table: the defaults


def test_the_evidence_key_warning_is_not_repeated_by_every_command(data_dir, capsys, caplog):
    with caplog.at_level(logging.WARNING):
        assert run_cli(capsys, "merchants", "create", "acme")[0] == 0
        assert run_cli(capsys, "keys", "list")[0] == 0
    assert not [r for r in caplog.records if "evidence key" in r.getMessage()]
    code, out, _ = run_cli(capsys, "settings")
    assert code == 0 and "evidence key is stored inside the data folder" in out


def test_list_commands_take_the_same_merchant_option_as_the_others(data_dir, capsys):
    secret_file = data_dir / "pw"
    secret_file.write_text("a long enough password\n")
    for merchant in ("acme", "zeta"):
        assert run_cli(capsys, "merchants", "create", merchant)[0] == 0
        assert run_cli(capsys, "keys", "create", "--merchant", merchant, "--sandbox")[0] == 0
        assert run_cli(capsys, "operators", "create", "--merchant", merchant, "--name", "alice", "--password-file", str(secret_file))[0] == 0
    code, out, _ = run_cli(capsys, "operators", "list", "--merchant", "acme", "--json")
    assert code == 0 and [(o["merchant"], o["name"]) for o in json.loads(out)] == [("acme", "alice")]
    code, out, _ = run_cli(capsys, "keys", "list", "--merchant", "zeta", "--json")
    assert code == 0 and [k["merchant"] for k in json.loads(out)] == ["zeta"]
    code, out, _ = run_cli(capsys, "operators", "list", "--json")
    assert len(json.loads(out)) == 2  # without --merchant: every account's
    for command in ("operators", "keys"):
        code, _, err = run_cli(capsys, command, "list", "--merchant", "nobody")
        assert code == 2 and "no merchant named 'nobody'" in err
