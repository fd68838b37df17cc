"""English and Simplified Chinese texts for the hosted pages, chosen from the session or the browser."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LOCALES = ("en", "zh-CN")
DEFAULT = "en"
_FOLDER = Path(__file__).parent / "locales"


@cache
def messages(locale: str) -> dict[str, str]:
    return json.loads((_FOLDER / f"{locale}.json").read_text(encoding="utf-8"))


def normalise(tag: str | None) -> str | None:
    """'zh', 'zh-Hans-CN', 'zh_CN' -> 'zh-CN'; 'en-GB' -> 'en'; unknown -> None."""
    if not tag:
        return None
    lowered = tag.strip().replace("_", "-").lower()
    if lowered.startswith("zh"):
        # Traditional-script variants still read Simplified better than English.
        return "zh-CN"
    if lowered.startswith("en"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    choices = []
    for index, part in enumerate((header or "").split(",")):
        pieces = part.strip().split(";")
        quality = 1.0
        for param in pieces[1:]:
            if param.strip().startswith("q="):
                try:
                    quality = float(param.strip()[2:])
                except ValueError:
                    quality = 0.0
        locale = normalise(pieces[0])
        if locale and quality > 0:
            choices.append((-quality, index, locale))
    return min(choices)[2] if choices else None


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Translator:
    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT
        self._messages = messages(self.locale)
        self._fallback = messages(DEFAULT)

    def __call__(self, key: str, **values: object) -> str:
        text = self._messages.get(key) or self._fallback.get(key) or key
        return text.format_map(_KeepMissing(values)) if values else text

    def subset(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in self._messages.items() if k.startswith(prefix)}

    @property
    def html_lang(self) -> str:
        return "zh-Hans" if self.locale == "zh-CN" else "en"
