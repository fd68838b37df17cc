"""A merchant account's privacy choices, checked: how long biometric data is kept, and the link to a way
of verifying without a face check. Pure."""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from urllib.parse import urlsplit

MAX_URL = 500


class Retention(StrEnum):
    STANDARD = "standard"  # evidence is kept RETENTION_DAYS, for reviews and disputes
    MINIMAL = "minimal"  # no biometric data outlives the decision (a review's, the operator's decision)


def check_in_person_url(url: str) -> str:
    """An absolute https URL a customer can open; ValueError saying what is wrong otherwise."""
    if not url or len(url) > MAX_URL:
        raise ValueError(f"the link must be 1 to {MAX_URL} characters")
    if any(unicodedata.category(ch) in ("Cc", "Zs", "Zl", "Zp") for ch in url):
        raise ValueError("the link must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("the link must be an https:// URL with a host, e.g. https://shop.example/stores")
    if parts.username or parts.password:
        raise ValueError("the link must not carry a user name or password")
    return url
