"""Characters a reader does not see: format characters (Unicode category Cf: bidi overrides, embeddings and
isolates, zero-width spaces and joiners, the byte-order mark), control characters (Cc) and line and
paragraph separators. A merchant's reference shown with them in the console can read as another one
(U+202E turns "order-1337" around), so the API refuses them and the console writes them out."""

from __future__ import annotations

import unicodedata

INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zl", "Zp"})


def is_invisible(ch: str) -> bool:
    return unicodedata.category(ch) in INVISIBLE_CATEGORIES


def invisible_characters(text: str) -> list[str]:
    """Each invisible character of `text` as U+XXXX, in order."""
    return [f"U+{ord(ch):04X}" for ch in text if is_invisible(ch)]


def written_out(text: str | None) -> str:
    """The text with every invisible character written out as <U+XXXX>, for display (escape it as usual)."""
    return "".join(f"<U+{ord(ch):04X}>" if is_invisible(ch) else ch for ch in text or "")
