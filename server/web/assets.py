"""Where the hosted pages' templates/ and static/ folders are, from a checkout or from an installed wheel.

They live at the top of the repository; the wheel carries them as data files (share/realname/...,
see pyproject.toml), which pip puts under the environment's prefix. The installed record says where.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path

DISTRIBUTION = "realname"
CHECKOUT = Path(__file__).resolve().parents[2]


class AssetsMissing(RuntimeError):
    pass


@cache
def asset_dir(name: str) -> Path:
    """The folder `name` ("templates" or "static"): the checkout's when running from one, else the installed one."""
    checkout = CHECKOUT / name
    if (CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    installed = _installed_dir(name)
    if installed is None:
        raise AssetsMissing(f"the {name} folder is neither in {CHECKOUT} nor installed with the {DISTRIBUTION} package")
    return installed


def _installed_dir(name: str) -> Path | None:
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    marker = ("share", DISTRIBUTION, name)
    for file in files:
        parts = file.parts
        for i in range(len(parts) - len(marker)):
            if parts[i : i + len(marker)] == marker:
                return Path(str(file.locate())).resolve().parents[len(parts) - i - len(marker) - 1]
    return None


def templates_dir() -> Path:
    return asset_dir("templates")


def static_dir() -> Path:
    return asset_dir("static")
