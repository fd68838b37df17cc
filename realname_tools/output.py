"""What an offline tool's command prints: its result as indented JSON, kept in a file too when asked."""

from __future__ import annotations

import json
from pathlib import Path


def emit_json(result, path: str | None = None) -> None:
    """Print `result` as JSON; with `path`, write the same text there first."""
    text = json.dumps(result, indent=1)
    if path:
        Path(path).write_text(text)
    print(text)
