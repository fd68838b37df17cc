"""The README documents what the code has: every setting in its configuration table, and the two
commands that CI and a new user run."""

from __future__ import annotations

import re
from pathlib import Path

from server.config import describe_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
CI = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table():
    documented = set(re.findall(r"^\| `(REALNAME_[A-Z0-9_]+)` \|", README, re.MULTILINE))
    settings = {env for env, _, _ in describe_settings()}
    assert settings - documented == set(), "add them with: python -m server settings --markdown"
    assert documented - settings == set(), "the README lists settings that no longer exist"


def test_ci_runs_the_readmes_test_command():
    assert "```sh\n./scripts/test\n```" in README
    assert "exec ./scripts/test" in CI
