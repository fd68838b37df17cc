"""Mesh-warped puppets (realname_tools/puppets.py) for the tests that attack with one. Warping one takes
about 13 s of CPU, and several tests attack with the same puppet (the same photo, the same
challenges), so each is made once a run, by the command itself, into a temporary folder (generated media
never goes into the repository); the tests only read it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.media import ROOT, photo


class MeshPuppets:
    """puppets(source, challenges) -> the clip of `python -m realname_tools.puppets make SOURCE --mesh`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[tuple[str, tuple[str, ...]], Path] = {}

    def __call__(self, source: str, challenges: Sequence[str]) -> Path:
        key = (source, tuple(challenges))
        if key not in self.made:
            clip = self.folder / f"mesh-puppet-{len(self.made)}.mp4"
            made = subprocess.run(
                [sys.executable, "-m", "realname_tools.puppets", "make", str(photo(source)), str(clip), "--challenges", ",".join(challenges), "--mesh"],
                capture_output=True, text=True, cwd=ROOT, timeout=900,
            )
            assert made.returncode == 0, made.stderr
            self.made[key] = clip
        return self.made[key]
